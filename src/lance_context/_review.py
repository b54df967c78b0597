"""Reviewing a branch before merging it: what changes, and what that does to retrieval.

:meth:`Reviewer.review` writes nothing. It returns the merge plan (records added, changed
and deleted per session, and conflicts) and, for each evaluation query, the top-k on the
target and on the branch side by side, marking what the merge would add to or remove
from the target's results.

The results after the merge are computed without building the merged store: they are
the best of the target's records the merge leaves alone (a search of the target with
the touched ids filtered out) and of the records the merge brings (a search of the
branch restricted to those ids). Filters apply before the top-k in both, so for vector
search, where a score depends only on the record and the query, this is exactly what a
search after the merge returns. For text and hybrid search it is an estimate: BM25
scores depend on the whole corpus.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ._arrow import table_to_records
from ._embedding import embeds_as
from ._errors import SearchError
from ._history import History
from ._maintenance import Maintainer
from ._merge import Merger
from ._mergeplan import MergeConflict, MergePlan, OnConflict, SessionChanges, summarize
from ._reader import filter_sql, ordered
from ._sealed import check_query
from ._search import Searcher, SearchHit, SearchMode
from ._state import StoreState

__all__ = ["HitSummary", "QueryReview", "Review", "Reviewer", "hit_summaries"]

_WIDTH = 44


@dataclass(frozen=True)
class HitSummary:
    """One search hit as a person reads it.

    Attributes:
        rank: Its rank, from 1.
        id: The record id.
        run_id: Its session.
        role: Its role.
        score: Its score (larger is better).
        summary: Its content, cut short.
        mark: ``+`` the merge brings it into the results, ``-`` takes it out, ``~`` changes
            it; empty otherwise.

    Example:
        >>> str(HitSummary(1, "r1", "faq", "document", 0.83, "Returns within 30 days", "+"))
        '1 + 0.83 Returns within 30 days'
    """

    rank: int
    id: str
    run_id: str
    role: str
    score: float
    summary: str
    mark: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.rank} {self.mark or ' '} {self.score:.2f} {self.summary}"


def hit_summaries(
    hits: Sequence[SearchHit], marks: Mapping[str, str] | None = None, width: int = 72
) -> list[HitSummary]:
    """Hits as :class:`HitSummary` rows, ranked from 1, with an optional mark per id."""
    rows = []
    for rank, hit in enumerate(hits, start=1):
        record = hit.record
        nbytes = None if record.binary_payload is None else len(record.binary_payload)
        text = summarize(record.text_payload, record.content_type, nbytes, width=width)
        mark = (marks or {}).get(record.id, "")
        rows.append(HitSummary(rank, record.id, record.run_id, record.role, float(hit.score), text, mark))
    return rows


def _cell(hit: HitSummary | None) -> str:
    text = "" if hit is None else str(hit)
    return text if len(text) <= _WIDTH + 8 else text[: _WIDTH + 7] + "…"


@dataclass(frozen=True)
class QueryReview:
    """One evaluation query, on the target and on the branch, and after the merge.

    Attributes:
        query: The query text.
        mode: The search mode.
        k: How many hits each side shows.
        target: The target's hits now (``-``: the merge takes it out, ``~``: changes it).
        branch: The branch's hits (``+``: the merge brings it into the target's results).
        merged: The target's hits after the merge.
        target_name: The target branch and version, for display.
        branch_name: The branch and version, for display.

    Example:
        >>> review = store.review("consolidate", queries=["peanuts?"])  # doctest: +SKIP
        >>> review.queries[0].added, review.queries[0].removed         # doctest: +SKIP
        (['summary-1'], ['msg-3'])
    """

    query: str
    mode: SearchMode
    k: int
    target: list[HitSummary] = field(default_factory=list)
    branch: list[HitSummary] = field(default_factory=list)
    merged: list[HitSummary] = field(default_factory=list)
    target_name: str = "target"
    branch_name: str = "branch"

    @property
    def added(self) -> list[str]:
        """Ids the merge brings into the target's top-k."""
        before = {h.id for h in self.target}
        return [h.id for h in self.merged if h.id not in before]

    @property
    def removed(self) -> list[str]:
        """Ids the merge takes out of the target's top-k."""
        after = {h.id for h in self.merged}
        return [h.id for h in self.target if h.id not in after]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return {
            "query": self.query,
            "mode": self.mode,
            "k": self.k,
            "target": [h.to_dict() for h in self.target],
            "branch": [h.to_dict() for h in self.branch],
            "merged": [h.to_dict() for h in self.merged],
            "added": self.added,
            "removed": self.removed,
        }

    def __str__(self) -> str:
        width = _WIDTH + 8
        lines = [
            f"{self.query!r} ({self.mode}, top {self.k})",
            f"  {self.target_name:<{width}} | {self.branch_name}",
        ]
        for row in range(max(len(self.target), len(self.branch))):
            left = self.target[row] if row < len(self.target) else None
            right = self.branch[row] if row < len(self.branch) else None
            lines.append(f"  {_cell(left):<{width}} | {_cell(right)}".rstrip())
        if not self.added and not self.removed:
            lines.append("  the merge leaves these results as they are")
        else:
            lines.append(
                f"  the merge brings in {len(self.added)} and takes out {len(self.removed)} of these results"
            )
        merged = [h.id for h in self.merged]
        if merged not in ([h.id for h in self.branch], [h.id for h in self.target]):  # not a list shown above
            lines.append("  after the merge: " + "; ".join(f"{h.rank} {h.summary}" for h in self.merged))
        return "\n".join(lines)


