"""Portable snapshots: a store's version copied as a self-contained store elsewhere, and back.

``store.export(dest)`` writes a store that ``ContextStore.open(dest)`` opens as it is:
records, vectors, indexes, binaries and the schema metadata naming the embedder (and
the encryption marker) travel together, so nothing is re-embedded.

- One version (the default): Lance's ``deep_clone`` copies the data, deletion and
  index files that version references into a new dataset at ``dest``, on the same or
  another object store (local to S3, S3 to local). The destination holds that single
  version, with its number, and the tag it was exported by.
- ``history=True``: every version of the main branch from the exported one to the
  latest, with their tags, copied file by file (manifests, data, deletion, index and
  transaction files are all relative to the store's root, so they read the same at
  the new place). Branches reference their parent's files by its address, so a branch
  is exported one version at a time.
- A branch's version on an object store: pylance 14's ``deep_clone`` cannot copy it (it
  parses the parent's address, ``s3://...``, as a path inside the bucket: "contained
  empty path segment"), so its rows are written through Lance into a new store at
  ``dest`` with the version's schema (metadata included), its scalar and vector
  indexes are built again as the store builds them, and the copy keeps only its last
  version: the same records, vectors, binaries and embedder, numbered anew (a tag it is
  exported by names that version).

``ContextStore.import_(src, into=...)`` brings a snapshot back: into a new location it
is an export; into an existing store it is a merge, the snapshot's records upserted in
one commit (one new version), their vectors kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import lance
from lance.file import LanceFileSession

from ._dataset import MAIN_BRANCH, DatasetHandle
from ._embedding import Embedding
from ._encryption import EncryptionPolicy
from ._errors import (
    EmbedderMismatchError,
    InvalidFilterError,
    NotAContextStoreError,
    VersionNotFoundError,
    redact,
)
from ._files import Files, branch_handles, present, tracked
from ._maintenance import INDEXES, Maintainer
from ._reader import stored_records
from ._schema import EmbedderInfo, embedding_dimension, read_embedder_info
from ._state import StoreState
from ._storage import dataset_exists, secret_values, storage_defaults
from ._vector_index import VECTOR_INDEX

if TYPE_CHECKING:
    from ._store import ContextStore

__all__ = ["SnapshotReport", "export_snapshot", "import_snapshot"]


@dataclass(frozen=True)
class SnapshotReport:
    """What ``store.export(...)`` wrote.

    Attributes:
        destination: Where the snapshot is (credentials masked).
        branch: The branch exported from.
        version: The version exported (the first one, with ``history=True``).
        versions: The versions the destination holds.
        records: Records in the destination's latest version.
        tags: Tags copied with it.
        files: Files written.
        bytes: Their bytes.

    Example:
        >>> SnapshotReport("copy.lance", "main", 3, (3,), 10, (), 4, 9000).records
        10
    """

    destination: str
    branch: str
    version: int
    versions: tuple[int, ...]
    records: int
    tags: tuple[str, ...]
    files: int
    bytes: int


def _target(
    state: StoreState, version: int | None, tag: str | None, branch: str | None
) -> tuple[str, int, str | None]:
    """(branch, version, tag) of what to export; the version the store reads by default."""
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise InvalidFilterError(
            f"version must be a version number (1 or more), got {version!r}; tags go in tag="
        )
    choices = (("version", version), ("tag", tag), ("branch", branch))
    given = [name for name, value in choices if value is not None]
    if len(given) > 1:
        raise InvalidFilterError(f"export takes one of version=, tag= or branch=, not {' and '.join(given)}")
    handles = branch_handles(state.handle)
    if tag is not None:
        listed = handles[MAIN_BRANCH].latest().tags.list()
        if tag not in listed:
            raise VersionNotFoundError(f"no tag named {tag!r}; tags: {', '.join(sorted(listed)) or 'none'}")
        return (listed[tag].get("branch") or MAIN_BRANCH, int(listed[tag]["version"]), tag)
    if branch is not None:
        if branch not in handles:
            raise VersionNotFoundError(f"no branch named {branch!r}")
        return branch, int(handles[branch].latest().version), None
    on = state.handle.branch
    return on, (version if version is not None else int(state.snapshot().version)), None


def _place(uri: str) -> str:
    """``uri`` in one spelling: a local path resolved, an object store's URI without a final ``/``."""
    if "://" in uri and not uri.startswith("file://"):
        return uri.rstrip("/")
    return os.path.realpath(uri.removeprefix("file://"))


def _inside(dest: str, root: str) -> bool:
    """Whether ``dest`` is under the store's root (its files would be listed as the store's)."""
    return _place(dest).startswith(_place(root).rstrip("/") + "/")


