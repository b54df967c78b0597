"""Version history: what each commit did, and what changed between two versions.

Every write is a Lance version. Checkout reads a past version exactly as it was;
tags name versions; ``restore`` makes a past state the new latest as a new version.

Branches are Lance branches, not shallow clones: a branch lives inside the same
dataset (same URI, same credentials), shares the parent's data files, and its
reference is committed atomically next to the tags, so cleanup of the main branch
knows the files a branch still needs. A shallow clone is a separate dataset at
another URI that points at the source's files without the source knowing, so a
cleanup of the source can break it.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import overload

import lance

from ._known import Committed, StoreKey
from ._records import ContextRecord
from ._storage import is_missing

__all__ = [
    "OP_KEY",
    "RecordChanges",
    "VersionDiff",
    "VersionInfo",
    "changes_of",
    "commit_properties",
    "describe_operation",
    "last_merge",
    "list_versions",
    "record_changes",
    "version_ref",
]

#: Transaction property holding what a lance-context commit did.
OP_KEY = "lance_context.op"
#: Transaction property of a merge commit: the branch merged and its version (JSON).
MERGE_KEY = "lance_context.merge"
#: Transaction property naming the sessions an append touched (when few).
SESSIONS_KEY = "lance_context.sessions"
#: Appends touching more sessions than this do not list them.
_MAX_LISTED = 64
#: Commits that reorganise storage but leave every record as it was.
_KEEPS_RECORDS = frozenset({"compact", "index", "maintenance", "config", "reserve"})

_LANCE_OPERATIONS = {
    "Append": "add",
    "Overwrite": "create",
    "Delete": "delete",
    "Update": "upsert",
    "Rewrite": "compact",
    "Restore": "restore",
    "CreateIndex": "index",
    "Merge": "merge",
    "Project": "schema",
    "UpdateConfig": "config",
    "ReserveFragments": "reserve",
    "DataReplacement": "replace",
    # pylance 14 exposes some internal commits (made by compaction) only as the base class.
    "BaseOperation": "maintenance",
}


@dataclass(frozen=True)
class VersionInfo:
    """One version of a store.

    Attributes:
        version: The version number.
        timestamp: When it was committed (UTC).
        operation: What the commit did: ``create``, ``add``, ``upsert``, ``delete``,
            ``compact``, ``restore``, ``index``, ``reembed``...
        rows: How many records the version holds.
        tags: Tags pointing at this version.

    Example:
        >>> VersionInfo(3, datetime.now(timezone.utc), "add", 2).operation
        'add'
    """

    version: int
    timestamp: datetime
    operation: str
    rows: int
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class VersionDiff:
    """Records added and removed between two versions.

    An updated record (same id, new content) appears in both lists.

    Example:
        >>> VersionDiff(1, 2).added
        []
    """

    from_version: int
    to_version: int
    added: list[ContextRecord] = field(default_factory=list)
    removed: list[ContextRecord] = field(default_factory=list)


@dataclass(frozen=True)
class RecordChanges:
    """The sessions whose records some commits may have changed (all others are intact).

    Example:
        >>> RecordChanges(frozenset({"s1"})).sessions
        frozenset({'s1'})
    """

    sessions: frozenset[str] = frozenset()


@overload
def version_ref(version_or_tag: int) -> int: ...
@overload
def version_ref(version_or_tag: int | str) -> int | str: ...
def version_ref(version_or_tag: int | str) -> int | str:
    """A version given as any integer type (numpy's, from a table of versions) as an ``int``.

    Anything else is returned as it is, for the resolver to accept (a tag name) or refuse.

    Example:
        >>> version_ref(numpy.int64(3))  # doctest: +SKIP
        3
    """
    if isinstance(version_or_tag, numbers.Integral) and not isinstance(version_or_tag, (bool, int)):
        return int(version_or_tag)
    return version_or_tag


def commit_properties(op: str, rows: int, sessions: Iterable[str]) -> dict[str, str]:
    """Transaction properties of a write: what it did, how many records, which sessions.

    ``sessions`` must be every session the commit changed (for an upsert, also the
    sessions an id moved out of); beyond 64 they are not listed and readers treat the
    commit as touching everything.
    """
    props = {OP_KEY: op, "lance_context.rows": str(rows)}
    listed = sorted(set(sessions))
    if len(listed) <= _MAX_LISTED:
        props[SESSIONS_KEY] = json.dumps(listed)
    return props


def _transaction(ds: lance.LanceDataset, version: int) -> tuple[str, dict[str, str]]:
    """What the commit that made ``version`` did, and its properties."""
    return _described(lambda: ds.read_transaction(version))[:2]


def _described(read: Callable[[], lance.Transaction | None]) -> tuple[str, dict[str, str], bool]:
    """What a commit did, its properties, and whether that is final (not a failed read)."""
    try:
        transaction = read()
    except TypeError as exc:
        # pylance 14 cannot decode a compaction that remapped indexes (its RewrittenIndex
        # binding misses arguments); that failure must not break versions().
        return ("compact" if "RewrittenIndex" in str(exc) else "unknown"), {}, True
    except (OSError, ValueError, RuntimeError):
        return "unknown", {}, False
    if transaction is None:
        return "unknown", {}, True
    props = dict(transaction.transaction_properties or {})
    if props.get(OP_KEY):
        return str(props[OP_KEY]), props, True
    name = type(transaction.operation).__name__
    return _LANCE_OPERATIONS.get(name, name.lower()), props, True


@dataclass(frozen=True)
class _Version:
    """What a committed version is (it never changes)."""

    timestamp: datetime
    rows: int
    op: str
    changes: RecordChanges | None


#: Every committed version this process has read, per store branch (see ``Committed``).
_COMMITTED: Committed[_Version] = Committed()


def _utc(stamp: object) -> datetime:
    if not isinstance(stamp, datetime):
        stamp = datetime.fromtimestamp(float(stamp), tz=timezone.utc)  # type: ignore[arg-type]
    if stamp.tzinfo is None:  # pylance gives naive local times (datetime.fromtimestamp)
        stamp = stamp.astimezone(timezone.utc)
    return stamp


def _check_history(ds: lance.LanceDataset, key: StoreKey) -> None:
    """Forget what is known of ``key`` if ``ds``'s version is not the one known (a new history)."""
    known = _COMMITTED.get(key, int(ds.version))
    if known is not None and known.timestamp != _utc(ds.get_version()["timestamp"]):
        _COMMITTED.forget(key)


def _version(ds: lance.LanceDataset, key: StoreKey, version: int) -> _Version | None:
    """What ``version`` of the branch ``key`` names is; None when it no longer exists.

    Read once per process: checking it out reads its whole manifest (on S3 a HEAD and a
    GET), which holds its timestamp, its row count and its transaction.
    """
    found = _COMMITTED.get(key, version)
    if found is not None:
        return found
    try:
        at = ds.checkout_version((key[1], version))
    except (OSError, ValueError, RuntimeError) as exc:
        if is_missing(exc):
            return None
        raise
    info = at.get_version()
    op, props, final = _described(lambda: at.get_transactions(1)[0])
    rows = int(info.get("metadata", {}).get("total_rows", 0) or 0)
    found = _Version(_utc(info["timestamp"]), rows, op, changes_of(op, props))
    if final:
        _COMMITTED.keep(key, version, found)
    return found


def describe_operation(ds: lance.LanceDataset, version: int) -> str:
    """What the commit that made ``version`` did."""
    return _transaction(ds, version)[0]


def record_changes(ds: lance.LanceDataset, version: int, key: StoreKey) -> RecordChanges | None:
    """What the commit that made ``version`` may have changed; None when it is not known.

    ``ds`` is a snapshot of the branch ``key`` names. Maintenance (compaction, indexes)
    changes nothing; an append made by lance-context lists its sessions; anything else
    (upserts, deletes, restores, appends to many sessions, commits made by other
    programs, versions no longer there) is unknown.
    """
    try:
        _check_history(ds, key)
        found = _version(ds, key, version)
    except (OSError, ValueError, RuntimeError):
        return None
    return None if found is None else found.changes


def changes_of(op: str, props: Mapping[str, str]) -> RecordChanges | None:
    """What a commit that did ``op`` with transaction properties ``props`` may have changed."""
    if op in _KEEPS_RECORDS:
        return RecordChanges()
    if SESSIONS_KEY not in props:
        return None
    return RecordChanges(frozenset(json.loads(props[SESSIONS_KEY])))


def list_versions(ds: lance.LanceDataset, tags: dict[int, list[str]], key: StoreKey) -> list[VersionInfo]:
    """All versions of the branch ``key`` names, oldest first; ``ds`` is a snapshot of it.

    One listing of the manifests, then each version not read before in this process
    (see ``_version``): a store's second listing costs one request, not three per version.
    """
    _check_history(ds, key)
    listed = sorted(int(ref["version"]) for ref in ds.version_refs())
    infos = []
    for version in listed:
        found = _version(ds, key, version)
        if found is None:  # removed by a cleanup since the listing
            continue
        infos.append(
            VersionInfo(
                version=version,
                timestamp=found.timestamp,
                operation=found.op,
                rows=found.rows,
                tags=tuple(sorted(tags.get(version, []))),
            )
        )
    _COMMITTED.keep_only(key, listed)
    return infos


def last_merge(ds: lance.LanceDataset, branch: str, after: int) -> tuple[int, int] | None:
    """The newest merge of ``branch`` into the history ``ds`` holds, after version ``after``.

    Returns the version the merge made and the version of ``branch`` it merged, or None.
    Versions are read newest first; a whole-store restore sends the walk to the version it
    restored (the commits in between are no longer in the store's history).
    """
    version = int(ds.version)
    while version > after:
        op, props = _transaction(ds, version)
        if op == "merge" and MERGE_KEY in props:
            merged = json.loads(props[MERGE_KEY])
            if merged.get("branch") == branch:
                return version, int(merged["branch_version"])
        restored = _restored_version(ds, version) if op == "restore" else None
        version = restored if restored is not None and restored < version else version - 1
    return None


def _restored_version(ds: lance.LanceDataset, version: int) -> int | None:
    """The version a whole-store restore at ``version`` brought back (None for other restores)."""
    try:
        transaction = ds.read_transaction(version)
    except (OSError, ValueError, RuntimeError, TypeError):
        return None
    operation = transaction.operation if transaction is not None else None
    restored = getattr(operation, "version", None)
    return int(restored) if type(operation).__name__ == "Restore" and restored is not None else None
