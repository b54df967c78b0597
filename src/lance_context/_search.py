"""Retrieval: vector, full-text (BM25) and hybrid search, filtered before top-k.

Lance cannot run a vector query and a full-text query in one scan, so hybrid search
runs both (each with the same prefilter) and fuses the ranked lists here with
reciprocal-rank fusion. Every channel filters *before* the top-k is cut
(``prefilter=True``): a search in one session never returns, or misses because of,
another session's records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import lance
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from lance.query import MatchQuery

from ._arrow import record_columns, table_to_records
from ._embedders import Embedder, embed_query, to_matrix
from ._errors import SearchError
from ._maintenance import IndexPolicy, index_names
from ._records import ContextRecord, check_embedding

if TYPE_CHECKING:
    from ._dataset import DatasetHandle

__all__ = ["SearchHit", "SearchMixin", "mmr_select", "rrf_fuse"]

Mode = Literal["vector", "text", "hybrid"]
Vector = npt.NDArray[np.float32]
RRF_K = 60


@dataclass(frozen=True)
class SearchHit:
    """One search result.

    Attributes:
        record: The matching record.
        score: Larger is better: cosine similarity (vector), BM25 (text) or the
            reciprocal-rank-fusion score (hybrid).
        vector_distance: Cosine distance to the query, when the vector channel matched.
        text_score: BM25 score, when the text channel matched.
        channels: Which channels matched: ``("vector",)``, ``("text",)`` or both.

    Example:
        >>> hit = SearchHit(record=None, score=0.9, vector_distance=0.1)  # doctest: +SKIP
    """

    record: ContextRecord
    score: float
    vector_distance: float | None = None
    text_score: float | None = None
    channels: tuple[str, ...] = ()


def rrf_fuse(rankings: Mapping[str, Sequence[str]], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal-rank fusion: ``sum(1 / (k + rank))`` over the channels an id appears in."""
    scores: dict[str, float] = {}
    for ranking in rankings.values():
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return scores


def mmr_select(query: Vector, candidates: Vector, k: int, lambda_mult: float) -> list[int]:
    """Maximal marginal relevance: pick ``k`` rows relevant to the query and diverse."""
    if len(candidates) == 0:
        return []
    unit = candidates / np.maximum(np.linalg.norm(candidates, axis=1, keepdims=True), 1e-12)
    q = query / max(float(np.linalg.norm(query)), 1e-12)
    relevance = unit @ q
    chosen: list[int] = [int(np.argmax(relevance))]
    while len(chosen) < min(k, len(candidates)):
        redundancy = (unit @ unit[chosen].T).max(axis=1)
        objective = lambda_mult * relevance - (1 - lambda_mult) * redundancy
        objective[chosen] = -np.inf
        chosen.append(int(np.argmax(objective)))
    return chosen


