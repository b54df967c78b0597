"""Checking that forgotten records are gone from every file of a store, not just from its tables.

Two passes over every file physically under the store's root (every branch, every
kind of file, whether a version references it or not):

1. **Decoded.** Each Lance data file is read row by row, deleted rows included, so
   compression cannot hide anything: no row may carry an erased record's id. Content
   of the rows that remain also tells which erased payloads are *shared* (another,
   kept record holds the same text or value, so its bytes rightly remain).
2. **Raw.** Each file's bytes (data, deletion, index, transaction files, manifests,
   tags) are searched for every erased payload of 8 bytes or more (texts, binaries,
   metadata string values, record ids, session ids) that is not shared.

A file no version references (a leftover of an interrupted write) that still holds
an erased payload is deleted and listed; anything else found is listed as a leak.
Indexes that store text in compressed structures (the full-text index's token FST)
are not readable this way; they are covered by construction instead: every index of
a rewritten head is dropped and built again from the remaining rows, and the files of
every expired version are deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import lance
import pyarrow as pa
import pyarrow.compute as pc

from ._dataset import DatasetHandle
from ._encryption import SEALED_PREFIX
from ._errors import VersionNotFoundError
from ._files import Files, present, tracked

__all__ = ["MIN_NEEDLE", "ForgetVerification", "held_by", "needles_of", "verify_forgotten"]

#: Shorter payloads are not searched byte for byte (they occur by chance in any file);
#: the decoded pass still proves no row of their records remains.
MIN_NEEDLE = 8
_CONTENT = ("id", "run_id", "text_payload", "binary_payload", "metadata")
#: Text written beside a message for its indexes; a chat turn's quotes the turns before it.
_INDEX_TEXT = ("search_text", "embed_text")
_NONE = pa.array([], pa.string())
T = TypeVar("T")


@dataclass(frozen=True)
class ForgetVerification:
    """What a scan of every remaining file found after forgetting.

    Attributes:
        files_scanned: Files read (every file under the store's root).
        bytes_scanned: Their bytes.
        data_files_decoded: Lance data files read row by row, deleted rows included.
        rows_decoded: Rows read that way.
        payloads_checked: Distinct erased payloads (8 bytes or more) searched for in
            every file's bytes.
        payloads_shared: Erased payloads that records which were not forgotten also hold,
            or that name the store's own structure (a column, the embedder, a tag): their
            bytes rightly remain, so they are not searched for.
        leaks: Every erased record or payload still found, as ``path: what``; empty
            when forgetting is complete.
        leftovers_deleted: Files no version referenced that held erased payloads,
            deleted by the scan.

    Example:
        >>> ForgetVerification(1, 10, 1, 3, 2, 0, (), ()).ok
        True
    """

    files_scanned: int
    bytes_scanned: int
    data_files_decoded: int
    rows_decoded: int
    payloads_checked: int
    payloads_shared: int
    leaks: tuple[str, ...]
    leftovers_deleted: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether nothing of the erased records was found."""
        return not self.leaks


def _strings(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def needles_of(rows: pa.Table) -> dict[bytes, str]:
    """The payloads of erased rows to search for, each with what it is."""
    found: dict[bytes, str] = {}

    def add(data: bytes | None, kind: str) -> None:
        if data is not None and len(data) >= MIN_NEEDLE:
            found.setdefault(data, kind)

    for row in rows.to_pylist():
        add(row["id"].encode(), "record id")
        add(row["run_id"].encode(), "session id")
        add(None if row.get("text_payload") is None else row["text_payload"].encode(), "text")
        for name in _INDEX_TEXT:
            add(None if row.get(name) is None else row[name].encode(), "index text")
        add(row.get("binary_payload"), "binary payload")
        metadata = row.get("metadata") or "{}"
        if not metadata.startswith(SEALED_PREFIX):
            try:
                values = list(_strings(json.loads(metadata)))
            except ValueError:
                values = []
            for value in values:
                add(value.encode(), "metadata value")
        state = row.get("state_metadata") or {}
        for value in _strings(json.loads(state.get("custom") or "{}")):
            add(value.encode(), "agent state value")
    return found


def _structure(ds: lance.LanceDataset) -> bytes:
    """What every manifest names: the columns, the schema's metadata (the embedder), tags, branches."""
    names = [str(ds.schema), *(v.decode() for v in (ds.schema.metadata or {}).values())]
    names += [*ds.tags.list(), *ds.branches.list()]
    return "\x00".join(names).encode()


def held_by(heads: Iterable[DatasetHandle], needles: Iterable[bytes]) -> set[bytes]:
    """The needles the latest versions still hold, in their records' content or their structure.

    Such a payload is *shared*: its bytes rightly remain, and the scan does not search for it.
    Reads the content columns of every head, so callers ask only about needles they found.
    """
    wanted = set(needles)
    held: set[bytes] = set()
    for handle in heads if wanted else ():
        ds = handle.latest()
        columns = [c for c in _CONTENT if c in ds.schema.names]
        blob = _structure(ds) + b"\x00" + _kept_blob(ds.to_table(columns=columns), _NONE, columns)
        held |= {needle for needle in wanted if needle in blob}
    return held


def _kept_blob(table: pa.Table, erased: pa.Array, columns: Iterable[str]) -> bytes:
    """The bytes of the remaining rows' values in these columns."""
    kept = table.filter(pc.invert(pc.is_in(table.column("id"), value_set=erased)))
    parts: list[bytes] = []
    for name in (c for c in columns if c in kept.column_names):
        for value in kept.column(name).to_pylist():
            if value is not None:
                parts.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\x00".join(parts)


def _deletable(path: str) -> bool:
    """Whether a file no version references may go.

    Never a tag, a branch, a version hint, or a file of the search log (a dataset of its
    own beside the store, whose files the store's manifests do not name).
    """
    parts = path.split("/")
    if parts[0] == "_lance_context":
        return False
    return any(part in ("data", "_indices", "_deletions", "_transactions") for part in parts[:-1])


class _Scan:
    """One verification: the store's files, what was found, what was deleted."""

    def __init__(
        self, main: DatasetHandle, branches: Iterable[DatasetHandle], needles: dict[bytes, str]
    ) -> None:
        self.files = Files(main)
        self.on_disk = present(main)
        self.referenced: set[str] = set()
        for handle in branches:
            refs = tracked(handle, handle.latest())
            self.referenced |= {path for paths in refs.files.values() for path, _ in paths}
        self.needles = needles
        self.leaks: list[str] = []
        self.leftovers: list[str] = []
        # a payload equal to a column name, the embedder's name, a tag or a branch is in every manifest
        structure = _structure(main.latest())
        self.shared: set[bytes] = {needle for needle in needles if needle in structure}
        self.decoded = self.rows = self.scanned = 0
        self.quoted: list[tuple[str, bytes]] = []

    def _leftover(self, path: str) -> bool:
        if path in self.referenced or not _deletable(path):
            return False
        _unless_gone(partial(self.files.delete, path))
        self.leftovers.append(path)
        return True

    def decoded_pass(self, erased: pa.Array) -> None:
        for path in sorted(self.on_disk):
            if not path.endswith(".lance") or "_indices" in path.split("/"):
                continue
            held_columns = _unless_gone(partial(self.files.columns, path))
            if held_columns is None:
                continue
            columns = [c for c in (*_CONTENT, *_INDEX_TEXT) if c in held_columns]
            if "id" not in columns:
                continue
            table = _unless_gone(partial(self.files.table, path, columns))
            if table is None:
                continue
            self.decoded, self.rows = self.decoded + 1, self.rows + table.num_rows
            held = table.column("id").filter(pc.is_in(table.column("id"), value_set=erased)).to_pylist()
            if held and self._leftover(path):
                continue
            self.leaks += [f"{path}: holds a row of erased record {record}" for record in sorted(set(held))]
            blob = _kept_blob(table, erased, _CONTENT)
            self.shared |= {needle for needle in self.needles if needle not in self.shared and needle in blob}
            # the index text of a turn kept quotes the turns before it: an erased one must not be there
            quotes = _kept_blob(table, erased, _INDEX_TEXT)
            self.quoted += [(path, needle) for needle in self.needles if needle in quotes]

    def quotes_pass(self) -> None:
        for path, needle in self.quoted:
            if needle not in self.shared and path not in self.leftovers:
                what = self.needles[needle]
                self.leaks.append(f"{path}: the index text of a kept record quotes erased {what}")

    def raw_pass(self) -> None:
        searched = [needle for needle in self.needles if needle not in self.shared]
        for path, size in sorted(self.on_disk.items()):
            if path in self.leftovers:
                continue
            data = _unless_gone(partial(self.files.raw, path, size))
            if data is None:
                continue
            self.scanned += len(data)
            found = sorted({self.needles[needle] for needle in searched if needle in data})
            if found and not self._leftover(path):
                self.leaks.append(f"{path}: holds erased {', '.join(found)}")


def _unless_gone(read: Callable[[], T]) -> T | None:
    """``read()``, or None when its file is gone since the listing.

    Files no version names come and go while other processes write: a write's data file
    before its commit, and the files a merge or an index build deletes when its commit
    loses to another writer's. A file gone holds nothing that could leak.
    """
    try:
        return read()
    except VersionNotFoundError:
        return None


def verify_forgotten(
    main: DatasetHandle, branches: Iterable[DatasetHandle], erased_ids: set[str], needles: dict[bytes, str]
) -> ForgetVerification:
    """Scan every file under the store's root for the erased records and their payloads."""
    scan = _Scan(main, branches, needles)
    scan.decoded_pass(pa.array(sorted(erased_ids), pa.string()))
    scan.quotes_pass()
    scan.raw_pass()
    return ForgetVerification(
        files_scanned=len(scan.on_disk),
        bytes_scanned=scan.scanned,
        data_files_decoded=scan.decoded,
        rows_decoded=scan.rows,
        payloads_checked=len(needles) - len(scan.shared),
        payloads_shared=len(scan.shared),
        leaks=tuple(scan.leaks),
        leftovers_deleted=tuple(scan.leftovers),
    )
