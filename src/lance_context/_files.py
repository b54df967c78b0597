"""A store's files beneath its versions: which version references which file, and the bytes.

Forgetting and its verification look beneath the table, where versions share files:
:func:`tracked` lists, per version of one branch, the files its manifest references
(data, deletion, index and transaction files and the manifest itself);
:func:`present` lists every file physically under the store's root (branches live in
``tree/<branch>/``); :class:`Files` reads them, raw or decoded as Lance files, through
the store's own object-store settings. Paths are relative to the store's root.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import lance
import pyarrow as pa
from lance.file import LanceFileSession

from ._dataset import MAIN_BRANCH, DatasetHandle
from ._errors import LanceContextError
from ._maintenance import INDEX_NAMES, build_indexes, upkeep_left_to_later
from ._state import StoreState
from ._vector_index import VECTOR_INDEX, build_vector_index

__all__ = [
    "Files",
    "Tracked",
    "branch_handles",
    "delete_tag",
    "drop_index",
    "expire_versions",
    "present",
    "restore_indexes",
    "tracked",
    "version_numbers",
]


def _root(uri: str) -> str:
    if "://" in uri and not uri.startswith("file://"):
        return uri.rstrip("/")
    return os.path.abspath(uri.removeprefix("file://"))


@dataclass(frozen=True)
class Tracked:
    """The files one branch's versions reference.

    Attributes:
        versions: Every listed version of the branch, oldest first.
        files: Version to ``(path, kind)`` of each file its manifest references; kinds
            are ``manifest``, ``data file``, ``deletion file``, ``transaction file``
            and ``index file``.
    """

    versions: tuple[int, ...]
    files: dict[int, frozenset[tuple[str, str]]]

    def paths(self, kind: str) -> set[str]:
        """Every path of this kind referenced by any version."""
        return {path for refs in self.files.values() for path, found in refs if found == kind}


def tracked(handle: DatasetHandle, ds: lance.LanceDataset, since: int | None = None) -> Tracked:
    """The files every listed version of ``ds``'s branch references (one manifest read each).

    ``since``: only versions from this one on.
    """
    table = handle.call(
        lambda: ds.tracked_files(min_version=since).read_all(), "list the files of every version", retry=False
    )
    root = _root(handle.uri)
    files: dict[int, set[tuple[str, str]]] = {}
    columns = zip(
        table.column("version").to_pylist(),
        table.column("base_uri").to_pylist(),
        table.column("path").to_pylist(),
        table.column("type").to_pylist(),
        strict=True,
    )
    for version, base, path, kind in columns:
        base = _root(str(base))
        if base == root or base.startswith(root + "/"):
            prefix = base[len(root) :].strip("/")
            where = f"{prefix}/{path}" if prefix else path
        else:  # another dataset's file (a branch of a copied store points at the original)
            where = f"{base}/{path}"
        files.setdefault(int(version), set()).add((where, str(kind)))
    return Tracked(tuple(sorted(files)), {v: frozenset(refs) for v, refs in files.items()})


def present(handle: DatasetHandle) -> dict[str, int]:
    """Every file physically under the store's root (all branches), path to size in bytes.

    Not the files of another store made in a folder inside this one: they are that
    store's, and forgetting must neither delete them as leftovers nor report them.
    """
    ds = handle.latest()
    table = handle.call(lambda: ds.all_files().read_all(), "list the store's files", retry=False)
    sizes = dict(zip(table.column("path").to_pylist(), table.column("size_bytes").to_pylist(), strict=True))
    others = _nested_roots(sizes)
    if not others:
        return sizes
    return {path: size for path, size in sizes.items() if not path.startswith(others)}


def _nested_roots(paths: Iterable[str]) -> tuple[str, ...]:
    """The folders (``a/b/``) inside a store's root that hold a dataset of their own.

    A folder with a ``_versions/`` of its own, other than the root, a branch (``tree/``)
    and the store's own search log (``_lance_context/``).
    """
    roots = set()
    for path in paths:
        head, found, _ = path.partition("/_versions/")
        if found and head and not head.startswith(("tree/", "_lance_context")):
            roots.add(head + "/")
    return tuple(sorted(roots))


def branch_handles(handle: DatasetHandle) -> dict[str, DatasetHandle]:
    """A handle on every branch of the store, children after their parents (main first)."""
    main = handle if handle.branch == MAIN_BRANCH else handle.on_branch(MAIN_BRANCH)
    listed = main.latest().branches.list()
    depth: dict[str, int] = {}

    def level(name: str) -> int:
        if name not in depth:
            parent = listed[name].get("parent_branch")
            depth[name] = 0 if not parent or parent not in listed else level(parent) + 1
        return depth[name]

    ordered = sorted(listed, key=lambda name: (level(name), name))
    return {MAIN_BRANCH: main, **{name: main.on_branch(name) for name in ordered}}


class Files:
    """Reads a store's files by path, raw or decoded, with the store's storage settings.

    A path is relative to the store's root, or a full location for a file of another
    dataset that a version references.
    """

    def __init__(self, handle: DatasetHandle) -> None:
        """Read the files of ``handle``'s store."""
        self._handle = handle
        ds = handle.latest()
        self._session = handle.call(ds.new_file_session, "open the store's files", retry=False)
        self._elsewhere: dict[str, Any] = {}

    def _locate(self, path: str) -> tuple[Any, str]:
        if not (path.startswith("/") or "://" in path):
            return self._session, path
        folder, name = path.rsplit("/", 1)
        if folder not in self._elsewhere:
            options = dict(self._handle.storage_options) or None
            self._elsewhere[folder] = self._handle.call(
                lambda: LanceFileSession(folder, storage_options=options), f"open {folder}", retry=False
            )
        return self._elsewhere[folder], name

    def raw(self, path: str, size: int) -> bytes:
        """The bytes of one file."""
        if size == 0:
            return b""
        session, name = self._locate(path)
        data: bytes = self._handle.call(
            lambda: session.read_range(name, 0, size), f"read {path}", retry=False
        )
        return data

    def columns(self, path: str) -> list[str]:
        """The columns a Lance file holds."""
        session, name = self._locate(path)
        reader = self._handle.call(lambda: session.open_reader(name), f"open {path}", retry=False)
        schema: pa.Schema = reader.metadata().schema
        return list(schema.names)

    def table(self, path: str, columns: Sequence[str]) -> pa.Table:
        """Every physical row of a Lance file (deleted rows included), these columns."""
        session, name = self._locate(path)

        def read() -> pa.Table:
            reader = session.open_reader(name, columns=list(columns))
            result: pa.Table = reader.read_all().to_table()
            return result

        return self._handle.call(read, f"read {path}", retry=False)

    def table_if(self, path: str, columns: Sequence[str]) -> pa.Table | None:
        """Like :meth:`table`, or None when the file lacks one of the columns (one open, not two)."""
        try:
            return self.table(path, columns)
        except LanceContextError as exc:
            if "not found" in str(exc).lower() and "field" in str(exc).lower():
                return None
            raise

    def delete(self, path: str) -> None:
        """Delete one file under the store's root (only ever a file no version references)."""
        self._handle.call(lambda: self._session.delete_file(path), f"delete {path}", retry=False)


