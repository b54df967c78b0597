"""A LlamaIndex embedding model backed by a lance-context embedder.

LlamaIndex embeds nodes and queries with its own ``embed_model``; the store embeds
records with its embedder. Giving LlamaIndex :class:`LanceEmbedding` over the store's
embedder keeps both in the same vector space.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

from lance_context import Embedder, as_embedder
from lance_context.adapters import async_twin, embed_query, to_matrix

__all__ = ["LanceEmbedding", "store_embedder"]


class LanceEmbedding(BaseEmbedding):
    """A LlamaIndex ``BaseEmbedding`` over any lance-context embedder.

    Use it as the ``embed_model`` of an index or a ``VectorMemoryBlock`` so that
    LlamaIndex and the store embed alike; ``HashingEmbedder`` makes a fast,
    deterministic embedding for tests, ``SentenceTransformerEmbedder`` the real one.

    Example:
        >>> from lance_context import HashingEmbedder
        >>> embed_model = LanceEmbedding(HashingEmbedder(32))
        >>> len(embed_model.get_text_embedding("red apples"))
        32
    """

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Any, **kwargs: Any) -> None:
        """Wrap ``embedder`` (an Embedder, or a LangChain / LlamaIndex embedding object)."""
        wrapped = as_embedder(embedder)
        kwargs.setdefault("model_name", wrapped.name)
        super().__init__(**kwargs)
        self._embedder = wrapped

    @classmethod
    def class_name(cls) -> str:
        """The LlamaIndex class name."""
        return "LanceEmbedding"

    @property
    def embedder(self) -> Embedder:
        """The lance-context embedder underneath."""
        return self._embedder

    @property
    def __lance_context_embedder__(self) -> Embedder:
        """What ``as_embedder`` (and so ``ContextStore.open``) takes from this object.

        A store opened with a LanceEmbedding records the wrapped embedder's own name
        (``hashing``, ``sentence-transformers/...``), so it reopens with or without it.
        """
        return self._embedder

    @property
    def dimension(self) -> int:
        """The vector dimension."""
        return self._embedder.dimension

    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in embed_query(self._embedder, query)]

    _aget_query_embedding = async_twin(_get_query_embedding)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        out = self._embedder.embed_texts(texts)
        matrix = to_matrix(out, len(texts), self._embedder.dimension, self._embedder.name)
        return [[float(x) for x in row] for row in matrix]

    _aget_text_embeddings = async_twin(_get_text_embeddings)


def store_embedder(embedder: Any) -> Any:
    """What to give ``ContextStore.open``: a LanceEmbedding is unwrapped to its embedder.

    The store records its embedder's name; unwrapping keeps that name the embedder's
    own (``hashing``, ``sentence-transformers/...``) so the store reopens without it.
    """
    if isinstance(embedder, LanceEmbedding):
        return embedder.embedder
    return embedder
