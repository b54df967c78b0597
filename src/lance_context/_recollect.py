"""``recall()``: what in a conversation is relevant to a query, as whole moments of it.

Both search channels rank the session's turns; their scores are fused and each turn
gets part of the score of the turn after it (:mod:`._recall`); the best ``k`` matches
then come back with the turns around them, read in one take from the same snapshot.
Measured on the LoCoMo development split (``docs/recall.md``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._arrow import table_to_records
from ._embedders import embed_beside
from ._errors import SearchError
from ._fusion import TurnOrder
from ._outlines import Conversation, OutlineMemo
from ._ranking import ChannelRanking
from ._reader import Reader, filter_sql, record_columns
from ._recall import RecallOptions, rank_for_recall, with_neighbours
from ._records import ContextRecord
from ._rerank import as_reranker, rerank_order
from ._schema import embedding_dimension
from ._search import _MAX_K, EXACT_MAX, Searcher
from ._state import StoreState

__all__ = ["Recall", "Recaller"]


@dataclass(frozen=True)
class Recall:
    """One match of :meth:`ContextStore.recall` and the turns that come with it.

    Attributes:
        match: The matching record.
        score: Its fused score (larger is better); with a reranker, the reranked matches
            score above the rest in the reranker's order.
        turns: The match and its neighbouring turns in conversation order, less those a
            better match already returned (so the match itself may be missing).

    Example:
        >>> [t.text for t in store.recall("where did we go?", run_id="chat")[0].turns]  # doctest: +SKIP
        ['Where did you go in May?', 'Lisbon, for the tiles.', 'Lovely!']
    """

    match: ContextRecord
    score: float
    turns: tuple[ContextRecord, ...]


class Recaller:
    """Runs recall against one store as it reads."""

    def __init__(self, state: StoreState, reader: Reader, searcher: Searcher) -> None:
        """Recall through ``searcher``'s channels and ``reader``'s outlines of ``state``'s store."""
        self._state, self._reader, self._searcher = state, reader, searcher
        self._outlines = OutlineMemo()

    def recall(
        self,
        query: str,
        *,
        run_id: str | None,
        k: int | None,
        before: int | None,
        after: int | None,
        roles: str | Iterable[str] | None,
        since: datetime | None,
        until: datetime | None,
        where: Mapping[Any, Any] | None,
        vector: Any,
        version: int | str | None,
        options: RecallOptions | None,
    ) -> list[Recall]:
        """See ``ContextStore.recall``."""
        if not isinstance(query, str) or not query.strip():
            raise SearchError("recall needs a non-empty text query")
        if options is not None and not isinstance(options, RecallOptions):
            raise SearchError(f"options takes a RecallOptions, got {type(options).__name__}")
        options = options or RecallOptions()
        k = options.k if k is None else k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise SearchError(f"k must be a positive integer, got {k!r}")
        before = options.before if before is None else before
        after = options.after if after is None else after
        for name, value in (("before", before), ("after", after)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SearchError(f"{name} must be a non-negative integer, got {value!r}")
        if k > _MAX_K:
            raise SearchError(f"k must be an integer from 1 to {_MAX_K:,}, got {k!r}")
        if k > options.fusion.depth:  # every channel reads at least as deep as the matches asked for
            options = dataclasses.replace(options, fusion=dataclasses.replace(options.fusion, depth=k))
        sql = filter_sql(run_id, roles, since, until, where)
        embedding = self._state.embedding
        if vector is not None and embedding.dimension is None:
            raise SearchError("this store holds no vectors yet: recall without vector= ranks by text alone")
        text_only = vector is None and (embedding.dimension is None or embedding.embedder is None)
        ds = self._searcher.snapshot(version, ranks_by_vector=not text_only)
        if vector is None and embedding_dimension(self._state.handle.schema(ds)) is None:
            text_only = True  # a past version from before the store held vectors
        asked = query if vector is None else vector
        pending = None  # recall across sessions reads no outline to embed beside
        if not text_only and run_id is not None:
            pending = embed_beside(embedding.embedder, asked, lambda: self._searcher.query_vector(ds, asked))
        query_vector = None if text_only or pending is not None else self._searcher.query_vector(ds, asked)
        # the conversation is the records the filters keep: neighbours pass them too. A
        # session of few rows is read with its vectors, which the vector channel then ranks.
        # Recalled again at this version, the session is not read again.
        session = None
        try:
            if run_id is not None:
                exact = None if text_only else EXACT_MAX
                session = self._outlines.get(
                    (self._state.handle.branch, int(ds.version)),
                    (run_id, sql, exact),
                    lambda: self._reader.outline(run_id, where_sql=sql, snapshot=ds, vectors_up_to=exact),
                )
        finally:
            if pending is not None:
                query_vector = pending.result()  # the query's own error first, as when it ran first
        candidates = None if session is None else session.exact
        channels = self._searcher.channels(
            ds, query, query_vector, sql, options.fusion.depth, candidates=candidates
        )
        if session is not None:
            channels = self._current_copies(
                ds, channels, session, query, query_vector, sql, options.fusion.depth
            )
        rankings = {name: ranked.pairs() for name, ranked in channels.items()}
        order: TurnOrder | list[str] = session.order if session is not None else []
        if session is None:
            before = after = 0
            options = dataclasses.replace(options, k=k, before=0, after=0)
        ranked = rank_for_recall(rankings, order, options).ranked()
        records: dict[str, ContextRecord] = {}
        if options.reranker is not None and ranked:
            ranked, records = self._reranked(ds, channels, session, query, ranked, options)
        if session is None:
            order = [key for key, _ in ranked]
        groups = with_neighbours(ranked, order, k, before, after)
        wanted = {t for g in groups for t in g.turns} | {g.match for g in groups}
        records.update(self._read(ds, channels, session, wanted - records.keys()))
        return [
            Recall(records[g.match], g.score, tuple(records[t] for t in g.turns))
            for g in groups
            if g.match in records
        ]

    def _reranked(
        self,
        ds: Any,
        channels: Mapping[str, Any],
        session: Conversation | None,
        query: str,
        ranked: list[tuple[str, float]],
        options: RecallOptions,
    ) -> tuple[list[tuple[str, float]], dict[str, ContextRecord]]:
        """The best ``rerank_depth`` matches in the reranker's order, then the rest; their records."""
        top = ranked[: options.rerank_depth]
        records = self._read(ds, channels, session, {key for key, _ in top})
        top = [(key, score) for key, score in top if key in records]
        texts = [records[key].text_payload or "" for key, _ in top]
        order = rerank_order(as_reranker(options.reranker), query, texts)
        best = ranked[0][1]  # reranked matches score above the rest, in the reranker's order
        reordered = [(top[i][0], best + len(order) - rank) for rank, i in enumerate(order)]
        return reordered + ranked[options.rerank_depth :], records

    def _current_copies(
        self,
        ds: Any,
        channels: dict[str, ChannelRanking],
        session: Conversation,
        text: str,
        vector: Any,
        sql: str | None,
        depth: int,
    ) -> dict[str, ChannelRanking]:
        """The channels ranking only the copy of each id the session reads (its newest).

        An id added twice is stored twice; ``records()`` and ``get()`` read its newest copy,
        and so does the outline that orders the conversation. A channel that ranked an
        older copy is run again without the older copies, so a match is never a text the
        conversation no longer holds.
        """
        rows = session.row_of

        def stale(ranked: ChannelRanking) -> bool:
            return any(rows.get(key) != row for key, row in zip(ranked.ids, ranked.row_ids, strict=True))

        if not any(stale(ranked) for ranked in channels.values()):
            return channels
        current = set(rows.values())
        runs: dict[str, Callable[[int], ChannelRanking]] = {
            "text": lambda n: self._searcher._text(ds, text, sql, n),
            "vector": lambda n: self._searcher._vector(ds, vector, sql, n),
        }
        return {
            name: _only_rows(runs[name], current, depth) if stale(ranked) else ranked
            for name, ranked in channels.items()
        }

    def _read(
        self, ds: Any, channels: Mapping[str, Any], session: Conversation | None, ids: set[str]
    ) -> dict[str, ContextRecord]:
        """The records of these ids, in one take from the snapshot the channels ranked.

        A session's turns are read at the rows its outline holds (each id's newest copy,
        as ``records()`` reads it); without a session, at the row the first channel found.
        """
        row_of: dict[str, int] = {}
        for ranked in channels.values():
            for key, row in zip(ranked.ids, ranked.row_ids, strict=True):
                if key in ids:
                    row_of.setdefault(key, row)
        if session is not None:
            rows = session.row_of
            row_of.update((key, rows[key]) for key in ids if key in rows)
        wanted = sorted(row_of, key=lambda key: row_of[key])
        if not wanted:
            return {}
        handle = self._state.handle
        columns = record_columns(handle.schema(ds))
        table = handle.call(
            lambda: handle.take_rows(ds, [row_of[key] for key in wanted], columns),
            "read recalled turns",
            retry=False,
        )
        return {record.id: record for record in table_to_records(table, self._state.cipher)}


def _only_rows(run: Callable[[int], ChannelRanking], rows: set[int], depth: int) -> ChannelRanking:
    """A channel's top ``depth`` hits among ``rows`` (one row per id), read deeper while others fill it."""
    n = depth
    while True:
        ranked = run(n)
        keep = [i for i, row in enumerate(ranked.row_ids) if row in rows][:depth]
        if len(keep) == depth or len(ranked.ids) < n:
            return ChannelRanking(
                [ranked.ids[i] for i in keep],
                [ranked.row_ids[i] for i in keep],
                [ranked.scores[i] for i in keep],
            )
        n *= 2
