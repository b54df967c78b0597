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

    fanout: int = 16
    """How many adjacent fragments of one level are merged into the next level.

    A trade between rewrites (each row is copied once per level) and fragments (every
    version's manifest lists each live fragment, ~0.18 KB apiece). Measured with 10,000
    one-message appends of 384-d records (``make bench``): 8 gives 190 MB on disk, 12
    and 16 give 172 MB (the same records in one batch: 17 MB), and 16 does the fewest
    rewrites; the price is more fragments to read (the last 50 messages of a session:
    14.7 ms at 16, 12.3 ms at 8).
    """

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

    vector_index_min_rows: int = 20_000
    """Build an approximate vector index once the store has this many rows.

    Measured on 2 shared cores (``make bench``, 384-d vectors): exact (flat) search
    costs ~1.2 ms per 1,000 rows (12 ms at 10,000, 19 ms at 20,000, 83 ms at 50,000);
    an indexed search 5-7 ms at any of these sizes, and a build ~0.03 ms per row. Below
    20,000 rows the index is at most ~2x faster and, on small stores, approximate
    (recall@10 0.81 at 5,000); at 20,000 it is 3x faster at recall 0.997 and repays its
    build in ~40 searches. The write that crosses the threshold builds it (while the
    store holds under twice the threshold, so an ``add()`` never pays for more than
    that); a bulk load that jumps far past it is indexed by the first vector search."""

    vector_index_type: str = "IVF_SQ"
    """``IVF_SQ`` (8-bit vectors, candidates re-ranked with exact distances; builds in
    ~2-3 s per 100,000 384-d rows here, where ``IVF_PQ`` took 38-150 s), ``IVF_FLAT``,
    ``IVF_PQ`` or ``IVF_HNSW_SQ``."""

    flat_search_max_rows: int = 20_000
    """A filtered vector search that matches at most this many rows is exact."""

    nprobes: int = 20
    """IVF partitions searched per query when the index is used (of ~sqrt(rows): 316 at
    100,000 rows, where 20 probes gave recall@10 0.998 and 8 gave 0.997 on the bench's
    data; the margin is for real embeddings, which cluster less cleanly)."""

    refine_factor: int = 2
    """Candidates re-ranked with exact distances, as a multiple of k (exact scores)."""


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
        read_only: bool
        _pinned: int | None

        def _check_writable(self) -> None: ...

    def _maintain(self) -> None:
        """Compact and refresh indexes when due. Never fails the write that called it."""
        try:
            if self.compaction.enabled:
                self._handle.write(lambda ds: compact_if_due(ds, self.compaction), "compact", retry=False)
            ds = self._handle.latest()
            if unindexed_rows(ds, "run_id_idx") >= self.indexing.refresh_unindexed_rows:
                self._handle.write(lambda ds: ds.optimize.optimize_indices(), "refresh indexes", retry=False)
            self._maybe_build_vector_index(self._handle.latest())
        except Exception as exc:  # compaction is an optimisation: the commit is safe
            log.warning("lance-context maintenance skipped: %s", translate_lance_error(exc, "maintain"))

    def _maybe_build_vector_index(self, ds: lance.LanceDataset) -> None:
        """Build the vector index right after the write that made it due.

        Only while the store holds under twice the threshold, so the build an ``add()``
        pays for stays bounded. A larger backlog (a bulk load far past the threshold)
        is left to the first vector search, see :meth:`_index_for_search`.
        """
        if self._vector_index_due(ds) and ds.count_rows() < 2 * self.indexing.vector_index_min_rows:
            self.build_vector_index()

    def _vector_index_due(self, ds: lance.LanceDataset) -> bool:
        if self.dimension is None or "embedding_idx" in index_names(ds):
            return False
        return bool(ds.count_rows() >= self.indexing.vector_index_min_rows)

    def _index_for_search(self, ds: lance.LanceDataset) -> lance.LanceDataset:
        """Build a due vector index before a search; return the dataset to search.

        ``ds`` is the latest version. Only a store that may write builds it: a read-only
        store or a checked-out version searches without it (exactly), and a failed
        build is logged and the search goes on the same way.
        """
        if self.read_only or self._pinned is not None or not self._vector_index_due(ds):
            return ds
        with self._write_lock:
            try:
                if self._vector_index_due(self._handle.latest()):
                    self.build_vector_index()
            except LanceContextError as exc:
                log.warning("lance-context vector index not built: %s", exc)
        return self._handle.latest()

    def build_vector_index(self) -> None:
        """Build (or rebuild) the approximate vector index now."""
        self._check_writable()
        if self.dimension is None:
            raise LanceContextError("this store has no vector column to index")
        ds = self._handle.latest()
        rows = ds.count_rows(filter="embedding IS NOT NULL")
        partitions = max(1, min(1024, round(rows**0.5)))
        kind = self.indexing.vector_index_type
        # k-means on 64 rows per partition for 20 rounds: ~5x faster to build than
        # Lance's defaults (256, 50) at the same recall on the bench's data.
        options: dict[str, Any] = {"num_partitions": partitions, "sample_rate": 64, "max_iters": 20}
        if kind == "IVF_PQ":
            options["num_sub_vectors"] = _sub_vectors(self.dimension)
        self._handle.write(
            lambda private: private.create_index(
                "embedding", kind, name="embedding_idx", metric="cosine", replace=True, **options
            ),
            "build the vector index",
        )

    def compact(self) -> None:
        """Merge every small fragment now and refresh indexes (a new version)."""
        self._check_writable()
        with self._write_lock:
            self._handle.write(
                lambda ds: ds.optimize.compact_files(
                    target_rows_per_fragment=self.compaction.max_rows_per_fragment
                ),
                "compact the store",
            )
            self._handle.write(lambda ds: ds.optimize.optimize_indices(), "refresh indexes")