@dataclass(frozen=True)
class Review:
    """What merging a branch would change, and what that does to retrieval (nothing written).

    Attributes:
        plan: The merge plan: records added, changed and deleted per session, and conflicts.
        queries: One :class:`QueryReview` per evaluation query.

    Example:
        >>> review = store.review("consolidate", queries=["what is Ada allergic to?"], k=3)  # doctest: +SKIP
        >>> print(review)                                                                   # doctest: +SKIP
    """

    plan: MergePlan
    queries: list[QueryReview] = field(default_factory=list)

    @property
    def sessions(self) -> list[SessionChanges]:
        """The changes grouped by session."""
        return self.plan.sessions

    @property
    def conflicts(self) -> list[MergeConflict]:
        """Records both sides changed differently."""
        return self.plan.conflicts

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return {**self.plan.to_dict(), "queries": [q.to_dict() for q in self.queries]}

    def __str__(self) -> str:
        return "\n\n".join([str(self.plan), *(str(q) for q in self.queries)])


def _and(where: Mapping[Any, Any] | None, extra: Mapping[Any, Any]) -> dict[Any, Any]:
    return dict(extra) if not where else {"$and": [dict(where), dict(extra)]}


@dataclass(frozen=True)
class _Sides:
    """The two searchers of a review and what the merge touches."""

    target: Searcher
    source: Searcher
    touched: list[str]
    brought: list[str]
    changed: set[str]
    vectors: tuple[bool, bool] = (True, True)  # whether the target and the branch hold vectors
    #: The branch's records the merge brings and embeds (it holds no vectors; see ``embed_rows``).
    embedded: StoreState | None = None