def version_numbers(handle: DatasetHandle) -> list[int]:
    """The numbers of the versions ``handle``'s branch holds, oldest first.

    From one listing of the manifests: ``versions()`` would also read every manifest
    (a GET each on an object store) for timestamps and summaries not needed here.
    """
    refs = handle.call(lambda: handle.latest().version_refs(), "list versions", retry=False)
    return sorted(int(ref["version"]) for ref in refs)


def restore_indexes(state: StoreState, had: Iterable[str]) -> None:
    """Build again, on ``state``'s branch, the indexes a rewrite dropped (those in ``had``).

    The rewrite is committed by then, so a build that keeps losing to other writers'
    commits is logged and left to the store's maintenance (``upkeep_left_to_later``).
    """
    names = set(had)
    with upkeep_left_to_later("the rewrite was committed; rebuilding its indexes was left to a later write"):
        if names & INDEX_NAMES:
            build_indexes(state.handle, "rebuild the store's indexes")
        if VECTOR_INDEX in names:
            build_vector_index(state)


_REMOVED = ("old_versions", "data_files_removed", "transaction_files_removed", "index_files_removed",
            "deletion_files_removed")  # fmt: skip


def expire_versions(handle: DatasetHandle, versions: Sequence[int], action: str) -> tuple[int, int]:
    """Remove exactly these versions of ``handle``'s branch and the files only they reference.

    Returns ``(files deleted, bytes deleted)``. Lance keeps a version another branch was
    made from while that branch still needs it, and never removes the latest.
    """
    chosen = list(versions)

    def expire(ds: lance.LanceDataset) -> tuple[int, int]:
        stats = ds.cleanup_old_versions(versions=chosen, error_if_tagged_old_versions=False)
        return sum(int(getattr(stats, name, 0)) for name in _REMOVED), int(stats.bytes_removed)

    return handle.write(expire, action) if chosen else (0, 0)


def delete_tag(handle: DatasetHandle, name: str) -> None:
    """Delete one tag of the store."""

    def delete(ds: lance.LanceDataset) -> None:
        ds.tags.delete(name)

    handle.write(delete, f"delete tag {name!r}", retry=False)


def drop_index(handle: DatasetHandle, name: str) -> None:
    """Drop one index of ``handle``'s branch (a new version), if it is still there.

    Other writers' maintenance may refresh the index meanwhile: a conflict is retried on
    the latest version.
    """

    def drop(ds: lance.LanceDataset) -> None:
        if name in {index.name for index in ds.describe_indices()}:
            ds.drop_index(name)

    handle.write(drop, f"drop index {name!r}")
