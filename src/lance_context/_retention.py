"""Retention: which past versions a store keeps as they age, and removing the rest.

Every write is a version, and every version keeps the files it references, so a store
written one message at a time grows with its history (10,000 one-message appends: ~10x
the same records written at once). A :class:`RetentionPolicy` keeps every version of
the recent past, then one per hour, then one per day; everything else is removed with
Lance's ``cleanup_old_versions(versions=...)``, which deletes exactly the files no
remaining version references. Applied by ``store.apply_retention()``, by
``lance-context cleanup --retention``, and, when a store is opened with
``retention=``, by the store's own maintenance after a write (at most once per
``RetentionPolicy.every`` in a process; in the writer's thread, no background thread).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import lance

from ._errors import InvalidFilterError
from ._forget_checks import check_dry_run
from ._versions import VersionInfo

if TYPE_CHECKING:
    from ._state import StoreState

__all__ = ["RetentionPolicy", "RetentionReport", "apply_retention", "retention_due", "version_list"]

log = logging.getLogger("lance_context")


@dataclass(frozen=True)
class RetentionPolicy:
    """Which past versions a store keeps: all recent ones, then fewer as they age.

    A version's age is ``now`` minus its commit time. The latest version of every
    branch is always kept, and tagged versions too (unless ``keep_tagged=False``).
    Otherwise a version is kept when:

    - it is younger than ``keep_all``;
    - it is younger than ``hourly`` and the newest version of its UTC hour (the state
      at the end of that hour);
    - it is younger than ``daily`` (or ``daily`` is None) and the newest version of its
      UTC day.

    Everything else is removed, files included: time travel to it ends.

    Example:
        >>> RetentionPolicy(keep_all=timedelta(days=1), daily=timedelta(days=90)).hourly
        datetime.timedelta(days=30)
    """

    keep_all: timedelta = timedelta(days=7)
    """Every version younger than this is kept (time travel inside it is untouched)."""

    hourly: timedelta | None = timedelta(days=30)
    """Up to this age, the newest version of each hour is kept (None: no hourly tier)."""

    daily: timedelta | None = None
    """Up to this age, the newest version of each day is kept (None: one a day forever;
    equal to ``hourly`` or ``keep_all``: nothing older is kept)."""

    keep_tagged: bool = True
    """Never remove a tagged version (when False, tags of removed versions go too)."""

    every: timedelta = timedelta(hours=1)
    """A store opened with this policy applies it after a write at most this often.

    Listing versions reads every manifest (~0.1 ms each locally), so applying it after
    every write would cost more than the write."""

    def __post_init__(self) -> None:
        """Refuse tiers that overlap backwards."""
        for name in ("keep_all", "hourly", "daily", "every"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) and not (value is None and name in ("hourly", "daily")):
                raise ValueError(f"{name} must be a timedelta, got {value!r}")
        if self.keep_all < timedelta(0):
            raise ValueError("keep_all must not be negative")
        if self.hourly is not None and self.hourly < self.keep_all:
            raise ValueError("hourly must be at least keep_all")
        floor = self.keep_all if self.hourly is None else self.hourly
        if self.daily is not None and self.daily < floor:
            raise ValueError("daily must be at least hourly (or keep_all)")

    def expired(self, versions: Sequence[VersionInfo], now: datetime | None = None) -> list[int]:
        """The versions this policy removes from one branch's ``versions``, as of ``now``."""
        if not versions:
            return []
        now = now or datetime.now(timezone.utc)
        keep = {max(v.version for v in versions)}
        newest: dict[tuple[str, datetime], int] = {}
        for info in versions:
            stamp = info.timestamp.astimezone(timezone.utc)
            age = now - stamp
            if age < self.keep_all or (self.keep_tagged and info.tags):
                keep.add(info.version)
                continue
            if self.hourly is not None and age < self.hourly:
                bucket = ("hour", stamp.replace(minute=0, second=0, microsecond=0))
            elif self.daily is None or age < self.daily:
                bucket = ("day", stamp.replace(hour=0, minute=0, second=0, microsecond=0))
            else:
                continue
            if info.version > newest.get(bucket, -1):
                newest[bucket] = info.version
        keep.update(newest.values())
        return sorted(v.version for v in versions if v.version not in keep)


