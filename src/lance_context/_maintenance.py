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

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import lance

from ._errors import LanceContextError, translate_lance_error

if TYPE_CHECKING:
    from ._dataset import DatasetHandle

__all__ = [
    "CompactionPolicy",
    "MaintenanceMixin",
    "IndexPolicy",
    "compaction_target",
    "index_names",
    "unindexed_rows",
]

log = logging.getLogger("lance_context")


@dataclass(frozen=True)
class CompactionPolicy:
    """When and how the store merges small fragments.

    Example:
        >>> CompactionPolicy(fanout=4).fanout
        4
    """

    enabled: bool = True
    """Compact automatically after writes. ``compact()`` always works."""

    fanout: int = 8
    """How many adjacent fragments of one level are merged into the next level."""

    max_rows_per_fragment: int = 1_048_576
    """Fragments are never merged beyond this many rows."""

    def __post_init__(self) -> None:
        """Reject policies that could never compact."""
        if self.fanout < 2:
            raise ValueError("fanout must be at least 2")
        if self.max_rows_per_fragment < self.fanout:
            raise ValueError("max_rows_per_fragment must be at least fanout")


@dataclass(frozen=True)
class IndexPolicy:
    """Which indexes the store keeps and when it refreshes them.

    The store creates a BITMAP index on ``run_id``, a BTREE index on ``id`` and a
    full-text (INVERTED) index on the text when it is created. Rows appended after an
    index was built are still found (Lance searches them without the index) until a
    refresh folds them in.

    Example:
        >>> IndexPolicy(vector_index_min_rows=10_000).vector_index_min_rows
        10000
    """

    refresh_unindexed_rows: int = 4_096
    """Refresh the indexes once this many rows are not covered by them."""

    vector_index_min_rows: int = 50_000
    """Build an approximate vector index once the store has this many vectors.

    Below it, exact (flat) search is fast enough; see ``make bench``."""

    vector_index_type: str = "IVF_PQ"
    """``IVF_PQ`` (searched with refinement for recall) or ``IVF_HNSW_SQ``."""

    flat_search_max_rows: int = 20_000
    """A filtered vector search that matches at most this many rows is exact."""

    nprobes: int = 32
    """IVF partitions searched per query when the index is used."""

    refine_factor: int = 10
    """Candidates re-ranked with exact distances, as a multiple of k."""


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


def fragment_rows(ds: lance.LanceDataset) -> list[int]:
    """Physical row counts of the dataset's fragments, in order (manifest only, no I/O)."""
    return [frag.metadata.physical_rows for frag in ds.get_fragments()]


def compact_if_due(ds: lance.LanceDataset, policy: CompactionPolicy) -> bool:
    """Run one tiered compaction step if one is due; True when something was merged."""
    target = compaction_target(fragment_rows(ds), policy)
    if target is None:
        return False
    metrics = ds.optimize.compact_files(
        target_rows_per_fragment=target, materialize_deletions_threshold=0.2
    )
    return bool(metrics.fragments_removed)


def index_names(ds: lance.LanceDataset) -> set[str]:
    """Names of the indexes the dataset's current version has."""
    return {index.name for index in ds.describe_indices()}


def unindexed_rows(ds: lance.LanceDataset, index_name: str) -> int:
    """Rows of ``ds`` not covered by the named index (all rows if it is missing)."""
    covered: set[int] = set()
    for index in ds.describe_indices():
        if index.name == index_name:
            for segment in index.segments:
                covered.update(int(i) for i in segment.fragment_ids)
    return sum(
        int(f.metadata.physical_rows) for f in ds.get_fragments() if f.fragment_id not in covered
    )


def _sub_vectors(dimension: int) -> int:
    """PQ sub-vectors of about 8 dimensions each, dividing the dimension exactly."""
    for width in (8, 4, 16, 2, 1):
        if dimension % width == 0:
            return dimension // width
    return 1


class MaintenanceMixin:
    """Compaction and index upkeep; mixed into ContextStore."""

    _handle: DatasetHandle
    _write_lock: threading.RLock
    compaction: CompactionPolicy
    indexing: IndexPolicy
    dimension: int | None

    if TYPE_CHECKING:

        def _check_writable(self) -> None: ...

    def _maintain(self) -> None:
        """Compact and refresh indexes when due. Never fails the write that called it."""
        try:
            ds = self._handle.latest()
            if self.compaction.enabled and compact_if_due(ds, self.compaction):
                ds = self._handle.latest()
            if unindexed_rows(ds, "run_id_idx") >= self.indexing.refresh_unindexed_rows:
                ds.optimize.optimize_indices()
            self._maybe_build_vector_index(ds)
        except Exception as exc:  # compaction is an optimisation: the commit is safe
            log.warning("lance-context maintenance skipped: %s", translate_lance_error(exc, "maintain"))

    def _maybe_build_vector_index(self, ds: lance.LanceDataset) -> None:
        if self.dimension is None or "embedding_idx" in index_names(ds):
            return
        if ds.count_rows() < self.indexing.vector_index_min_rows:
            return
        self.build_vector_index()

    def build_vector_index(self) -> None:
        """Build (or rebuild) the approximate vector index now."""
        self._check_writable()
        if self.dimension is None:
            raise LanceContextError("this store has no vector column to index")
        ds = self._handle.latest()
        rows = ds.count_rows(filter="embedding IS NOT NULL")
        partitions = max(1, min(1024, int(rows**0.5)))
        kind = self.indexing.vector_index_type
        options: dict[str, Any] = {"num_partitions": partitions}
        if kind == "IVF_PQ":
            options["num_sub_vectors"] = _sub_vectors(self.dimension)
        self._handle.call(
            lambda: ds.create_index(
                "embedding", kind, name="embedding_idx", metric="cosine", replace=True, **options
            ),
            "build the vector index",
        )

    def compact(self) -> None:
        """Merge every small fragment now and refresh indexes (a new version)."""
        self._check_writable()
        with self._write_lock:
            ds = self._handle.latest()
            self._handle.call(
                lambda: ds.optimize.compact_files(
                    target_rows_per_fragment=self.compaction.max_rows_per_fragment
                ),
                "compact the store",
            )
            self._handle.call(lambda: self._handle.latest().optimize.optimize_indices(), "refresh indexes")
