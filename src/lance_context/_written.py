"""Rows this process just wrote as small data files, so compaction merges them without reading.

Tiered compaction merges the newest small fragments every few appends (at fanout 8, one
merge per eight one-message adds). Reading eight one-row files back costs Lance ~3 ms of a
~6 ms merge, though the process that wrote them had their rows in memory a moment ago.
Data files never change once written, so the writer keeps the Arrow table of each small
file it writes (and compaction the table of each merged file), keyed by the file's path,
and a merge of files all kept here concatenates them instead of scanning. A fragment with
a deletion file is always read (its file still holds the deleted rows). A merge takes the
tables it used out of the memo (its files leave the latest version). The memo is bounded
(:data:`MAX_FILES` files, :data:`MAX_BYTES` of Arrow buffers, files of at most
:data:`MAX_ROWS` rows) and shared by every handle in the process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from lance.fragment import FragmentMetadata

from ._sessionfiles import data_file_key

__all__ = ["MAX_BYTES", "MAX_FILES", "MAX_ROWS", "keep_written", "written_rows"]

#: Files kept (least recently written dropped first): the newest files of the first merge levels.
MAX_FILES = 64
#: Bytes of the kept tables' Arrow buffers in all.
MAX_BYTES = 4 * 2**20
#: Files of more rows than this are not kept (at fanout 8: the files of the first three levels).
MAX_ROWS = 512

_TABLES: OrderedDict[tuple[str, ...], pa.Table] = OrderedDict()
_LOCK = threading.Lock()
_bytes = 0


def keep_written(fragments: Sequence[FragmentMetadata], table: pa.Table) -> None:
    """Keep ``table``, just written as ``fragments``, when it went into one small file."""
    global _bytes
    if len(fragments) != 1 or table.num_rows > MAX_ROWS:
        return
    size = table.get_total_buffer_size()
    if size > MAX_BYTES // 8:
        return
    key = tuple(data_file_key(d) for d in fragments[0].files)
    with _LOCK:
        _drop(key)
        _TABLES[key] = table
        _bytes += size
        while _bytes > MAX_BYTES or len(_TABLES) > MAX_FILES:
            _drop(next(iter(_TABLES)))


def written_rows(fragments: Sequence[Any], schema: pa.Schema) -> pa.Table | None:
    """The rows of ``fragments`` (``LanceFragment``) in order, if all were kept; else None.

    None as well when one of them has deletions or was written with another schema. The
    tables returned leave the memo: the merge that asked for them replaces their files.
    """
    keys, tables = [], []
    for fragment in fragments:
        if fragment.deletion_file() is not None:
            return None
        key = tuple(data_file_key(d) for d in fragment.data_files())
        with _LOCK:
            table = _TABLES.get(key)
        if table is None or not table.schema.equals(schema):
            return None
        keys.append(key)
        tables.append(table)
    if not tables:
        return None
    with _LOCK:
        for key in keys:
            _drop(key)
    return pa.concat_tables(tables)


def _drop(key: tuple[str, ...]) -> None:
    """Forget one file's table (the caller holds the lock)."""
    global _bytes
    table = _TABLES.pop(key, None)
    if table is not None:
        _bytes -= table.get_total_buffer_size()