def export_snapshot(
    state: StoreState,
    dest: str,
    *,
    version: int | None = None,
    tag: str | None = None,
    branch: str | None = None,
    history: bool = False,
    storage_options: Mapping[str, str] | None = None,
) -> SnapshotReport:
    """Write a self-contained store at ``dest``; see the module docstring."""
    if not isinstance(dest, (str, os.PathLike)) or not str(dest).strip():
        raise InvalidFilterError(
            f"export() takes a path or URI to write to, got {dest!r}; nothing was written"
        )
    dest = os.fspath(dest) if isinstance(dest, os.PathLike) else dest
    options = storage_defaults(dest, storage_options)
    shown = redact(dest, secret_values(options))
    if dataset_exists(dest, options):
        raise NotAContextStoreError(f"{shown} already holds a store; export to a new location")
    if _inside(dest, state.handle.uri):
        raise InvalidFilterError(
            f"{shown} is inside the store's own folder, where forget() and cleanup treat every file "
            "as the store's; export to a location outside it"
        )
    on, at, by_tag = _target(state, version, tag, branch)
    handle = state.handle if on == state.handle.branch else state.handle.on_branch(on)
    handle.at(at)  # raises VersionNotFoundError when the version is gone
    if history and on != MAIN_BRANCH:
        raise InvalidFilterError(
            "history=True exports the main branch (a branch reads its parent's files by their "
            "address); export a branch's version without history"
        )
    rewritten = not history and on != MAIN_BRANCH and _on_object_store(handle.uri)
    if history:
        tags = _copy_history(handle, at, dest, options)
    elif rewritten:
        _rewrite(state, handle, dest, at, options, shown)
        tags = ()
    else:
        _deep_clone(handle, dest, at, options, shown)
        tags = ()
    copy = DatasetHandle(dest, options)
    if by_tag is not None and not history:
        # a rewritten copy numbers its one version anew: the tag names that version
        named = int(copy.latest().version) if rewritten else at
        copy.write(lambda ds: ds.tags.create(by_tag, named), f"tag the snapshot {by_tag!r}", retry=False)
        tags = (by_tag,)
    written = present(copy)
    latest = copy.latest()
    return SnapshotReport(
        destination=shown,
        branch=on,
        version=at,
        versions=tuple(int(v["version"]) for v in latest.versions()),
        records=int(copy.call(latest.count_rows, "count records", retry=False)),
        tags=tags,
        files=len(written),
        bytes=sum(written.values()),
    )


def _deep_clone(handle: DatasetHandle, dest: str, version: int, options: dict[str, str], shown: str) -> None:
    """Copy one version's files into a new dataset at ``dest`` (Lance's ``deep_clone``)."""
    source = handle.latest()
    reference: int | tuple[str, int] = version if handle.branch == MAIN_BRANCH else (handle.branch, version)

    def clone() -> None:
        source.deep_clone(dest, reference, storage_options=options)

    handle.call(clone, f"export to {shown}")


def _on_object_store(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def _rewrite(
    state: StoreState, handle: DatasetHandle, dest: str, version: int, options: dict[str, str], shown: str
) -> None:
    """Write one version's rows into a new store at ``dest``, with the indexes it had (see above)."""
    source = handle.at(version)
    schema = handle.schema(source)
    had = {index.name for index in handle.call(source.describe_indices, "list the indexes", retry=False)}

    def write() -> None:
        rows = source.scanner(columns=schema.names).to_reader()
        lance.write_dataset(rows, dest, schema=schema, mode="create", storage_options=options or None)

    handle.call(write, f"export to {shown}")
    copy = DatasetHandle(dest, options)
    for column, kind in INDEXES:
        if f"{column}_idx" in had:
            build = functools.partial(_scalar_index, column=column, kind=kind)
            copy.write(build, f"index {column} in the copy", keeps_records=True)
    if VECTOR_INDEX in had:
        recorded = read_embedder_info({k.decode(): v.decode() for k, v in (schema.metadata or {}).items()})
        embedding = Embedding(None, embedding_dimension(schema), recorded)
        copied = dataclasses.replace(state, handle=copy, embedding=embedding, pinned=None, read_only=False)
        Maintainer(copied).build_vector_index()
    if int(copy.latest().version) > 1:  # the index builds' versions
        copy.write(
            lambda ds: ds.cleanup_old_versions(older_than=timedelta(0), error_if_tagged_old_versions=False),
            "keep only the copy's last version",
        )


def _scalar_index(ds: lance.LanceDataset, *, column: str, kind: str) -> None:
    ds.create_scalar_index(column, kind, name=f"{column}_idx")  # type: ignore[arg-type]


def _copy_history(handle: DatasetHandle, since: int, dest: str, options: dict[str, str]) -> tuple[str, ...]:
    """Copy the files of the main branch's versions from ``since`` on, and their tags."""
    source = handle.latest()
    refs = tracked(handle, source)
    wanted = {path for v, files in refs.files.items() if v >= since for path, _ in files}
    sizes = present(handle)
    listed = source.tags.list()
    tags = tuple(sorted(name for name, info in listed.items()
                        if not info.get("branch") and int(info["version"]) >= since))  # fmt: skip
    wanted |= {f"_refs/tags/{name}.json" for name in tags}
    files = Files(handle)
    target = LanceFileSession(dest, storage_options=options or None)
    copied: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="lance-context-export-") as folder:
            scratch = os.path.join(folder, "file")
            for path in sorted(wanted, key=lambda p: p.startswith("_versions/")):  # manifests last
                with open(scratch, "wb") as out:
                    out.write(files.raw(path, sizes[path]))
                handle.call(functools.partial(target.upload_file, scratch, path), f"copy {path}", retry=False)
                copied.append(path)
    except BaseException:
        # a copy cut short would open as a store missing versions: leave the destination as it was
        for path in reversed(copied):  # manifests first
            with contextlib.suppress(Exception):
                target.delete_file(path)
        raise
    return tags


