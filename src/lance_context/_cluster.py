"""Compaction that lays a store out for keyed reads: merged rows sorted by session.

Lance's ``compact_files`` keeps row order, so a session grown one message at a time stays
spread thinly over every merged fragment, and reading it touches each one. This
compaction merges the fragments Lance would merge (its own ``Compaction.plan``, so the
tiered policy and the deletion threshold behave as before) but writes each group's rows
sorted by ``(run_id, seq)``: a session then sits in one run of rows per fragment.
Measured on a store grown by 10,000 one-message adds over 100 sessions, merged into
three fragments: the last 50 messages of a session on a new handle in 4.1 ms sorted,
5.8 ms in append order.

The rewrite is committed through Lance's transaction API (``Rewrite``) on the version it
read: older versions keep their files, a concurrent append is rebased over it, and a
concurrent delete or compaction of the same fragments conflicts (maintenance then leaves
the merge to a later write). Lance cannot remap an index over reordered rows, so the
rewritten rows leave the indexes' coverage; they are still found (Lance searches rows
outside an index without it) until the index upkeep folds them back in. A merge larger
than :data:`SORT_MAX_ROWS` rows or :data:`SORT_MAX_BYTES` bytes is left to Lance's
streaming compaction (row order kept), so memory stays bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import lance
import pyarrow.compute as pc
from lance.dataset import Index
from lance.fragment import write_fragments
from lance.optimize import Compaction, CompactionOptions

from ._errors import CommitConflictError, translate_lance_error
from ._sessionfiles import remember
from ._versions import OP_KEY
from ._written import keep_written, written_rows

if TYPE_CHECKING:
    from ._dataset import DatasetHandle

__all__ = ["SORT_MAX_BYTES", "SORT_MAX_ROWS", "commit_or_discard", "discard", "sorted_compaction"]

log = logging.getLogger("lance_context")

#: At most this many versions after a lost commit are read to check it did not land.
_CHECKED_VERSIONS = 16

#: The largest merge sorted in memory, in rows (fragments up to the fifth level at fanout 8).
SORT_MAX_ROWS = 65_536
#: The largest merge sorted in memory, in bytes of the files read.
SORT_MAX_BYTES = 256 * 1024 * 1024
_ORDER = [("run_id", "ascending"), ("seq", "ascending")]


def _size(fragments: list[Any]) -> tuple[int, int]:
    rows = sum(int(f.physical_rows or 0) for f in fragments)
    size = sum(int(d.file_size_bytes or 0) for f in fragments for d in f.files)
    return rows, size


def _fragment(ds: lance.LanceDataset, fragment_id: int) -> Any:
    fragment = ds.get_fragment(fragment_id)
    if fragment is None:  # the plan was made on this very snapshot
        raise AssertionError(f"fragment {fragment_id} of the compaction plan is not in the snapshot")
    return fragment


def sorted_compaction(
    ds: lance.LanceDataset,
    target_rows: int,
    *,
    deletions_threshold: float = 0.1,
    up_to: int | None = None,
) -> lance.LanceOperation.Rewrite | CompactionOptions | None:
    """Plan a merge of ``ds``'s small fragments and write its rows sorted by session.

    Args:
        ds: The version to compact (a private snapshot: nothing is committed here).
        target_rows: Rows per merged fragment.
        deletions_threshold: Share of deleted rows past which a fragment is rewritten alone.
        up_to: Merge only groups whose fragments all have ids up to this one (Lance numbers
            new fragments upwards): the fragments a retried compaction found on its first
            attempt, not those other writers wrote or merged since. None: every group.

    Returns:
        The ``Rewrite`` operation to commit on ``ds``; the options to hand Lance's
        ``compact_files`` when the merge is too large to sort in memory; or None when
        nothing is to merge. Files written for an operation that is never committed
        are removed by :func:`discard` (or, left behind by a killed process, by
        ``cleanup()`` once Lance deems them old, after 7 days, or ``cleanup(unreferenced=True)``).
    """
    options = CompactionOptions(
        target_rows_per_fragment=target_rows, materialize_deletions_threshold=deletions_threshold
    )
    plan = Compaction.plan(ds, options)
    tasks = [list(task.fragments) for task in plan.tasks]
    if up_to is not None:
        tasks = [fragments for fragments in tasks if all(int(f.id) <= up_to for f in fragments)]
    if not tasks:
        return None
    sizes = [_size(fragments) for fragments in tasks]
    if any(rows > SORT_MAX_ROWS or size > SORT_MAX_BYTES for rows, size in sizes):
        return options
    groups = []
    schema = ds.schema
    for fragments in tasks:
        sources = [_fragment(ds, f.id) for f in fragments]
        # rows this process wrote are still in memory; else one scan (3x faster than each)
        found = written_rows(sources, schema)
        rows = (found if found is not None else ds.scanner(fragments=sources).to_table()).sort_by(_ORDER)
        # one fragment per merge: the few rows past the target never make a fragment alone
        size = max(target_rows, rows.num_rows)
        new = write_fragments(rows, ds, schema=schema, max_rows_per_file=size) if rows.num_rows else []
        remember(new, pc.unique(rows.column("run_id")).to_pylist())
        keep_written(new, rows)
        groups.append(lance.LanceOperation.RewriteGroup(fragments, new))
    return lance.LanceOperation.Rewrite(groups, [])


def discard(
    ds: lance.LanceDataset, lost: lance.LanceOperation.Rewrite | lance.LanceOperation.CreateIndex
) -> None:
    """Delete the files written for an operation committed on ``ds`` whose commit lost to another's.

    ``lost`` is a merge's ``Rewrite`` or an index build's ``CreateIndex``. No version
    names those files (their names are random and the commit failed), but Lance's cleanup
    cannot tell them from a write in progress and keeps them for 7 days: with several
    writers, merges that lost the race were most of a store's disk (4 processes x 150 adds:
    1.5 MB of lost merges beside 0.3 MB read by the latest version). They are kept when a
    version after ``ds`` names them (see :func:`_named_after`). Best effort: a file that
    cannot be deleted is left to ``cleanup()``.
    """
    if isinstance(lost, lance.LanceOperation.Rewrite):
        what = "a merge"
        files = {data_file.path for g in lost.groups for f in g.new_fragments for data_file in f.files}
        paths = [f"data/{path}" for path in sorted(files)]

        def names(later: lance.LanceDataset) -> bool:
            return any(f.path in files for fragment in later.get_fragments() for f in fragment.data_files())

    else:
        what = "an index build"
        segments: Sequence[Index] = lost.new_indices
        uuids = {str(segment.uuid) for segment in segments}
        paths = [f"_indices/{s.uuid}/{file.path}" for s in segments for file in s.files or ()]

        def names(later: lance.LanceDataset) -> bool:
            return any(str(s.uuid) in uuids for index in later.describe_indices() for s in index.segments)

    try:
        if _named_after(ds, names):
            return
        session = ds.new_file_session()
        for path in paths:
            session.delete_file(path)
    except (OSError, ValueError, RuntimeError) as exc:
        log.info("lance-context: files of %s that was not committed are left to cleanup (%s)", what, exc)


def commit_or_discard(
    handle: DatasetHandle,
    base: lance.LanceDataset,
    operation: lance.LanceOperation.Rewrite | lance.LanceOperation.CreateIndex,
    kind: str,
    action: str,
) -> None:
    """Commit a maintenance ``operation`` on ``base``; if another writer's commit wins, delete its files.

    No version names the files of an operation that lost (see :func:`discard`).
    """
    try:
        handle.commit(base, operation, {OP_KEY: kind})
    except (OSError, ValueError, RuntimeError) as exc:
        if isinstance(translate_lance_error(exc, action, ()), CommitConflictError):
            discard(base, operation)
        raise


def _named_after(ds: lance.LanceDataset, names: Callable[[lance.LanceDataset], bool]) -> bool:
    """Whether a version after ``ds`` ``names`` the files of a commit reported as lost.

    Deleting files that a version names would break that version, so a conflict is not
    taken on trust: an object store's answer to a commit that landed can be lost and the
    request retried, and the retry finds the version taken. Lance recognises its own
    commit then in the cases tested (an append and a merge whose answers the S3 test
    server's link lost: ``tests/reliability``); this check keeps the files should any
    other path report such a commit as lost. The versions since ``ds`` are read (a lost
    race leaves one or a few); past :data:`_CHECKED_VERSIONS` of them the files are left
    to cleanup.
    """
    base, latest = int(ds.version), int(ds.latest_version)
    if latest - base > _CHECKED_VERSIONS:
        return True
    return any(names(ds.checkout_version(version)) for version in range(base + 1, latest + 1))