class Reviewer:
    """Reviews branches of one store before they are merged."""

    def __init__(self, state: StoreState, merger: Merger) -> None:
        """Review with ``merger``'s plans; search through views of ``state``."""
        self._state = state
        self._merger = merger

    def review(
        self,
        branch: str,
        queries: Sequence[str],
        *,
        k: int,
        into: str,
        mode: SearchMode,
        where: Mapping[Any, Any] | None,
        on_conflict: OnConflict,
    ) -> Review:
        """The plan of merging ``branch`` into ``into`` and each query's results before and after."""
        if isinstance(queries, str):
            queries = [queries]
        if queries:  # as search does: text search and sealed filters would silently find nothing
            check_query(self._state.cipher, where=where, mode=mode)
        plan, sides = self._merger.plan(branch, into, on_conflict)
        vectors = ("embedding" in sides.ours.schema.names, "embedding" in sides.theirs.schema.names)
        if queries and mode == "hybrid" and not all(vectors):
            lacking = into if not vectors[0] else branch
            raise SearchError(
                f"{lacking!r} holds no vectors, so a hybrid search after the merge cannot be estimated; "
                "review with mode='vector' (exact) or mode='text'"
            )
        view = self._state.view
        source = view(handle=sides.source, pinned=plan.branch_version, read_only=True)
        target = sides.ours.schema
        both = _Sides(
            self._searcher(view(handle=sides.target, pinned=plan.target_version, read_only=True)),
            self._searcher(source),
            sorted({c.id for c in plan.changes}),
            sorted({c.id for c in plan.changes if c.kind != "deleted"}),
            {c.id for c in plan.changes if c.kind == "changed"},
            vectors,
            source if vectors == (True, False) and embeds_as(self._state.embedding, target) else None,
        )
        names = (f"{into}@{plan.target_version}", f"{branch}@{plan.branch_version}")
        return Review(plan, [self._query(q, both, k, mode, where, names) for q in queries])

    def _query(
        self,
        query: str,
        sides: _Sides,
        k: int,
        mode: SearchMode,
        where: Mapping[Any, Any] | None,
        names: tuple[str, str],
    ) -> QueryReview:
        vector = None if mode == "text" else self._state.embedding.query_vector(query)

        def run(searcher: Searcher, vectors: bool, extra: Mapping[Any, Any] | None = None) -> list[SearchHit]:
            if mode == "vector" and not vectors:  # no record there has a vector: none is a hit, then or after
                return []
            conditions = where if extra is None else _and(where, extra)
            return searcher.search(query, k=k, mode=mode, where=conditions, vector=vector)

        on_target, on_branch = sides.vectors
        before, theirs = run(sides.target, on_target), run(sides.source, on_branch)
        kept = run(sides.target, on_target, {"id": {"$nin": sides.touched}}) if sides.touched else before
        new = run(sides.source, on_branch, {"id": {"$in": sides.brought}}) if sides.brought else []
        if mode == "vector" and sides.embedded is not None and sides.brought and vector is not None:
            new = self._embedded_hits(sides.embedded, vector, _and(where, {"id": {"$in": sides.brought}}), k)
        after = sorted([*kept, *new], key=lambda h: (-h.score, h.record.id))[:k]
        after_ids, before_ids = {h.record.id for h in after}, {h.record.id for h in before}
        out = {
            i: "-" if i not in after_ids else "~"
            for i in before_ids
            if i not in after_ids or i in sides.changed
        }
        into = {
            i: "+" if i not in before_ids else "~"
            for i in after_ids
            if i not in before_ids or i in sides.changed
        }
        return QueryReview(
            query,
            mode,
            k,
            hit_summaries(before, out, _WIDTH),
            hit_summaries(theirs, into, _WIDTH),
            hit_summaries(after, into, _WIDTH),
            *names,
        )

    def _embedded_hits(
        self, state: StoreState, vector: Any, where: Mapping[Any, Any], k: int
    ) -> list[SearchHit]:
        """The best ``k`` of the records a merge embeds as it brings them, by cosine similarity."""
        ds, sql = state.snapshot(), filter_sql(None, where=where)  # one read, with each record's embed_text
        table = state.handle.call(lambda: ds.to_table(filter=sql), "read the branch's records")
        records = table_to_records(ordered(table), state.cipher, index_text=True)
        if not records:
            return []
        matrix = np.asarray(self._state.embedding.vectors_for(records), dtype=np.float32)
        query = np.asarray(vector, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(query)
        similarity = np.divide(matrix @ query, norms, out=np.zeros(len(records), np.float32), where=norms > 0)
        hits = [
            SearchHit(record, float(s), vector_distance=1.0 - float(s), channels=("vector",))
            for record, s in zip(records, similarity.tolist(), strict=True)
        ]
        return sorted(hits, key=lambda h: (-h.score, h.record.id))[:k]

    @staticmethod
    def _searcher(state: StoreState) -> Searcher:
        return Searcher(state, History(state), Maintainer(state))
