"""Rows this process just wrote as small data files, so compaction merges them without reading.

Tiered compaction merges the newest small fragments every few appends (at fanout 8, one
merge per eight one-message adds). Reading eight one-row files back costs Lance ~3 ms of a
~6 ms merge, though the process that wrote them had their rows in memory a moment ago.
Data files never change once written, so the writer keeps the Arrow table of each small
file it writes (and compaction the table of each merged file), keyed by the file's path,
and a merge of files all kept here concatenates them instead of scanning. A fragment with
a deletion file is always read (its file still holds the deleted rows). The memo is
bounded (:data:`MAX_BYTES` in all, files of at most :data:`MAX_ROWS` rows) and shared by
every handle in the process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from lance.fragment import FragmentMetadata

from ._sessionfiles import data_file_key

__all__ = ["MAX_BYTES", "MAX_ROWS", "keep_written", "written_rows"]

#: Bytes of kept tables in all (least recently written dropped first).
MAX_BYTES = 32 * 2**20
#: Files of more rows than this are not kept.
MAX_ROWS = 4_096

_TABLES: OrderedDict[tuple[str, ...], pa.Table] = OrderedDict()
_LOCK = threading.Lock()
_bytes = 0


def keep_written(fragments: Sequence[FragmentMetadata], table: pa.Table) -> None:
    """Keep ``table``, just written as ``fragments``, when it went into one small file."""
    global _bytes
    if len(fragments) != 1 or table.num_rows > MAX_ROWS or table.nbytes > MAX_BYTES // 8:
        return
    key = tuple(data_file_key(d) for d in fragments[0].files)
    with _LOCK:
        old = _TABLES.pop(key, None)
        _bytes += table.nbytes - (0 if old is None else old.nbytes)
        _TABLES[key] = table
        while _bytes > MAX_BYTES:
            _, dropped = _TABLES.popitem(last=False)
            _bytes -= dropped.nbytes


def written_rows(fragments: Sequence[Any], schema: pa.Schema) -> pa.Table | None:
    """The rows of ``fragments`` (``LanceFragment``) in order, if all were kept; else None.

    None as well when one of them has deletions or was written with another schema.
    """
    tables = []
    for fragment in fragments:
        if fragment.deletion_file() is not None:
            return None
        with _LOCK:
            table = _TABLES.get(tuple(data_file_key(d) for d in fragment.data_files()))
        if table is None or not table.schema.equals(schema):
            return None
        tables.append(table)
    return pa.concat_tables(tables) if tables else None
