"""Keeping a store fast as it grows: tiered compaction, index upkeep and cleanup.

Every Lance append is a new fragment (file). Left alone, thousands of one-message
appends become thousands of fragments: scans slow down ~40x and every manifest grows.
Compacting everything into one fragment each time fixes reads but rewrites the whole
history on every merge, and old versions keep the old files, so disk grows
quadratically.

The store therefore merges like an LSM tree. A fragment's *level* is
``floor(log_fanout(rows))``. When ``fanout`` adjacent fragments sit below level L+1,
they are merged into fragments of about ``fanout**(L+1)`` rows. Each row is rewritten
once per level, so bytes written stay O(n log n), fragment count stays O(fanout *
levels), and ``add()`` latency stays flat. Compaction runs inline, right after the
commit that made it due, in the writer's own thread: there is no background thread
that could lose work or outlive the process. A failed compaction never fails the
``add()`` that triggered it; the next one retries.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal

import lance
from lance.dataset import Index

from ._cluster import commit_or_discard, sorted_compaction
from ._errors import CommitConflictError, LanceContextError, redact
from ._known import Facts
from ._policies import CompactionPolicy, IndexPolicy
from ._retention import apply_retention, retention_due
from ._state import StoreState
from ._vector_index import VECTOR_INDEX, build_vector_index

if TYPE_CHECKING:
    from ._dataset import DatasetHandle

__all__ = [
    "INDEXES",
    "INDEX_NAMES",
    "Maintainer",
    "build_indexes",
    "compaction_target",
    "upkeep_left_to_later",
]

log = logging.getLogger("lance_context")

#: The scalar and full-text indexes every store keeps (see ``IndexPolicy``).
INDEXES: tuple[tuple[str, Literal["BITMAP", "BTREE", "INVERTED"]], ...] = (
    ("run_id", "BITMAP"),
    ("id", "BTREE"),
    ("search_text", "INVERTED"),
)
#: The names of the indexes in ``INDEXES``.
INDEX_NAMES = frozenset(f"{column}_idx" for column, _ in INDEXES)


def _level(rows: int, fanout: int) -> int:
    return int(math.log(max(rows, 1), fanout) + 1e-9)


def compaction_target(fragment_rows: Sequence[int], policy: CompactionPolicy) -> int | None:
    """The ``target_rows_per_fragment`` to compact with now, or None if nothing is due.

    Level L is due when ``fanout`` fragments *of level L* sit in one run that no larger
    fragment interrupts (only adjacent fragments can be merged; smaller ones in the run
    are merged along). Merging level L yields fragments of ``fanout**(L+1)`` rows, so a
    row is rewritten once per level it climbs: O(log n) times in all.
    """
    fanout = policy.fanout
    if len(fragment_rows) < fanout:
        return None
    levels = [_level(rows, fanout) for rows in fragment_rows]
    top = _level(policy.max_rows_per_fragment, fanout)
    for level in range(top):
        run = 0
        for fragment_level in levels:
            if fragment_level == level:
                run += 1
            elif fragment_level > level:
                run = 0
            if run >= fanout:
                return int(min(fanout ** (level + 1), policy.max_rows_per_fragment))
    return None


def _refresh_due(unindexed: int, rows: int, policy: IndexPolicy) -> bool:
    """Whether enough rows sit outside the indexes to fold them in now."""
    if unindexed >= policy.refresh_unindexed_rows:
        return True
    return unindexed >= max(policy.scalar_refresh_rows, policy.refresh_unindexed_share * rows)


def _unbuilt(ds: lance.LanceDataset) -> list[Index]:
    """The indexes ``ds`` lacks, built but not committed (none while it holds no rows).

    A store without rows has nothing to index: its first rows are searched without the
    indexes until ``Maintainer`` builds them (see ``IndexPolicy.scalar_refresh_rows``).
    """
    present = {index.name for index in ds.describe_indices()}
    missing = [(column, kind) for column, kind in INDEXES if f"{column}_idx" not in present]
    fragments = [int(fragment.fragment_id) for fragment in ds.get_fragments()]
    if not missing or not fragments:
        return []
    built = []
    for column, kind in missing:
        segment = ds.create_index_uncommitted(column, kind, name=f"{column}_idx", fragment_ids=fragments)
        if kind == "INVERTED":  # until merged, a full-text segment is staging files a search cannot open
            segment = ds.merge_existing_index_segments([segment])
        built.append(segment)
    return built


@contextlib.contextmanager
def upkeep_left_to_later(message: str) -> Iterator[None]:
    """Log ``message`` instead of raising when index upkeep after a committed change keeps losing.

    The change is not undone, so a ``CommitConflictError`` saying nothing was written
    would be wrong; the store's maintenance (a later write, or the search that finds the
    vector index due) does the upkeep.
    """
    try:
        yield
    except CommitConflictError:
        log.info("lance-context: %s (other writers kept committing first)", message)


def build_indexes(handle: DatasetHandle, action: str, *, retry: bool = True) -> None:
    """Build the scalar and full-text indexes the latest version lacks, as one version.

    One ``CreateIndex`` commit for all of them (Lance's ``create_scalar_index`` commits
    each index as a version of its own), and none when nothing is missing or the store
    holds no rows.
    """
    handle.check_commits()

    def attempt() -> None:
        base = handle.private_latest()
        segments = _unbuilt(base)
        if not segments:
            return
        commit_or_discard(handle, base, lance.LanceOperation.CreateIndex(segments, []), "index", action)

    handle.call(attempt, action, retry=retry)


class Maintainer:
    """Compaction, index upkeep and the vector index of one store."""

    def __init__(self, state: StoreState) -> None:
        """Maintain the store ``state`` describes."""
        self._state = state
        self._busy = threading.Lock()

    @property
    def _compaction(self) -> CompactionPolicy:
        return self._state.settings.compaction

    @property
    def _indexing(self) -> IndexPolicy:
        return self._state.settings.indexing

    def after_write(self, written: lance.LanceDataset) -> None:
        """Compact and refresh indexes when the commit that made ``written`` made them due.

        Decided from the manifest alone. Never fails the write: a step that fails (for
        example because another writer compacted first) is logged and retried after a
        later write. One thread maintains at a time; others skip.
        """
        if not self._busy.acquire(blocking=False):
            return
        step = "compaction"
        try:
            handle = self._state.handle
            facts = handle.facts(written)
            merged = None
            if self._compaction.enabled:
                merged = compaction_target([rows for _, rows in facts.fragments], self._compaction)
                if merged is not None:
                    self._compact(merged, 0.2, "compact", retry=False)
                    facts = handle.facts(handle.latest())
            step = "index upkeep"
            self._refresh_indexes(facts, merged)
            step = "vector index build"
            if self._vector_index_due(facts) and facts.rows < 2 * self._indexing.vector_index_min_rows:
                self.build_vector_index()
            step = "retention"
            retention = self._state.settings.retention
            if retention is not None and retention_due(handle.uri, retention):
                apply_retention(self._state, retention)
        except CommitConflictError:  # normal with several writers: one of them does it
            log.info(
                "lance-context: version %d was written; %s was left to a later write "
                "(another writer committed first)",
                int(written.version),
                step,
            )
        except LanceContextError as exc:
            log.warning(
                "lance-context: version %d was written; %s was skipped (%s) and will run after a later write",
                int(written.version),
                step,
                _reason(exc),
            )
        finally:
            self._busy.release()

    def _compact(self, target: int, deletions: float, action: str, *, retry: bool) -> None:
        """Merge small fragments into ones of ``target`` rows, sorted by session (``_cluster``).

        A retry after a conflict merges only what is left of the fragments the first
        attempt found: with writers in other processes adding and compacting all the
        while, a merge of every fragment present would lose to them again and again, and
        the fragments they write meanwhile are theirs to maintain.
        """
        handle = self._state.handle
        handle.check_commits()
        up_to: int | None = None  # the largest fragment id of the first attempt's version

        def attempt() -> None:
            nonlocal up_to
            base = handle.private_latest()
            if up_to is None:
                up_to = max((fragment for fragment, _ in handle.facts(base).fragments), default=-1)
            planned = sorted_compaction(base, target, deletions_threshold=deletions, up_to=up_to)
            if isinstance(planned, lance.LanceOperation.Rewrite):
                commit_or_discard(handle, base, planned, "compact", action)
            elif planned is not None:  # too large to sort in memory: Lance streams it
                base.optimize.compact_files(
                    target_rows_per_fragment=target, materialize_deletions_threshold=deletions
                )
                handle.adopt(base)

        handle.call(attempt, action, retry=retry)

    def _refresh_indexes(self, facts: Facts, merged: int | None) -> None:
        """Build the indexes once due; fold new rows into them when enough are unindexed.

        The session and id indexes are also refreshed right after a compaction that made
        fragments of ``scalar_refresh_rows`` or more: a session read then opens only the
        fragments that hold it (measured on a store grown by 10,000 adds: the last 50 of a
        session in 2.5 ms with the indexes covering every fragment, 8 ms without).
        """
        policy = self._indexing
        missing = [column for column, _ in INDEXES if f"{column}_idx" not in facts.indexes]
        handle = self._state.handle
        if missing:
            if facts.rows >= policy.scalar_refresh_rows:
                build_indexes(handle, "build the store's indexes", retry=False)
        elif _refresh_due(facts.unindexed("search_text_idx"), facts.rows, policy):
            handle.write(
                lambda ds: ds.optimize.optimize_indices(), "refresh indexes", retry=False, keeps_records=True
            )
        elif merged is not None and merged >= policy.scalar_refresh_rows:
            scalar = ["run_id_idx", "id_idx"]
            handle.write(
                lambda ds: ds.optimize.optimize_indices(index_names=scalar),
                "refresh indexes",
                retry=False,
                keeps_records=True,
            )

    def _vector_index_due(self, facts: Facts) -> bool:
        if self._state.embedding.dimension is None or VECTOR_INDEX in facts.indexes:
            return False
        return facts.rows >= self._indexing.vector_index_min_rows

    def index_for_search(self, ds: lance.LanceDataset) -> lance.LanceDataset:
        """Build a due vector index before a search of the latest version; return what to search.

        Only a store that may write builds it: a read-only store or a checked-out
        version searches exactly. A failed build is logged and the search goes on.
        """
        state = self._state
        if state.read_only or state.pinned is not None or not self._vector_index_due(state.handle.facts(ds)):
            return ds
        with self._busy:
            try:
                if self._vector_index_due(state.handle.facts(state.handle.latest())):
                    self.build_vector_index()
            except LanceContextError as exc:
                log.warning("lance-context: vector index not built: %s", _reason(exc))
        return state.handle.latest()

    def build_vector_index(self) -> None:
        """Build (or rebuild) the approximate vector index now, as one new version (``_vector_index``)."""
        build_vector_index(self._state)

    def compact(self) -> None:
        """Merge every small fragment now and refresh (or build) the indexes; new versions.

        Once the merge is committed, index upkeep that keeps losing to other writers'
        commits is left to their maintenance (``upkeep_left_to_later``), as after a write.
        """
        self._state.check_writable()
        handle = self._state.handle
        with self._busy:
            self._compact(self._compaction.max_rows_per_fragment, 0.1, "compact the store", retry=True)
            with upkeep_left_to_later("the store was compacted; index upkeep was left to a later write"):
                build_indexes(handle, "build the store's indexes")
                handle.write(lambda ds: ds.optimize.optimize_indices(), "refresh indexes", keeps_records=True)


def _reason(exc: BaseException) -> str:
    """Why a maintenance step failed, without the advice meant for failed writes."""
    cause = exc.__cause__ or exc
    return redact(str(cause).split("\n", 1)[0][:300])
