"""Which sessions each unindexed data file holds, learned once per process.

A session read filters on ``run_id``. Lance answers the filter from the session index for
the fragments the index covers, and scans every other fragment: the newest appends and
merges, until the index upkeep folds them in (on a store grown one message at a time, 10
to 20 small fragments, about 0.1 ms each). A data file never changes once written, so the
sessions it holds, once read, stay true for every version that uses the file: a read then
passes Lance only the indexed fragments and the unindexed ones that hold its session.

Only files whose fragment has no deletions are learned (a deletion file hides rows that an
older version, read by time travel, still shows); the others are always scanned. The map
is bounded (:data:`MAX_FILES` files, each of at most :data:`MAX_ROWS` rows) and shared by
every handle in the process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import lance
from lance.fragment import FragmentMetadata

from ._known import Facts

__all__ = ["MAX_FILES", "MAX_ROWS", "data_file_key", "remember", "session_fragments"]

#: Files whose sessions the process remembers (least recently used dropped first).
MAX_FILES = 8_192
#: Files of more rows than this are not learned (the index upkeep covers large fragments).
MAX_ROWS = 4_096
#: The index whose coverage decides which fragments a read must scan.
_SESSION_INDEX = "run_id_idx"
#: Below this many unindexed fragments a plain filtered read is as fast.
_MIN_UNINDEXED = 3

_KNOWN: OrderedDict[tuple[str, ...], frozenset[str]] = OrderedDict()
_LOCK = threading.Lock()


def data_file_key(data_file: Any) -> str:
    """A data file's path; pylance 14's ``DataFile.path`` builds a class on every call."""
    path = getattr(data_file, "_path", None)
    return path if isinstance(path, str) else str(data_file.path)


def _key(fragment: Any) -> tuple[str, ...]:
    """A fragment's data files (``LanceFragment``), named as they never change."""
    return tuple(data_file_key(f) for f in fragment.data_files())


def _store(found: Iterable[tuple[tuple[str, ...], frozenset[str]]]) -> None:
    with _LOCK:
        for key, sessions in found:
            _KNOWN[key] = sessions
            _KNOWN.move_to_end(key)
        while len(_KNOWN) > MAX_FILES:
            _KNOWN.popitem(last=False)


def remember(fragments: Iterable[FragmentMetadata], run_ids: Iterable[str]) -> None:
    """Note that fragments this process just wrote hold rows of no session but ``run_ids``.

    A writer knows what it wrote, so its own files are never read back to learn them. A
    fragment whose commit then fails is never read, and its entry ages out.
    """
    sessions = frozenset(run_ids)
    _store(
        (tuple(data_file_key(d) for d in f.files), sessions)
        for f in fragments
        if int(f.physical_rows) <= MAX_ROWS
    )


def _learn(ds: lance.LanceDataset, fragments: list[Any]) -> None:
    """Read the ``run_id`` column of ``fragments`` (no deletions) and remember each file's sessions."""
    table = ds.scanner(columns=["run_id"], fragments=fragments, with_row_address=True).to_table()
    found: dict[int, set[str]] = {int(f.fragment_id): set() for f in fragments}
    for address, run_id in zip(
        table.column("_rowaddr").to_pylist(), table.column("run_id").to_pylist(), strict=True
    ):
        found[int(address) >> 32].add(str(run_id))
    _store((_key(f), frozenset(found[int(f.fragment_id)])) for f in fragments)


def session_fragments(ds: lance.LanceDataset, facts: Facts, run_id: str) -> list[Any] | None:
    """The fragments of ``ds`` a read of session ``run_id`` must open; None for all of them.

    Args:
        ds: The snapshot to read.
        facts: Its manifest facts (which fragments the session index covers).
        run_id: The session read.
    """
    covered = facts.indexes.get(_SESSION_INDEX)
    if covered is None:
        return None
    rows = dict(facts.fragments)
    if sum(1 for f in rows if f not in covered) < _MIN_UNINDEXED:
        return None
    fragments = ds.get_fragments()
    keys = {
        int(f.fragment_id): _key(f)
        for f in fragments
        if int(f.fragment_id) not in covered
        and rows.get(int(f.fragment_id), MAX_ROWS + 1) <= MAX_ROWS
        and f.deletion_file() is None
    }
    with _LOCK:
        unknown = [
            f for f in fragments if int(f.fragment_id) in keys and keys[int(f.fragment_id)] not in _KNOWN
        ]
    if unknown:
        _learn(ds, unknown)
    chosen: list[Any] = []
    with _LOCK:
        for fragment in fragments:
            fid = int(fragment.fragment_id)
            sessions = _KNOWN.get(keys[fid]) if fid in keys else None
            if fid in covered or sessions is None or run_id in sessions:
                chosen.append(fragment)
    return chosen or None