class SearchMixin:
    """Search operations; mixed into ContextStore."""

    _handle: DatasetHandle
    embedder: Embedder | None
    dimension: int | None
    indexing: IndexPolicy

    if TYPE_CHECKING:

        def _read_ds(self, version: int | None = None) -> lance.LanceDataset: ...
        def _resolve(self, version_or_tag: int | str) -> int: ...
        def _index_for_search(self, ds: lance.LanceDataset) -> lance.LanceDataset: ...
        def _filter(
            self,
            run_id: str | None,
            roles: str | Iterable[str] | None,
            since: datetime | None,
            until: datetime | None,
            where: Mapping[Any, Any] | None,
        ) -> str | None: ...

    def search(
        self,
        query: str | Sequence[float] | Vector | Any,
        *,
        k: int = 10,
        mode: Mode = "vector",
        run_id: str | None = None,
        roles: str | Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Mapping[Any, Any] | None = None,
        version: int | str | None = None,
        mmr: bool = False,
        fetch_k: int | None = None,
        lambda_mult: float = 0.5,
    ) -> list[SearchHit]:
        """Find the records most relevant to ``query``.

        Args:
            query: Text, a vector, or an image (when the embedder embeds images).
            k: How many hits.
            mode: ``vector`` (cosine), ``text`` (BM25) or ``hybrid`` (both, fused).
            run_id: Only this session's records.
            roles: Only these roles.
            since: Created at or after this time.
            until: Created before this time.
            where: A filter dict, applied before the top-k is cut.
            version: Search the store as it was at this version or tag.
            mmr: Re-rank vector candidates by maximal marginal relevance.
            fetch_k: Candidates fetched for MMR or fusion (default ``4 * k``).
            lambda_mult: MMR trade-off: 1 is pure relevance, 0 pure diversity.

        Raises:
            SearchError: Unknown mode, bad k, or no way to embed the query.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise SearchError(f"k must be a positive integer, got {k!r}")
        if mode not in ("vector", "text", "hybrid"):
            raise SearchError(f"mode must be 'vector', 'text' or 'hybrid', got {mode!r}")
        pinned = None if version is None else self._resolve(version)
        ds = self._read_ds(pinned)
        if pinned is None and mode != "text":
            ds = self._index_for_search(ds)
        sql = self._filter(run_id, roles, since, until, where)
        fetch = max(fetch_k or 4 * k, k)
        if mode == "text":
            return self._text_hits(ds, _as_text(query), sql, k)
        vector = self._query_vector(query)
        if mode == "vector":
            if mmr:
                return self._mmr_hits(ds, vector, sql, k, fetch, lambda_mult)
            return self._vector_hits(ds, vector, sql, k)
        text_query = _as_text(query)
        vector_hits = self._vector_hits(ds, vector, sql, fetch)
        text_hits = self._text_hits(ds, text_query, sql, fetch)
        return _fuse(vector_hits, text_hits, k)

    # ------------------------------------------------------------------ channels
    def _query_vector(self, query: object) -> Vector:
        if self.dimension is None:
            raise SearchError("this store has no vectors; use mode='text' or reembed(embedder)")
        if isinstance(query, str):
            if self.embedder is None:
                raise SearchError(
                    "this store was opened without an embedder, so text cannot be embedded; "
                    "pass a vector, use mode='text', or open the store with its embedder"
                )
            return embed_query(self.embedder, query)
        if isinstance(query, (list, tuple, np.ndarray)):
            return check_embedding(query, self.dimension, "<query>")
        images = getattr(self.embedder, "embed_images", None)
        if callable(images):
            assert self.embedder is not None
            vector: Vector = to_matrix(images([query]), 1, self.embedder.dimension, self.embedder.name)[0]
            return vector
        raise SearchError(f"cannot search with a {type(query).__name__}: give text or a vector")

    def _nearest(self, ds: lance.LanceDataset, vector: Vector, sql: str | None, k: int) -> dict[str, Any]:
        nearest: dict[str, Any] = {"column": "embedding", "q": vector, "k": k, "metric": "cosine"}
        indexed = "embedding_idx" in index_names(ds)
        if not indexed:
            return nearest
        if sql is not None and ds.count_rows(filter=sql) <= self.indexing.flat_search_max_rows:
            nearest["use_index"] = False  # few candidates: exact search is fast and exact
            return nearest
        nearest["nprobes"] = self.indexing.nprobes
        nearest["refine_factor"] = self.indexing.refine_factor
        return nearest

    def _vector_table(self, ds: lance.LanceDataset, vector: Vector, sql: str | None, k: int) -> pa.Table:
        nearest = self._nearest(ds, vector, sql, k)
        return self._handle.call(
            lambda: ds.to_table(
                nearest=nearest, filter=sql, prefilter=True, columns=[*record_columns(ds.schema), "_distance"]
            ),
            "run a vector search",
            retry=False,
        )

    def _vector_hits(
        self, ds: lance.LanceDataset, vector: Vector, sql: str | None, k: int
    ) -> list[SearchHit]:
        table = self._vector_table(ds, vector, sql, k)
        distances = table.column("_distance").to_pylist()
        records = table_to_records(table.drop_columns(["_distance"]))
        return [
            SearchHit(record=r, score=1.0 - d, vector_distance=d, channels=("vector",))
            for r, d in zip(records, distances, strict=True)
        ]

    def _mmr_hits(
        self, ds: lance.LanceDataset, vector: Vector, sql: str | None, k: int, fetch: int, lambda_mult: float
    ) -> list[SearchHit]:
        candidates = self._vector_hits(ds, vector, sql, fetch)
        if not candidates:
            return []
        matrix = np.stack([h.record.embedding for h in candidates if h.record.embedding is not None])
        return [candidates[i] for i in mmr_select(vector, matrix, k, lambda_mult)]

    def _text_hits(self, ds: lance.LanceDataset, text: str, sql: str | None, k: int) -> list[SearchHit]:
        if not text.strip():
            return []
        table = self._handle.call(
            lambda: ds.to_table(
                full_text_query=MatchQuery(text, "text_payload"),
                filter=sql,
                prefilter=True,
                limit=k,
                columns=[*record_columns(ds.schema), "_score"],
            ),
            "run a full-text search",
            retry=False,
        )
        scores = table.column("_score").to_pylist()
        records = table_to_records(table.drop_columns(["_score"]))
        return [
            SearchHit(record=r, score=s, text_score=s, channels=("text",))
            for r, s in zip(records, scores, strict=True)
        ]


def _as_text(query: object) -> str:
    if not isinstance(query, str):
        raise SearchError("text and hybrid search need a text query")
    return query


def _fuse(vector_hits: list[SearchHit], text_hits: list[SearchHit], k: int) -> list[SearchHit]:
    by_id: dict[str, dict[str, Any]] = {}
    for hit in vector_hits + text_hits:
        entry = by_id.setdefault(hit.record.id, {"record": hit.record, "channels": []})
        entry["channels"].append(hit.channels[0])
        if hit.vector_distance is not None:
            entry["vector_distance"] = hit.vector_distance
        if hit.text_score is not None:
            entry["text_score"] = hit.text_score
    scores = rrf_fuse(
        {
            "vector": [h.record.id for h in vector_hits],
            "text": [h.record.id for h in text_hits],
        }
    )
    ranked = sorted(scores, key=lambda key: (-scores[key], key))[:k]
    return [
        SearchHit(
            record=by_id[key]["record"],
            score=scores[key],
            vector_distance=by_id[key].get("vector_distance"),
            text_score=by_id[key].get("text_score"),
            channels=tuple(by_id[key]["channels"]),
        )
        for key in ranked
    ]
