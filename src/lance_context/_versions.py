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

from dataclasses import dataclass, field
from datetime import datetime, timezone

import lance

from ._records import ContextRecord

__all__ = ["OP_KEY", "VersionDiff", "VersionInfo", "describe_operation", "list_versions"]

#: Transaction property holding what a lance-context commit did.
OP_KEY = "lance_context.op"

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


def describe_operation(ds: lance.LanceDataset, version: int) -> str:
    """What the commit that made ``version`` did."""
    try:
        transaction = ds.read_transaction(version)
    except TypeError as exc:
        # pylance 14 cannot decode a compaction that remapped indexes (its RewrittenIndex
        # binding misses arguments); that failure must not break versions().
        return "compact" if "RewrittenIndex" in str(exc) else "unknown"
    except (OSError, ValueError, RuntimeError):
        return "unknown"
    if transaction is None:
        return "unknown"
    op = (transaction.transaction_properties or {}).get(OP_KEY)
    if op:
        return str(op)
    name = type(transaction.operation).__name__
    return _LANCE_OPERATIONS.get(name, name.lower())


def list_versions(ds: lance.LanceDataset, tags: dict[int, list[str]]) -> list[VersionInfo]:
    """All versions of the branch ``ds`` is on, oldest first."""
    infos = []
    for raw in ds.versions():
        version = int(raw["version"])
        stamp = raw["timestamp"]
        if not isinstance(stamp, datetime):
            stamp = datetime.fromtimestamp(float(stamp), tz=timezone.utc)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        rows = int(raw.get("metadata", {}).get("total_rows", 0) or 0)
        infos.append(
            VersionInfo(
                version=version,
                timestamp=stamp,
                operation=describe_operation(ds, version),
                rows=rows,
                tags=tuple(sorted(tags.get(version, []))),
            )
        )
    return infos