@dataclass(frozen=True)
class RetentionReport:
    """What applying a retention policy removed.

    Attributes:
        removed: Branch to the versions removed from it.
        kept: Branch to how many versions remain on it.
        tags_removed: Tags that named removed versions (only with ``keep_tagged=False``; a dry
            run names the tags the run would remove).
        bytes_removed: Bytes of files deleted.
        files_removed: Files deleted (data, deletion, index, transaction files and manifests).

    Example:
        >>> RetentionReport().bytes_removed
        0
    """

    removed: dict[str, tuple[int, ...]] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    tags_removed: tuple[str, ...] = ()
    bytes_removed: int = 0
    files_removed: int = 0

    @property
    def versions_removed(self) -> int:
        """Versions removed on every branch."""
        return sum(len(v) for v in self.removed.values())


def version_list(ds: lance.LanceDataset, tags: dict[int, list[str]]) -> list[VersionInfo]:
    """One branch's versions with their commit times and tags, without reading transactions."""
    infos = []
    for raw in ds.versions():
        stamp = raw["timestamp"]
        if not isinstance(stamp, datetime):
            stamp = datetime.fromtimestamp(float(stamp), tz=timezone.utc)
        # pylance gives naive local times (datetime.fromtimestamp): astimezone reads them as local
        stamp = stamp.astimezone(timezone.utc)
        version = int(raw["version"])
        rows = int(raw.get("metadata", {}).get("total_rows", 0) or 0)
        infos.append(VersionInfo(version, stamp, "", rows, tuple(sorted(tags.get(version, [])))))
    return infos


def _check_arguments(policy: object, now: object) -> None:
    """Refuse a policy or a time ``apply_retention`` cannot use, before anything is listed."""
    if not isinstance(policy, RetentionPolicy):
        raise InvalidFilterError(
            f"apply_retention() takes a RetentionPolicy (RetentionPolicy(keep_all=...)), got {policy!r}"
        )
    if now is not None and (not isinstance(now, datetime) or now.tzinfo is None):
        raise InvalidFilterError(
            f"now must be a timezone-aware datetime (datetime.now(timezone.utc)), got {now!r}"
        )


def apply_retention(
    state: StoreState, policy: RetentionPolicy, now: datetime | None = None, *, dry_run: bool = False
) -> RetentionReport:
    """Remove, on every branch of the store, the versions ``policy`` does not keep.

    A version a branch was made from stays (Lance keeps it for the branch); a dry run
    reports the versions that would go and removes nothing.
    """
    from ._files import branch_handles, delete_tag, expire_versions, version_numbers

    _check_arguments(policy, now)
    check_dry_run(dry_run)
    if not dry_run:
        state.check_writable()
    handles = branch_handles(state.handle)
    listed = handles["main"].latest().tags.list()
    forks: set[tuple[str, int]] = {
        (str(info.get("parent_branch") or "main"), int(info["parent_version"]))
        for info in handles["main"].latest().branches.list().values()
    }
    removed: dict[str, tuple[int, ...]] = {}
    kept: dict[str, int] = {}
    tags_gone: list[str] = []
    removed_bytes = removed_files = 0
    for name in reversed(list(handles)):  # children first: a branch holds its parent's version
        handle = handles[name]
        tags: dict[int, list[str]] = {}
        for tag, info in listed.items():
            if (info.get("branch") or "main") == name:
                tags.setdefault(int(info["version"]), []).append(tag)
        ds = handle.latest()
        before = handle.call(functools.partial(version_list, ds, tags), "list versions", retry=False)
        doomed = [v for v in policy.expired(before, now) if (name, v) not in forks]
        doomed_tags = [] if policy.keep_tagged else [tag for v in doomed for tag in tags.get(v, [])]
        if dry_run:  # it names the tags the run would remove too
            removed[name], kept[name] = tuple(doomed), len(before) - len(doomed)
            tags_gone += doomed_tags
            continue
        for tag in doomed_tags:
            delete_tag(handle, tag)
            tags_gone.append(tag)
        files, size = expire_versions(handle, doomed, "apply the retention policy")
        removed_files, removed_bytes = removed_files + files, removed_bytes + size
        after = set(version_numbers(handle))
        removed[name] = tuple(v for v in doomed if v not in after)
        kept[name] = len(after)
    return RetentionReport(removed, kept, tuple(tags_gone), removed_bytes, removed_files)


_LAST_RUN: dict[str, float] = {}
_LAST_RUN_LOCK = threading.Lock()


def retention_due(uri: str, policy: RetentionPolicy) -> bool:
    """Whether a store's own maintenance should apply its policy now (once per ``every``).

    Claims the run when due, so two threads of one process never apply it at once.
    """
    now = time.monotonic()
    with _LAST_RUN_LOCK:
        last = _LAST_RUN.get(uri)
        if last is not None and now - last < policy.every.total_seconds():
            return False
        _LAST_RUN[uri] = now
        return True
