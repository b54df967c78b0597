"""Versions, tags, branches, restore, diff and cleanup for ContextStore."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import lance
import pyarrow as pa

from ._arrow import table_to_records
from ._dataset import MAIN_BRANCH, DatasetHandle
from ._errors import InvalidFilterError, ReadOnlyError, VersionNotFoundError
from ._filters import in_
from ._versions import RecordChanges, VersionDiff, VersionInfo, list_versions, record_changes

if TYPE_CHECKING:
    from ._store import ContextStore

__all__ = ["HistoryMixin"]

#: Longer runs of versions are not inspected one by one (each costs a read).
_MAX_INSPECTED = 32

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or (name == MAIN_BRANCH and kind == "tag"):
        raise InvalidFilterError(
            f"invalid {kind} name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


class HistoryMixin:
    """Version history operations; mixed into ContextStore."""

    _handle: DatasetHandle
    _pinned: int | None

    if TYPE_CHECKING:

        def _read_ds(self, version: int | None = None) -> lance.LanceDataset: ...
        def _check_writable(self) -> None: ...
        def _maintain(self) -> None: ...

        read_only: bool

    def _clone(self, handle: DatasetHandle, *, pinned: int | None, read_only: bool) -> ContextStore:
        from ._store import ContextStore

        me: Any = self
        return ContextStore(
            handle,
            embedder=me.embedder,
            read_only=read_only,
            pinned_version=pinned,
            compaction=me.compaction,
            indexing=me.indexing,
            limits=me.limits,
        )

    # ------------------------------------------------------------------ versions
    def version(self) -> int:
        """The version this store reads: the checked-out one, or the latest."""
        if self._pinned is not None:
            return self._pinned
        return int(self._handle.latest().version)

    def _changes_between(self, since: int, until: int) -> RecordChanges | None:
        """What the commits after ``since`` up to ``until`` may have changed; None if unknown.

        Lets in-memory views of some sessions survive maintenance and appends to other
        sessions. Unknown for ``until < since``, for long runs of versions (not
        inspected), and for commits that do not say what they touched.
        """
        if until < since or until - since > _MAX_INSPECTED:
            return None
        ds = self._handle.latest()
        sessions: set[str] = set()
        for version in range(since + 1, until + 1):
            changes = record_changes(ds, version)
            if changes is None:
                return None
            sessions |= changes.sessions
        return RecordChanges(frozenset(sessions))

    def versions(self) -> list[VersionInfo]:
        """Every version of this branch, oldest first, with what each commit did."""
        ds = self._handle.latest()
        by_version: dict[int, list[str]] = {}
        for name, version in self.tags().items():
            by_version.setdefault(version, []).append(name)
        return self._handle.call(lambda: list_versions(ds, by_version), "list versions", retry=False)

    def _resolve(self, version_or_tag: int | str) -> int:
        if isinstance(version_or_tag, bool) or not isinstance(version_or_tag, (int, str)):
            raise VersionNotFoundError(f"expected a version number or tag name, got {version_or_tag!r}")
        if isinstance(version_or_tag, int):
            self._handle.at(version_or_tag)  # raises VersionNotFoundError when missing
            return version_or_tag
        tags = self._handle.latest().tags.list()
        if version_or_tag not in tags:
            raise VersionNotFoundError(f"no tag named {version_or_tag!r}; tags: {sorted(tags)}")
        info = tags[version_or_tag]
        branch = info.get("branch") or MAIN_BRANCH
        if branch != self._handle.branch:
            raise VersionNotFoundError(
                f"tag {version_or_tag!r} points at branch {branch!r}; checkout_branch({branch!r}) first"
            )
        return int(info["version"])

    def checkout(self, version_or_tag: int | str) -> ContextStore:
        """Read the store as it was at a version (or tag); return the store itself.

        Writes are refused until :meth:`checkout_latest`.
        """
        self._pinned = self._resolve(version_or_tag)
        return self  # type: ignore[return-value]

    def checkout_latest(self) -> ContextStore:
        """Go back to reading (and writing) the latest version."""
        self._pinned = None
        return self  # type: ignore[return-value]

    def at_version(self, version_or_tag: int | str) -> ContextStore:
        """A separate read-only view of the store at a version; this store is unchanged."""
        return self._clone(self._handle, pinned=self._resolve(version_or_tag), read_only=True)

    # ------------------------------------------------------------------ tags
    def tag(self, name: str, version: int | None = None) -> None:
        """Name a version (default: the one this store reads)."""
        _check_name("tag", name)
        target = self._resolve(version) if version is not None else self.version()
        ref: int | tuple[str, int] = target if self.branch_name == MAIN_BRANCH else (self.branch_name, target)
        self._handle.write(lambda ds: ds.tags.create(name, ref), f"create tag {name!r}", retry=False)

    def tags(self) -> dict[str, int]:
        """Tags of this branch and the versions they name."""
        listed = self._handle.latest().tags.list()
        return {
            name: int(info["version"])
            for name, info in listed.items()
            if (info.get("branch") or MAIN_BRANCH) == self.branch_name
        }

    def delete_tag(self, name: str) -> None:
        """Remove a tag (the version stays until cleanup)."""
        if name not in self._handle.latest().tags.list():
            raise VersionNotFoundError(f"no tag named {name!r}")
        self._handle.write(lambda ds: ds.tags.delete(name), f"delete tag {name!r}", retry=False)

    @property
    def branch_name(self) -> str:
        """The branch this store is on."""
        return self._handle.branch

    # ------------------------------------------------------------------ restore
    def restore(self, version_or_tag: int | str) -> int:
        """Make a past version the new latest, as a new version; return that version.

        Works while that version is checked out; afterwards the store reads the latest.
        """
        if self.read_only:
            raise ReadOnlyError("this store was opened read_only=True")
        target = self._resolve(version_or_tag)
        self._handle.write(
            lambda ds: ds.checkout_version((self.branch_name, target)).restore(),
            f"restore version {target}",
        )
        self._pinned = None
        return int(self._handle.latest().version)

    # ------------------------------------------------------------------ branches
    def branch(self, name: str, from_version: int | str | None = None) -> ContextStore:
        """Create a branch from a version (default: the one this store reads).

        Writes on the branch never show on this branch and vice versa.

        Returns:
            A store on the new branch.
        """
        if self.read_only:
            raise ReadOnlyError("this store was opened read_only=True")
        _check_name("branch", name)
        if name == MAIN_BRANCH or name in self.branches():
            raise InvalidFilterError(f"a branch named {name!r} already exists")
        source = self.version() if from_version is None else self._resolve(from_version)
        ref: int | tuple[str, int] = source if self.branch_name == MAIN_BRANCH else (self.branch_name, source)
        self._handle.write(lambda ds: ds.create_branch(name, ref), f"create branch {name!r}", retry=False)
        handle = DatasetHandle(self._handle.uri, self._handle.storage_options, branch=name)
        return self._clone(handle, pinned=None, read_only=False)

    def checkout_branch(self, name: str) -> ContextStore:
        """Switch this store to another branch (``main`` for the main one)."""
        self._handle = DatasetHandle(self._handle.uri, self._handle.storage_options, branch=name)
        self._pinned = None
        return self  # type: ignore[return-value]

    def branches(self) -> list[str]:
        """``main`` and every other branch."""
        listed = self._handle.latest().branches.list()
        return [MAIN_BRANCH, *sorted(listed)]

    def delete_branch(self, name: str) -> None:
        """Delete a branch and its versions."""
        if name == MAIN_BRANCH or name not in self.branches():
            raise VersionNotFoundError(f"no branch named {name!r} to delete")
        if name == self.branch_name:
            raise InvalidFilterError(
                "cannot delete the branch this store is on; checkout_branch('main') first"
            )
        self._handle.write(lambda ds: ds.branches.delete(name), f"delete branch {name!r}", retry=False)

    # ------------------------------------------------------------------ diff
    def diff(self, from_version: int | str, to_version: int | str | None = None) -> VersionDiff:
        """Records added and removed between two versions (``to`` defaults to latest)."""
        start = self._resolve(from_version)
        end = self.version() if to_version is None else self._resolve(to_version)
        keys = {}
        for version in (start, end):
            ds = self._handle.at(version)
            table = ds.to_table(columns=["id", "seq"])
            ids, seqs = table.column("id").to_pylist(), table.column("seq").to_pylist()
            keys[version] = set(zip(ids, seqs, strict=True))
        added = keys[end] - keys[start]
        removed = keys[start] - keys[end]
        return VersionDiff(
            start,
            end,
            added=self._fetch(end, added),
            removed=self._fetch(start, removed),
        )

    def _fetch(self, version: int, keys: set[tuple[str, int]]) -> list[Any]:
        """Full records for (id, seq) keys at a version, in append order."""
        if not keys:
            return []
        ds = self._handle.at(version)
        ids = sorted({record_id for record_id, _ in keys})
        found = []
        for start in range(0, len(ids), 1000):
            table = ds.to_table(filter=in_("id", ids[start : start + 1000]))
            pairs = zip(table.column("id").to_pylist(), table.column("seq").to_pylist(), strict=True)
            mask = pa.array([pair in keys for pair in pairs], pa.bool_())
            found.append(table.filter(mask))
        merged = pa.concat_tables(found).sort_by([("seq", "ascending"), ("id", "ascending")])
        return table_to_records(merged)

    # ------------------------------------------------------------------ cleanup
    def cleanup(
        self,
        older_than: timedelta = timedelta(days=7),
        *,
        keep_tagged: bool = True,
        keep_versions: int | None = None,
    ) -> dict[str, int]:
        """Delete the files of versions older than ``older_than`` (time travel to them ends).

        Args:
            older_than: Keep every version newer than this.
            keep_tagged: Keep tagged versions; when False, old tags are removed first.
            keep_versions: Also keep at least this many of the newest versions.

        Returns:
            ``{"bytes_removed": ..., "old_versions": ...}``.
        """
        self._check_writable()
        if not keep_tagged:
            cutoff = datetime.now(timezone.utc) - older_than
            stamps = {v.version: v.timestamp for v in self.versions()}
            for name, version in self.tags().items():
                if stamps.get(version, cutoff) < cutoff:
                    self.delete_tag(name)
        stats = self._handle.write(
            lambda ds: ds.cleanup_old_versions(
                older_than=older_than,
                retain_versions=keep_versions,
                error_if_tagged_old_versions=False,
            ),
            "clean up old versions",
        )
        return {"bytes_removed": int(stats.bytes_removed), "old_versions": int(stats.old_versions)}