def _recorded(state: StoreState, ds: lance.LanceDataset) -> tuple[EmbedderInfo | None, int | None]:
    """The embedder and vector size the version ``ds`` of a store was written with."""
    schema = state.handle.schema(ds)
    recorded = read_embedder_info({k.decode(): v.decode() for k, v in (schema.metadata or {}).items()})
    return recorded, embedding_dimension(schema)


def _described(recorded: EmbedderInfo | None, dimension: int | None) -> str:
    """``hashing (8 dimensions)``: an embedder as a person reads it."""
    if recorded is not None:
        return f"{recorded.name} ({recorded.dimension} dimensions)"
    return "no embedder" if dimension is None else f"an unnamed embedder ({dimension} dimensions)"


def import_snapshot(
    opener: type[ContextStore],
    source_uri: str,
    into: str | ContextStore,
    *,
    version: int | str | None,
    storage_options: Mapping[str, str] | None,
    source_storage_options: Mapping[str, str] | None,
    encryption: EncryptionPolicy | None,
    source_encryption: EncryptionPolicy | None,
) -> ContextStore:
    """Copy a snapshot to a new location, or merge its records into a store as one version."""
    target_uri = into.uri if isinstance(into, opener) else str(into)
    if _place(str(source_uri)) == _place(target_uri):
        raise InvalidFilterError(
            f"the snapshot and the store are the same place ({redact(target_uri)}): "
            "import a snapshot that export() wrote elsewhere"
        )
    if not dataset_exists(str(source_uri), source_storage_options):
        shown = redact(
            str(source_uri), secret_values(storage_defaults(str(source_uri), source_storage_options))
        )
        raise NotAContextStoreError(f"no store at {shown}: nothing to import")
    if not isinstance(into, opener) and not dataset_exists(str(into), storage_options):
        options, chosen = source_storage_options, encryption or source_encryption
        # opened with the key the copy will be opened with: a wrong key is refused before copying
        source = opener.open(
            source_uri, storage_options=options, read_only=True, embedder=None, encryption=chosen
        )
        if version is None:  # the whole snapshot: every version of main it holds, with their tags
            oldest = min(info.version for info in source.versions())
            source.export(str(into), storage_options=storage_options, version=oldest, history=True)
        else:
            tag, number = (version, None) if isinstance(version, str) else (None, version)
            source.export(str(into), storage_options=storage_options, tag=tag, version=number)
        return opener.open(str(into), storage_options=storage_options, encryption=chosen)
    target = (
        into
        if isinstance(into, opener)
        else opener.open(str(into), storage_options=storage_options, encryption=encryption)
    )
    source = opener.open(
        source_uri, storage_options=source_storage_options, read_only=True, embedder=None,
        encryption=source_encryption,
    )  # fmt: skip
    if version is not None:
        source = source.at_version(version)
    # the version imported and the target's branch: a store's model changes with reembed()
    theirs, their_dimension = _recorded(source._state, source._state.snapshot())
    ours, our_dimension = _recorded(target._state, target._state.handle.latest())
    differs = theirs is not None and ours is not None and theirs != ours
    if differs or (None not in (their_dimension, our_dimension) and their_dimension != our_dimension):
        raise EmbedderMismatchError(
            f"the snapshot was embedded with {_described(theirs, their_dimension)}, the store with "
            f"{_described(ours, our_dimension)}; merging would mix vector spaces (reembed() one of them "
            "first); nothing was merged"
        )
    records, _ = stored_records(source._state)
    if records:
        target.upsert(records, keep_order=True)  # a record the store holds keeps its place
    return target
