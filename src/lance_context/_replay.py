"""Replaying a recorded search: exactly as it ran, or today, with the reason for each change.

A replay at the logged version searches that version of the logged branch with the
logged query vector, filters, options and index settings: the store's files of that
version are immutable (until ``cleanup`` removes them), so the same ids come back in the
same order whatever was written, compacted or re-embedded since.

A replay at another version (``at="latest"``) searches that version instead, with the
logged vector while the store embeds with the same model, or the query text embedded
again by the store's current embedder when it changed. Each record whose rank differs,
or whose content changed, gets one reason: it was **added since**, **deleted since**,
**changed since**, its score moved because the **embedder changed**, or it was
**displaced** by the records that moved above or away from it (named in ``by``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from ._dataset import DatasetHandle
from ._embedding import Embedding
from ._errors import SearchError, VersionNotFoundError
from ._fusion import FusionOptions
from ._history import History
from ._maintenance import Maintainer
from ._reader import Reader
from ._records import ContextRecord
from ._review import HitSummary, hit_summaries
from ._schema import embedding_dimension, read_embedder_info
from ._search import Searcher, SearchHit
from ._searchlog import LoggedSearch, SearchLog
from ._state import StoreState

__all__ = ["Replay", "ReplayChange", "ReplayReason", "Replayer"]

ReplayReason = Literal["added_since", "deleted_since", "changed_since", "embedder_changed", "displaced"]
_SAID = {
    "added_since": "added since",
    "deleted_since": "deleted since",
    "changed_since": "changed since",
    "embedder_changed": "the embedder changed since",
    "displaced": "displaced",
}


@dataclass(frozen=True)
class ReplayChange:
    """How one record's place in the results differs from the logged search, and why.

    Attributes:
        id: The record id.
        before: Its rank in the logged results (from 1), or None.
        after: Its rank in the replayed results, or None.
        reason: ``added_since``, ``deleted_since``, ``changed_since``,
            ``embedder_changed`` or ``displaced``.
        summary: Its content (today's, or the logged version's when deleted).
        by: For ``displaced``: the records that moved above it (or, when it rose, away from above it).

    Example:
        >>> str(ReplayChange("m1", None, 1, "added_since", "Summary: peanuts"))
        "+ 'Summary: peanuts' entered at #1: added since"
    """

    id: str
    before: int | None
    after: int | None
    reason: ReplayReason
    summary: str
    by: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return {**asdict(self), "by": list(self.by)}

    def __str__(self) -> str:
        if self.before is None:
            what = f"+ {self.summary!r} entered at #{self.after}"
        elif self.after is None:
            what = f"- {self.summary!r} left (was #{self.before})"
        elif self.before != self.after:
            what = f"~ {self.summary!r} #{self.before} -> #{self.after}"
        else:
            what = f"= {self.summary!r} still #{self.after}"
        why = _SAID[self.reason] + (f" by {', '.join(self.by)}" if self.by else "")
        return f"{what}: {why}"


@dataclass(frozen=True)
class Replay:
    """A recorded search run again.

    Attributes:
        search: The logged search.
        branch: The branch searched.
        version: The version searched.
        hits: The hits of the replay, best first.
        identical: Whether the replay returned the logged ids in the logged order.
        embedder_changed: Whether the store embeds with another model than when it was logged.
        changes: Each difference from the logged results, with its reason (empty when identical
            and nothing changed).
        then: The logged results, summarized (records as they were at the logged version).

    Example:
        >>> replay = store.replay(hits.search_id, at="latest")   # doctest: +SKIP
        >>> [(c.id, c.reason) for c in replay.changes]           # doctest: +SKIP
        [('summary-1', 'added_since'), ('msg-3', 'deleted_since')]
    """

    search: LoggedSearch
    branch: str
    version: int
    hits: list[SearchHit]
    identical: bool
    embedder_changed: bool = False
    changes: list[ReplayChange] = field(default_factory=list)
    then: list[HitSummary] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        """The ids the replay returned, best first."""
        return [h.record.id for h in self.hits]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return {
            "search": self.search.to_dict(),
            "branch": self.branch,
            "version": self.version,
            "identical": self.identical,
            "embedder_changed": self.embedder_changed,
            "hits": [h.to_dict() for h in hit_summaries(self.hits)],
            "changes": [c.to_dict() for c in self.changes],
        }

    def __str__(self) -> str:
        entry = self.search
        lines = [
            f"replay of search {entry.id}: {entry.describe()}",
            f"  logged on {entry.branch}@{entry.version} at {entry.logged_at:%Y-%m-%d %H:%M:%S} UTC; "
            f"replayed on {self.branch}@{self.version}",
        ]
        if self.version == entry.version and entry.branch == self.branch:
            verdict = "the same results, in the same order" if self.identical else "DIFFERENT results"
            lines.append(f"  {verdict}:")
            lines.extend(f"    {h}" for h in hit_summaries(self.hits))
            return "\n".join(lines)
        lines.append(f"  then ({entry.branch}@{entry.version}):")
        lines.extend(f"    {h}" for h in self.then)
        lines.append(f"  now ({self.branch}@{self.version}):")
        lines.extend(f"    {h}" for h in hit_summaries(self.hits))
        lines.append("  what changed:" if self.changes else "  nothing changed")
        lines.extend(f"    {c}" for c in self.changes)
        return "\n".join(lines)


class Replayer:
    """Replays a store's logged searches."""

    def __init__(self, state: StoreState, log: SearchLog) -> None:
        """Replay entries of ``log`` on the store ``state`` describes."""
        self._state = state
        self._log = log

    def replay(self, search_id: str, at: Literal["logged", "latest"] | int = "logged") -> Replay:
        """Run a logged search again at its version, the latest, or another version of its branch."""
        entry = self._log.get(search_id)
        own = self._state.handle
        handle = own if own.branch == entry.branch else own.on_branch(entry.branch)
        if at == "logged":
            version = entry.version
        elif at == "latest":
            version = int(handle.latest().version)
        elif isinstance(at, int) and not isinstance(at, bool) and at >= 1:
            version = at
        else:
            raise SearchError(f"at must be 'logged', 'latest' or a version number (from 1), got {at!r}")
        ds = _checkout(handle, version, entry)
        if version != entry.version:
            _check_logged_version(handle, entry, version)
        metadata = {k.decode(): v.decode() for k, v in (ds.schema.metadata or {}).items()}
        now = read_embedder_info(metadata)
        dimension = embedding_dimension(ds.schema)
        changed = entry.mode != "text" and (
            dimension != entry.dimension or (now is not None and entry.embedder not in (None, now.name))
        )
        state = self._replay_state(handle, version, entry, Embedding(None, dimension, now))
        query: Any = entry.query
        vector = entry.query_vector
        if changed:
            state.embedding.embedder = self._embedder_for(entry, now.name if now else None)
            vector = None
        elif query is None:
            query = vector
        hits = Searcher(state, History(state), Maintainer(state)).search(
            query, vector=vector, k=entry.k, mode=entry.mode, **entry.filters, **_search_options(entry)
        )
        ids = [h.record.id for h in hits]
        identical = ids == entry.ids
        if version == entry.version:
            return Replay(entry, handle.branch, version, hits, identical, changed)
        before = self._records(handle, entry.version, entry, ids)
        after = self._records(handle, version, entry, ids)
        changes = _explain(entry, ids, before, after, changed)
        then = []
        for rank, (record_id, score) in enumerate(entry.hits, start=1):
            run_id, role, summary = _describe(before.get(record_id)) or ("?", "?", "<not readable>")
            then.append(HitSummary(rank, record_id, run_id, role, float(score), summary))
        return Replay(entry, handle.branch, version, hits, identical, changed, changes, then)

    def _replay_state(
        self, handle: DatasetHandle, version: int, entry: LoggedSearch, embedding: Embedding
    ) -> StoreState:
        """A read-only view at ``version`` searching with the index settings the search was logged with."""
        indexing = self._state.settings.indexing
        logged = {
            k: entry.options[k]
            for k in ("nprobes", "refine_factor", "flat_search_max_rows")
            if k in entry.options
        }
        settings = replace(self._state.settings, indexing=replace(indexing, **logged))
        cipher = self._state.cipher  # the records it reads of an encrypted store are opened
        return StoreState(handle, embedding, settings, read_only=True, pinned=version, cipher=cipher)

    def _embedder_for(self, entry: LoggedSearch, name: str | None) -> Any:
        """The store's embedder, to embed the logged query text again after a model change."""
        embedder = self._state.embedding.embedder
        if entry.query is None:
            raise SearchError(
                f"search {entry.id} was made with a query vector of the model the store used then and "
                "kept no query text (a vector query, or a search of an encrypted store, whose log "
                "keeps none); "
                "it cannot be re-run after the store switched models (replay it at its version)"
            )
        if embedder is None or (name is not None and embedder.name != name):
            raise SearchError(
                f"the store now embeds with {name!r}; open it with that embedder to replay search {entry.id} "
                "at this version"
            )
        return embedder

    def _records(
        self, handle: DatasetHandle, version: int, entry: LoggedSearch, ids: Sequence[str]
    ) -> dict[str, ContextRecord]:
        state = self._state.view(handle=handle, pinned=version, read_only=True)
        found = Reader(state).get_many(list(dict.fromkeys([*entry.ids, *ids])))
        return {r.id: r for r in found}


