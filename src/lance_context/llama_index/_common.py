"""Helpers shared by the LlamaIndex adapters: opening the store, checking keys and ids, reading queries."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
from llama_index.core.vector_stores.types import VectorStoreQuery

from lance_context import DEFAULT_EMBEDDER, ContextStore, InvalidFilterError, SearchError, SearchHit
from lance_context.adapters import open_store

from ._embedding import store_embedder

__all__ = [
    "FRAMEWORK", "FRAMEWORK_KEY", "check_key", "id_list", "mmr_scores", "query_text", "query_vector",
    "resolve_store",
]  # fmt: skip

#: Metadata marker set on every record an adapter of this package writes.
FRAMEWORK_KEY = "lance_context.framework"
FRAMEWORK = "llama_index"


def check_key(value: object, what: str) -> str:
    """A session id, chat-store key or collection name: any non-empty string.

    The value reaches the store only as a filter literal escaped by the core, so no
    character is forbidden; an empty or non-string value is refused here.
    """
    if not isinstance(value, str) or not value:
        raise InvalidFilterError(f"{what} must be a non-empty string, got {value!r}")
    return value


def resolve_store(
    store: ContextStore | None,
    uri: str | None,
    *,
    who: str,
    embedder: Any = DEFAULT_EMBEDDER,
    storage_options: Mapping[str, str] | None = None,
    open_options: Mapping[str, Any] | None = None,
) -> ContextStore:
    """The store to use (see ``lance_context.adapters.open_store``); a LanceEmbedding is unwrapped."""
    return open_store(
        store, uri, who=who, storage_options=storage_options, embedder=store_embedder(embedder),
        **dict(open_options or {}),
    )  # fmt: skip


def query_vector(query: VectorStoreQuery) -> tuple[Any, Any]:
    """``(query, vector)`` for a vector search: the text is kept so a recorded search names it."""
    if query.query_embedding is not None:
        vector = list(query.query_embedding)
        return (query.query_str or vector), vector
    if query.query_str:
        return query.query_str, None  # the store embeds it with its embedder
    raise SearchError("this query mode needs query_embedding or query_str")


def id_list(values: object, what: str) -> list[str]:
    """A list of ids: a lone string is refused (iterating it would name one id per character)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Collection):
        raise InvalidFilterError(f"{what} must be a list of ids, got {values!r}")
    return [check_key(value, what[:-1].replace("_", " ")) for value in values]


def query_text(query: VectorStoreQuery) -> str:
    """The query's text, for a text search."""
    if query.query_str is None:
        raise SearchError("text search needs query_str")
    return query.query_str


def mmr_scores(hits: Sequence[SearchHit], threshold: float) -> list[float]:
    """The scores LlamaIndex reports for MMR hits (``get_top_k_mmr_embeddings``).

    The first hit scores ``threshold`` times its cosine to the query; every later one
    loses ``1 - threshold`` times its cosine to the hit before it.
    """
    scores: list[float] = []
    previous: np.ndarray[Any, np.dtype[np.float64]] | None = None
    for hit in hits:
        vector = np.asarray(hit.record.embedding, dtype=np.float64)
        score = threshold * float(hit.score)
        if previous is not None:
            norms = float(np.linalg.norm(vector) * np.linalg.norm(previous))
            score -= (1 - threshold) * float(vector @ previous) / max(norms, 1e-30)
        scores.append(score)
        previous = vector
    return scores
