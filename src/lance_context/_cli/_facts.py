"""Facts about a store that the public API does not give yet, computed in this one module.

Everything else in the command line and the inspector uses the public API only. Each
function here stands in for a core method; its docstring names the signature the core
would offer, so this module can shrink as the core grows. It reads Lance directly
(``lance.dataset``) for facts only the dataset knows (files, fragments, indexes,
branch parents) and reads only narrow columns (``id``, ``seq``, ``run_id``, ``role``,
``created_at``), never payloads; it never writes, and builds no SQL from user values
(filtering happens in Arrow).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import lance
import pyarrow.compute as pc

from lance_context import VersionDiff, VersionInfo
from lance_context.adapters import Namespace, namespace_of, row_changes

from ._conversation import session_kind
from ._refs import MAIN, View, store_tags

__all__ = [
    "IndexFact",
    "SessionSummary",
    "StoreFacts",
    "VersionChange",
    "all_tags",
    "diff_views",
    "session_summaries",
    "store_facts",
    "version_changes",
]

#: Operations that reorganise storage but keep every record (the core's own list, plus clone).
_KEEPS_RECORDS = frozenset({"compact", "index", "maintenance", "config", "reserve", "clone"})


def _dataset(view: View) -> lance.LanceDataset:
    ds = lance.dataset(view.spec.uri, storage_options=dict(view.spec.storage_options) or None)
    return ds.checkout_version((view.branch, view.version))


# ---------------------------------------------------------------------- sessions
@dataclass(frozen=True)
class SessionSummary:
    """One session as the ``sessions`` command and page list it.

    Attributes:
        run_id: The session id as stored.
        records: How many records it holds.
        roles: Records per role.
        first: Its oldest record's time.
        last: Its newest record's time.
    """

    run_id: str
    records: int
    roles: dict[str, int]
    first: datetime
    last: datetime

    @property
    def namespace(self) -> Namespace | None:
        """The adapter namespace the session belongs to (None: written through the core)."""
        return namespace_of(self.run_id)[0]

    @property
    def key(self) -> str:
        """The id its adapter knows it by (the run id itself for core sessions)."""
        return namespace_of(self.run_id)[1]

    @property
    def kind(self) -> str:
        """What a person calls it: ``LangChain chat history``, ``LangGraph thread``, ``session``."""
        return session_kind(self.run_id)


def session_summaries(view: View, prefix: str | None = None) -> list[SessionSummary]:
    """Every session of a view, sorted by run id, optionally only those starting with ``prefix``.

    Stands in for ``ContextStore.sessions(prefix: str | None = None) -> list[SessionInfo]``
    (run id, record count, roles, first and last activity) computed by the engine.
    """
    table = _dataset(view).to_table(columns=["run_id", "role", "created_at"])
    if prefix:
        table = table.filter(pc.starts_with(table.column("run_id"), prefix))
    if table.num_rows == 0:
        return []
    times = table.group_by("run_id").aggregate(
        [("created_at", "min"), ("created_at", "max"), ("role", "count")]
    )
    roles: dict[str, dict[str, int]] = {}
    for row in table.group_by(["run_id", "role"]).aggregate([("role", "count")]).to_pylist():
        roles.setdefault(row["run_id"], {})[row["role"]] = int(row["role_count"])
    found = [
        SessionSummary(
            run_id=row["run_id"],
            records=int(row["role_count"]),
            roles=dict(sorted(roles[row["run_id"]].items(), key=lambda kv: (-kv[1], kv[0]))),
            first=row["created_at_min"],
            last=row["created_at_max"],
        )
        for row in times.to_pylist()
    ]
    return sorted(found, key=lambda s: s.run_id)


# ---------------------------------------------------------------------- versions
@dataclass(frozen=True)
class VersionChange:
    """What one commit did to the records.

    Attributes:
        version: The version the commit made.
        added: Records it added (an updated record counts as added and removed).
        removed: Records it removed.
        sessions: The sessions whose records it added or removed, sorted.
        known: False when the version before it is gone (cleaned up), so nothing is known.
    """

    version: int
    added: int = 0
    removed: int = 0
    sessions: tuple[str, ...] = ()
    known: bool = True


def version_changes(
    view: View, history: Sequence[VersionInfo], wanted: Iterable[int]
) -> dict[int, VersionChange]:
    """Rows added and removed, and sessions touched, by the commits that made ``wanted``.

    ``history`` is every version of the view's branch (``store.versions()``). Commits
    that only reorganise storage are known to change nothing and are not read; every
    other one is compared with the version before it row by row (``row_changes``: a record
    replaced in place counts as removed and added).

    Stands in for ``VersionInfo.added``, ``.removed`` and ``.sessions`` filled in by
    ``ContextStore.versions()`` (the core knows them when it commits).
    """
    ops = {info.version: info.operation for info in history}
    ds = lance.dataset(view.spec.uri, storage_options=dict(view.spec.storage_options) or None)

    changes: dict[int, VersionChange] = {}
    for version in sorted(set(wanted) & set(ops)):
        if ops[version] in _KEEPS_RECORDS:
            changes[version] = VersionChange(version)
            continue
        if version - 1 not in ops:  # version 1 creates an empty store; others lost their parent
            changes[version] = VersionChange(version, known=version == 1)
            continue
        before = ds.checkout_version((view.branch, version - 1))
        added, removed = row_changes(before, ds.checkout_version((view.branch, version)))
        touched = {*added.values(), *removed.values()}
        changes[version] = VersionChange(version, len(added), len(removed), tuple(sorted(touched)))
    return changes


# ---------------------------------------------------------------------- diff
def diff_views(before: View, after: View) -> VersionDiff:
    """Records added and removed from one view to another, on the same branch or not.

    Stands in for ``ContextStore.diff(from_ref, to_ref)`` accepting versions of other
    branches (``("what-if", 9)``); on one branch the core's ``diff`` is used instead.
    """
    if before.branch == after.branch:
        return after.store.diff(before.version, after.version)
    added, removed = row_changes(_dataset(before), _dataset(after), same_branch=False)
    return VersionDiff(
        before.version,
        after.version,
        added=after.store.get_many([key[0] for key in sorted(added, key=lambda k: (k[1], k[0]))]),
        removed=before.store.get_many([key[0] for key in sorted(removed, key=lambda k: (k[1], k[0]))]),
    )


# ---------------------------------------------------------------------- the store
@dataclass(frozen=True)
class IndexFact:
    """One index of the viewed version.

    Attributes:
        name: The index name (``run_id_idx``...).
        kind: ``BTREE``, ``BITMAP``, ``FULL TEXT`` or ``VECTOR``.
        columns: The columns it covers.
        rows: Rows it covers (rows added since are still found, without it).
        bytes: Its size.
    """

    name: str
    kind: str
    columns: tuple[str, ...]
    rows: int
    bytes: int


@dataclass(frozen=True)
class StoreFacts:
    """Storage facts of one version and of the whole dataset.

    Attributes:
        fragments: Data fragments of the version.
        version_bytes: Bytes of the data files the version reads.
        disk_bytes: Bytes of every file under the store's URI (all versions and branches).
        deleted_rows: Rows deleted but still in the version's files (until compaction).
        indexes: The version's indexes.
        embedder: The embedder recorded in the store's schema, if any.
        dimension: The vector dimension, if the store has vectors.
        branch_parents: Each branch's parent branch and the version it was made from.
    """

    fragments: int
    version_bytes: int
    disk_bytes: int | None
    deleted_rows: int
    indexes: list[IndexFact]
    embedder: str | None
    dimension: int | None
    branch_parents: dict[str, tuple[str, int]] = field(default_factory=dict)


def _index_kind(type_url: str) -> str:
    lowered = type_url.lower()
    for marker, kind in (("btree", "BTREE"), ("bitmap", "BITMAP"), ("inverted", "FULL TEXT")):
        if marker in lowered:
            return kind
    return "VECTOR" if "vector" in lowered or "ivf" in lowered else type_url.rsplit(".", 1)[-1]


def _disk_bytes(ds: lance.LanceDataset, branch: str) -> int | None:
    """Every file under the store's root (every branch's), counted from main."""
    try:
        root = ds if branch == MAIN else ds.checkout_version((MAIN, None))
        files = root.all_files().read_all()
    except (OSError, ValueError, RuntimeError):
        return None
    return int(pc.sum(files.column("size_bytes")).as_py() or 0)


def store_facts(view: View) -> StoreFacts:
    """Fragments, bytes, indexes, embedder and branch parents of a view.

    Stands in for ``ContextStore.stats(version=None) -> StoreStats`` and for
    ``ContextStore.embedder_info`` / ``branches(details=True)`` in the core.
    """
    ds = _dataset(view)
    raw = ds.versions()
    meta = next((v.get("metadata", {}) for v in raw if int(v["version"]) == view.version), {})
    stats = ds.stats.dataset_stats()
    indexes = [
        IndexFact(
            name=index.name,
            kind=_index_kind(index.type_url),
            columns=tuple(index.field_names),
            rows=int(index.num_rows_indexed),
            bytes=int(index.total_size_bytes or 0),
        )
        for index in ds.describe_indices()
    ]
    embedder = (ds.schema.metadata or {}).get(b"lance_context.embedder")
    parents = {
        name: (str(info.get("parent_branch") or MAIN), int(info.get("parent_version") or 0))
        for name, info in ds.branches.list().items()
    }
    return StoreFacts(
        fragments=int(stats.get("num_fragments", 0)),
        version_bytes=int(meta.get("total_files_size", 0) or 0),
        disk_bytes=_disk_bytes(ds, view.branch),
        deleted_rows=int(stats.get("num_deleted_rows", 0)),
        indexes=sorted(indexes, key=lambda i: i.name),
        embedder=str(json.loads(embedder)["name"]) if embedder else None,
        dimension=view.store.dimension,
        branch_parents=parents,
    )


def recorded_embedder(view: View) -> tuple[str, int] | None:
    """The embedder name and dimension the view's schema records (None: none is recorded).

    Stands in for a public ``ContextStore`` accessor of the recorded embedder.
    """
    raw = (_dataset(view).schema.metadata or {}).get(b"lance_context.embedder")
    if not raw:
        return None
    info = json.loads(raw)
    return str(info["name"]), int(info["dimension"])


def all_tags(view: View) -> dict[str, tuple[str, int]]:
    """Every tag of the store, on any branch: name -> (branch, version)."""
    return store_tags(view.spec)