def _checkout(handle: DatasetHandle, version: int, entry: LoggedSearch) -> Any:
    try:
        return handle.at(version)
    except VersionNotFoundError as exc:
        raise VersionNotFoundError(
            f"cannot replay search {entry.id} at version {version} of {entry.branch!r}: {exc}. "
            "Tag the versions whose searches you want to replay (store.tag(...)): cleanup keeps them"
        ) from exc


def _check_logged_version(handle: DatasetHandle, entry: LoggedSearch, version: int) -> None:
    """Refuse, before searching, to compare with a logged version that is gone (its records are)."""
    try:
        handle.at(entry.version)
    except VersionNotFoundError as exc:
        raise VersionNotFoundError(
            f"cannot compare search {entry.id} with version {version}: the version it was logged at "
            f"({entry.version} of {entry.branch!r}) was removed (cleanup or forget), so what it returned "
            "then cannot be read. Search again to see today's results; tag the versions whose searches "
            "you want to replay (store.tag(...)): cleanup keeps them"
        ) from exc


def _search_options(entry: LoggedSearch) -> dict[str, Any]:
    options: dict[str, Any] = {
        k: entry.options[k] for k in ("mmr", "fetch_k", "lambda_mult", "alpha") if k in entry.options
    }
    if "fusion" in entry.options:
        options["fusion"] = FusionOptions(**entry.options["fusion"])
    return options


