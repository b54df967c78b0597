"""Retrieval: vector, full-text (BM25) and hybrid search, filtered before top-k.

Each channel ranks on ids and scores only (plus vectors when MMR needs them); the
final ``k`` rows are then taken from the same snapshot, so a search reads whole
records, binaries included, for its hits and nothing else. Every channel filters
*before* the top-k is cut (``prefilter=True``): a search in one session never returns,
or misses because of, another session's records. Lance cannot run a vector and a
full-text query in one scan, so hybrid search runs both and fuses the rankings
(``_fusion``: z-scores mixed with weights measured on conversation, where hybrid then
never ranks below its better channel). What decides an order (one hit per record id,
exact cosine, MMR, RRF) is pure and lives in ``_ranking``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

import lance
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from lance.query import MatchQuery

from ._embedders import embed_beside
from ._errors import EmbedderMismatchError, SearchError
from ._fusion import FusionOptions, fuse
from ._history import History
from ._maintenance import Maintainer
from ._ranking import (
    RRF_K,
    ChannelRanking,
    ExactRows,
    distinct,
    mmr_select,
    rrf_fuse,
    weighted_fuse,
)
from ._reader import filter_sql, record_columns
from ._schema import embedding_dimension
from ._searchhits import SearchHit, read_hits
from ._state import StoreState
from ._vector_index import VECTOR_INDEX

__all__ = ["RRF_K", "SearchHit", "SearchMode", "Searcher", "mmr_select", "rrf_fuse", "weighted_fuse"]

#: What ``search(mode=...)`` accepts.
SearchMode = Literal["vector", "text", "hybrid"]
Vector = npt.NDArray[np.float32]
#: Filters matching at most this many rows with vectors are searched exactly in numpy.
EXACT_MAX = 2_000


#: The most hits one search returns (Lance takes k as a 32-bit count).
_MAX_K = 1_000_000


class Searcher:
    """Runs searches against one store as it reads."""

    def __init__(self, state: StoreState, history: History, maintainer: Maintainer) -> None:
        """Search ``state``'s store; ``history`` resolves versions, ``maintainer`` builds due indexes."""
        self._state = state
        self._history = history
        self._maintainer = maintainer

    def search(
        self,
        query: Any,
        *,
        k: int = 10,
        mode: SearchMode = "vector",
        run_id: str | None = None,
        roles: str | Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Mapping[Any, Any] | None = None,
        version: int | str | None = None,
        mmr: bool | Literal["all", "last"] = False,
        fetch_k: int | None = None,
        lambda_mult: float = 0.5,
        vector: Any = None,
        alpha: float | None = None,
        fusion: FusionOptions | None = None,
        observe: Callable[[lance.LanceDataset, Vector | None], None] | None = None,
    ) -> list[SearchHit]:
        """Find the records most relevant to ``query``; see ``ContextStore.search``.

        ``observe`` (the search log's hook) is told the snapshot searched and the query
        vector used (None for text search) before the channels run.
        """
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= _MAX_K:
            raise SearchError(f"k must be an integer from 1 to {_MAX_K:,}, got {k!r}")
        if mode not in ("vector", "text", "hybrid"):
            raise SearchError(f"mode must be 'vector', 'text' or 'hybrid', got {mode!r}")
        if type(mmr) not in (bool, str) or mmr not in (False, True, "all", "last"):
            raise SearchError(f"mmr must be True, False, 'all' or 'last', got {mmr!r}")
        if fetch_k is not None and (isinstance(fetch_k, bool) or not isinstance(fetch_k, int) or fetch_k < 1):
            raise SearchError(f"fetch_k must be a positive integer or None, got {fetch_k!r}")
        for name, value in (("alpha", alpha), ("lambda_mult", lambda_mult)):
            if value is None and name == "alpha":
                continue  # alpha=None: the fusion options' own weights
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise SearchError(f"{name} must be a number from 0 to 1, got {value!r}")
        if fusion is not None and not isinstance(fusion, FusionOptions):
            raise SearchError(f"fusion takes a FusionOptions, got {type(fusion).__name__}")
        ds = self.snapshot(version, ranks_by_vector=mode != "text")
        sql = filter_sql(run_id, roles, since, until, where)
        fetch = max(fetch_k or 4 * k, k)
        if mode == "text":
            if observe is not None:
                observe(ds, None)
            text = _as_text(query)
            ranked = distinct(lambda depth: self._text(ds, text, sql, depth), k)
            return read_hits(self._state, ds, ranked.ids, {"text": ranked}, ranked.scores)[:k]
        if mode == "hybrid":
            options = fusion or FusionOptions()
            if alpha is not None:
                weights = {"vector": float(alpha), "text": 1.0 - float(alpha)}
                options = dataclasses.replace(options, weights=weights)
            depth = max(fetch_k or options.depth, k)  # fusion reads as deep as the channels were fetched
            options = dataclasses.replace(options, depth=depth) if depth > options.depth else options
            return self._hybrid(ds, query, vector, sql, k, options, observe)
        query_vector = self.query_vector(ds, query if vector is None else vector)
        if observe is not None:
            observe(ds, query_vector)
        if mode == "vector":
            if not np.any(query_vector):
                raise SearchError("the query vector is all zeros: cosine similarity has nothing to rank by")
            if not mmr:  # the k hits are final: read their records in the search's own pass
                ranked = distinct(
                    lambda depth: self._vector(ds, query_vector, sql, depth, with_records=True), k
                )
                hits = read_hits(self._state, ds, ranked.ids, {"vector": ranked}, ranked.scores, ranked.rows)
                return hits[:k]
            ranked = distinct(
                lambda depth: self._vector(ds, query_vector, sql, depth, with_vectors=True), fetch
            )
            if ranked.vectors is not None and ranked.ids:
                redundancy = "last" if mmr == "last" else "all"
                chosen = mmr_select(query_vector, ranked.vectors, k, lambda_mult, redundancy)
                ranked = ChannelRanking(
                    [ranked.ids[i] for i in chosen],
                    [ranked.row_ids[i] for i in chosen],
                    [ranked.scores[i] for i in chosen],
                )
            return read_hits(self._state, ds, ranked.ids[:k], {"vector": ranked}, ranked.scores[:k])

    def _hybrid(
        self,
        ds: lance.LanceDataset,
        query: Any,
        vector: Any,
        sql: str | None,
        k: int,
        options: FusionOptions,
        observe: Callable[[lance.LanceDataset, Vector | None], None] | None,
    ) -> list[SearchHit]:
        """Both channels ranked and fused.

        A text query is embedded while the text channel reads, when the embedder runs well
        beside it (see ``embed_beside``).
        """
        embedder = self._state.embedding.embedder
        pending = (
            None
            if vector is not None
            else embed_beside(embedder, query, lambda: self.query_vector(ds, query))
        )
        text_ranked = None
        if pending is None:
            query_vector = self.query_vector(ds, query if vector is None else vector)
        else:
            try:
                text_ranked = distinct(lambda n: self._text(ds, query, sql, n), options.depth)
            finally:
                query_vector = pending.result()  # the query's own error first, as when it ran first
        if observe is not None:
            observe(ds, query_vector)
        text = _as_text(query)
        channels = self.channels(ds, text, query_vector, sql, options.depth, text_ranked=text_ranked)
        best = fuse({name: r.pairs() for name, r in channels.items()}, options).ranked(k)
        return read_hits(self._state, ds, [key for key, _ in best], channels, [score for _, score in best])

    def snapshot(self, version: int | str | None, *, ranks_by_vector: bool) -> lance.LanceDataset:
        """The version to read (the latest when None), its due vector index built first.

        Only a read of the latest version that ranks by vector builds the index (see
        ``Maintainer.index_for_search``); a past version is searched as it was.
        """
        pinned = None if version is None else self._history.resolve(version)
        ds = self._state.snapshot(pinned)
        if pinned is None and ranks_by_vector:
            ds = self._maintainer.index_for_search(ds)
        return ds

    def query_vector(self, ds: lance.LanceDataset, query: object) -> Vector:
        """The vector to search ``ds`` with, checked against the vectors that version holds.

        Raises:
            EmbedderMismatchError: A past version from before a ``reembed()`` holds vectors
                of another size.
            SearchError: A past version holds no vectors (they came later).
        """
        vector = self._state.embedding.query_vector(query)
        held = embedding_dimension(self._state.handle.schema(ds))
        if held is None:
            raise SearchError(
                f"version {ds.version} holds no vectors (they were added later): search it with "
                "mode='text', or recall without vector="
            )
        if held != len(vector):
            raise EmbedderMismatchError(
                f"version {ds.version} holds {held}-dimensional vectors (from before a reembed()) and the "
                f"query vector has {len(vector)}: search that version with mode='text', or pass vector= "
                f"of {held} numbers"
            )
        return vector

    def channels(
        self,
        ds: lance.LanceDataset,
        text: str,
        vector: Vector | None,
        sql: str | None,
        depth: int,
        *,
        candidates: ExactRows | None = None,
        text_ranked: ChannelRanking | None = None,
    ) -> dict[str, ChannelRanking]:
        """Both channels' top ``depth`` distinct ids (with row ids and scores), filtered first.

        Without a vector (a store that does not embed) only the text channel ranks.
        ``candidates``: the rows ``sql`` matches, one per id, with their vectors (an
        outline read with them): the vector channel ranks them without reading again.
        ``text_ranked``: the text channel, already read at ``depth``.
        """
        text_ranked = (
            text_ranked
            if text_ranked is not None
            else distinct(lambda n: self._text(ds, text, sql, n), depth)
        )
        ranked = {"text": text_ranked}
        if vector is not None and candidates is not None:
            ranked["vector"] = candidates.rank(vector, depth)
        elif vector is not None:
            ranked["vector"] = distinct(lambda n: self._vector(ds, vector, sql, n), depth)
        return ranked

    # ------------------------------------------------------------------ channels
    def _nearest(self, ds: lance.LanceDataset, vector: Vector, sql: str | None, k: int) -> dict[str, Any]:
        nearest: dict[str, Any] = {"column": "embedding", "q": vector, "k": k, "metric": "cosine"}
        handle, policy = self._state.handle, self._state.settings.indexing
        if VECTOR_INDEX not in handle.facts(ds).indexes:
            return nearest
        if sql is not None:
            candidates = handle.call(
                lambda: ds.count_rows(filter=sql), "count search candidates", retry=False
            )
            if candidates <= policy.flat_search_max_rows:
                nearest["use_index"] = False  # few candidates: exact search is fast and exact
                return nearest
        nearest["nprobes"] = policy.nprobes
        nearest["refine_factor"] = policy.refine_factor
        return nearest

    def _exact_few(
        self, ds: lance.LanceDataset, vector: Vector, sql: str, k: int, with_vectors: bool
    ) -> ChannelRanking | None:
        """Exact cosine top-k of a filter matching few rows (a session), ranked here; None for many.

        Reading the few candidates' vectors through the filter's index and ranking them
        in numpy is exact and about three times faster than Lance's prefiltered scan.
        Records without a vector are dropped here: ``embedding IS NOT NULL`` in the
        filter would make Lance evaluate it row by row (about 0.6 ms on a session).
        """
        most = EXACT_MAX
        table = self._state.handle.call(
            lambda: ds.to_table(filter=sql, columns=["id", "embedding"], with_row_id=True, limit=most + 1),
            "read search candidates",
            retry=False,
        )
        if table.num_rows > most:
            return None
        return rank_exactly(table, vector, k, with_vectors=with_vectors)

    def _vector(
        self,
        ds: lance.LanceDataset,
        vector: Vector,
        sql: str | None,
        k: int,
        *,
        with_vectors: bool = False,
        with_records: bool = False,
    ) -> ChannelRanking:
        """Top ``k`` by cosine; ``with_records`` reads the hits' records in the same query."""
        if sql is not None:
            few = self._exact_few(ds, vector, sql, k, with_vectors)
            if few is not None:
                return few
        nearest = self._nearest(ds, vector, sql, k)
        if with_records:
            columns = [*record_columns(ds.schema), "_distance"]
        else:
            columns = ["id", "_distance", "embedding"] if with_vectors else ["id", "_distance"]
        table = self._state.handle.call(
            lambda: ds.to_table(
                nearest=nearest, filter=sql, prefilter=True, columns=columns, with_row_id=True
            ),
            "run a vector search",
            retry=False,
        )
        distances = table.column("_distance").to_pylist()
        vectors = None
        if with_vectors:
            column = table.column("embedding").combine_chunks()
            flat = column.flatten().to_numpy(zero_copy_only=False)
            vectors = np.asarray(flat, dtype=np.float32).reshape(table.num_rows, column.type.list_size)
        return ChannelRanking(
            table.column("id").to_pylist(),
            table.column("_rowid").to_pylist(),
            [1.0 - float(d) for d in distances],
            vectors,
            table.drop_columns(["_distance", "_rowid"]) if with_records else None,
        )

    def _text(self, ds: lance.LanceDataset, text: str, sql: str | None, k: int) -> ChannelRanking:
        if not text.strip():
            return ChannelRanking([], [], [])
        table = self._state.handle.call(
            lambda: ds.to_table(
                full_text_query=MatchQuery(text, "search_text"),
                filter=sql,
                prefilter=True,
                limit=k,
                columns=["id", "_score"],
                with_row_id=True,
            ),
            "run a full-text search",
            retry=False,
        )
        return ChannelRanking(
            table.column("id").to_pylist(),
            table.column("_rowid").to_pylist(),
            [float(s) for s in table.column("_score").to_pylist()],
        )


def rank_exactly(table: pa.Table, vector: Vector, k: int, *, with_vectors: bool = False) -> ChannelRanking:
    """Exact cosine top ``k`` of rows with ``id``, ``_rowid`` and ``embedding`` (rows without one skipped)."""
    return ExactRows.of(table).rank(vector, k, with_vectors=with_vectors)


def _as_text(query: object) -> str:
    if not isinstance(query, str):
        raise SearchError("text and hybrid search need a text query")
    return query
