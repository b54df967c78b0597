"""What an embedder must return, and the wrappers over LangChain and LlamaIndex embedding objects.

:func:`to_matrix` checks every embedder's output before anything is written. The
wrappers take a framework's embedding object as it is (duck-typed: no framework is
imported here): documents go through its batch method, queries through its query method.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from ._errors import EmbeddingError

__all__ = ["LangChainEmbedder", "LlamaIndexEmbedder", "Matrix", "WrappedEmbedder", "to_matrix"]

Matrix = npt.NDArray[np.float32]


def to_matrix(
    vectors: object, count: int, dimension: int, who: str, *, ids: Sequence[str] | None = None
) -> Matrix:
    """Check an embedder's output: ``count`` finite rows of ``dimension`` floats.

    Args:
        vectors: What the embedder returned (an array, or lists / tuples of numbers).
        count: How many texts (or images) it was given.
        dimension: The dimension it declares.
        who: The embedder's name, for the error message.
        ids: The records the rows belong to, so that an error names the one at fault.

    Raises:
        EmbeddingError: Not numbers, the wrong shape, or NaN / infinity.
    """
    try:
        with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf: refused below
            matrix = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EmbeddingError(
            f"embedder {who!r} returned {type(vectors).__name__}, not {count} vectors of "
            f"{dimension} numbers ({exc})"
        ) from exc
    if count == 0:
        return np.zeros((0, dimension), dtype=np.float32)
    if matrix.ndim == 2 and matrix.shape[0] != count:
        raise EmbeddingError(f"embedder {who!r} returned {matrix.shape[0]} vectors for {count} inputs")
    if matrix.ndim != 2 or matrix.shape != (count, dimension):
        raise EmbeddingError(
            f"embedder {who!r} returned shape {matrix.shape}, expected ({count}, {dimension})"
        )
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        where = f"record {ids[row]!r}" if ids is not None and row < len(ids) else f"input {row}"
        raise EmbeddingError(f"embedder {who!r} returned NaN or infinity for {where}")
    return matrix


def _framework_name(prefix: str, obj: object) -> str:
    cls = type(obj)
    model = next(
        (
            getattr(obj, attr)
            for attr in ("model", "model_name", "model_id")
            if isinstance(getattr(obj, attr, None), str)
        ),
        None,
    )
    base = f"{prefix}:{cls.__module__}.{cls.__qualname__}"
    return f"{base}/{model}" if model else base


def _run_coroutine(start: Callable[[], Any]) -> Any:
    """Run an async-only embedding method to completion from synchronous code.

    The store's core is synchronous; inside a running event loop the coroutine gets its
    own loop in a worker thread (one loop cannot be re-entered).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(start())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(start())).result()


class WrappedEmbedder:
    """An embedder over a framework's embedding object, named after its class and model."""

    _prefix = ""
    _documents = ""  # the wrapped object's batch method
    _query = ""  # the wrapped object's query method
    _async_documents = ""  # their async twins, used when the sync ones are not implemented
    _async_query = ""

    def __init__(self, wrapped: Any, *, name: str | None = None, dimension: int | None = None) -> None:
        """Wrap ``wrapped``; the dimension is probed once when not given."""
        self.wrapped = wrapped
        self._name = name or _framework_name(self._prefix, wrapped)
        self._dimension = dimension

    @property
    def name(self) -> str:
        """``<framework>:<class>/<model>``."""
        return self._name

    @property
    def dimension(self) -> int:
        """The vector dimension (probed with one query on first use).

        Raises:
            EmbeddingError: The probe did not return one non-empty vector of numbers.
        """
        if self._dimension is None:
            probe = self._call(self._query, self._async_query, "dimension probe")
            try:
                shape = np.asarray(probe, dtype=np.float32).shape
            except (TypeError, ValueError) as exc:
                raise EmbeddingError(
                    f"embedder {self.name!r} returned a query vector that is not numbers"
                ) from exc
            if len(shape) != 1 or shape[0] == 0:
                raise EmbeddingError(
                    f"embedder {self.name!r} returned a query vector of shape {shape}; "
                    "expected a non-empty list of floats"
                )
            self._dimension = int(shape[0])
        return self._dimension

    def _call(self, method: str, async_method: str, argument: object) -> Any:
        """Call the wrapped sync method, or its async twin when the sync one is not implemented."""
        try:
            return getattr(self.wrapped, method)(argument)
        except NotImplementedError:
            twin = getattr(self.wrapped, async_method, None)
            if not callable(twin):
                raise
        # Outside the ``except`` so a failure of the twin is not chained to the NotImplementedError.
        try:
            return _run_coroutine(lambda: twin(argument))
        except NotImplementedError as exc:
            raise EmbeddingError(
                f"embedder {self.name!r} implements neither {method}() nor {async_method}()"
            ) from exc

    def embed_texts(self, texts: Sequence[str]) -> Matrix:
        """Embed documents with the wrapped object's batch method."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._call(self._documents, self._async_documents, list(texts))
        return to_matrix(vectors, len(texts), self.dimension, self.name)

    def embed_query(self, text: str) -> Matrix:
        """Embed a query with the wrapped object's query method."""
        vector = self._call(self._query, self._async_query, text)
        row: Matrix = to_matrix([vector], 1, self.dimension, self.name)[0]
        return row


class LangChainEmbedder(WrappedEmbedder):
    """Wraps any LangChain ``Embeddings`` (``embed_documents`` / ``embed_query``).

    An ``Embeddings`` whose sync methods raise ``NotImplementedError`` is run through its
    async ones (``aembed_documents`` / ``aembed_query``).

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding  # doctest: +SKIP
        >>> LangChainEmbedder(DeterministicFakeEmbedding(size=8)).dimension   # doctest: +SKIP
        8
    """

    _prefix, _documents, _query = "langchain", "embed_documents", "embed_query"
    _async_documents, _async_query = "aembed_documents", "aembed_query"

    @property
    def embeddings(self) -> Any:
        """The wrapped LangChain ``Embeddings``."""
        return self.wrapped


class LlamaIndexEmbedder(WrappedEmbedder):
    """Wraps any LlamaIndex ``BaseEmbedding`` (``get_text_embedding_batch`` / ``get_query_embedding``).

    Example:
        >>> from llama_index.core.embeddings import MockEmbedding  # doctest: +SKIP
        >>> LlamaIndexEmbedder(MockEmbedding(embed_dim=8)).dimension  # doctest: +SKIP
        8
    """

    _prefix, _documents, _query = "llama-index", "get_text_embedding_batch", "get_query_embedding"
    _async_documents, _async_query = "aget_text_embedding_batch", "aget_query_embedding"

    @property
    def embed_model(self) -> Any:
        """The wrapped LlamaIndex ``BaseEmbedding``."""
        return self.wrapped