def _describe(record: ContextRecord | None) -> tuple[str, str, str] | None:
    if record is None:
        return None
    hit = hit_summaries([SearchHit(record, 0.0)])[0]
    return hit.run_id, hit.role, hit.summary


def _same(a: ContextRecord, b: ContextRecord, with_vectors: bool) -> bool:
    return a == b if with_vectors else replace(a, embedding=None) == replace(b, embedding=None)


def _explain(
    entry: LoggedSearch,
    ids: Sequence[str],
    before: dict[str, ContextRecord],
    after: dict[str, ContextRecord],
    embedder_changed: bool,
) -> list[ReplayChange]:
    """One change per record whose rank differs, or whose content changed, with its reason."""
    old = {i: rank for rank, i in enumerate(entry.ids, start=1)}
    new = {i: rank for rank, i in enumerate(ids, start=1)}
    changes = []
    for record_id in [*ids, *(i for i in entry.ids if i not in new)]:
        then, now = before.get(record_id), after.get(record_id)
        rank_then, rank_now = old.get(record_id), new.get(record_id)
        by: tuple[str, ...] = ()
        if then is None and now is None:
            continue  # not readable at either version (cleaned up): nothing to say
        if then is None:
            reason: ReplayReason = "added_since"
        elif now is None:
            reason = "deleted_since"
        elif not _same(then, now, with_vectors=not embedder_changed):
            reason = "changed_since"
        elif rank_then == rank_now:
            continue
        elif embedder_changed:
            reason = "embedder_changed"
        else:
            reason = "displaced"
            by = _displaced_by(entry.ids, list(ids), rank_then, rank_now)
        described = _describe(then if rank_now is None else now or then)
        changes.append(
            ReplayChange(record_id, rank_then, rank_now, reason, described[2] if described else "?", by)
        )
    return changes


def _displaced_by(
    logged: list[str], replayed: list[str], rank_then: int | None, rank_now: int | None
) -> tuple[str, ...]:
    """The records that moved above an unchanged record (it fell) or away from above it (it rose)."""
    old = {i: rank for rank, i in enumerate(logged, start=1)}
    new = {i: rank for rank, i in enumerate(replayed, start=1)}
    if rank_then is not None and (rank_now is None or rank_now > rank_then):
        above_now = replayed if rank_now is None else replayed[: rank_now - 1]
        return tuple(i for i in above_now if old.get(i, len(logged) + 1) > rank_then)
    above_then = logged if rank_then is None else logged[: rank_then - 1]
    assert rank_now is not None
    return tuple(i for i in above_then if new.get(i, len(replayed) + 1) > rank_now)
