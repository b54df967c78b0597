"""Versions, tags, branches, restore, diff and cleanup: one store's history.

Checking out a version or switching branch changes what the store reads for every
collaborator (they share one ``StoreState``); ``at_version`` and ``branch`` return
the state of a separate store instead.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import lance
import pyarrow as pa

from ._arrow import table_to_records
from ._dataset import MAIN_BRANCH
from ._encryption import read_marker
from ._errors import EncryptionError, InvalidFilterError, ReadOnlyError, VersionNotFoundError
from ._filters import in_
from ._fingerprints import row_changes
from ._opening import follow_schema
from ._reader import record_columns
from ._records import ContextRecord
from ._state import StoreState
from ._versions import (
    OP_KEY,
    RecordChanges,
    VersionDiff,
    VersionInfo,
    changes_of,
    list_versions,
    record_changes,
)

__all__ = ["History"]

#: Longer runs of versions are not inspected one by one (each costs a read).
_MAX_INSPECTED = 32
_READ_ONLY = (
    "this store was opened read_only=True (or is a read-only view of it); open it writable to do that. "
    "Nothing was written."
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _check_name(kind: str, name: str) -> str:
    if (
        not isinstance(name, str)
        or not _NAME.match(name)
        or ".." in name
        or name.endswith((".", ".lock"))
        or (name == MAIN_BRANCH and kind == "tag")
    ):
        raise InvalidFilterError(
            f"invalid {kind} name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..' and not ending in '.' or '.lock'"
        )
    return name


class History:
    """Versions, tags, branches, restore, diff and cleanup of one store."""

    def __init__(self, state: StoreState) -> None:
        """Work on the store ``state`` describes."""
        self._state = state

    # ------------------------------------------------------------------ versions
    def version(self) -> int:
        """The version this store reads: the checked-out one, or the latest."""
        if self._state.pinned is not None:
            return self._state.pinned
        return int(self._state.handle.latest().version)

    def changes_between(self, since: int, until: int) -> RecordChanges | None:
        """What the commits after ``since`` up to ``until`` may have changed; None if unknown.

        Lets in-memory views of some sessions survive maintenance and appends to other
        sessions. Unknown for ``until < since``, for long runs of versions (not
        inspected), and for commits that do not say what they touched.
        """
        if until < since or until - since > _MAX_INSPECTED:
            return None
        handle = self._state.handle
        ds = None
        sessions: set[str] = set()
        for version in range(since + 1, until + 1):
            own = handle.own_properties(version)
            if own is not None and OP_KEY in own:
                changes = changes_of(own[OP_KEY], own)  # this process's commit: known without a read
            else:
                if ds is None:
                    ds = handle.latest()
                changes = record_changes(ds, version, handle.history_key)
            if changes is None:
                return None
            sessions |= changes.sessions
        return RecordChanges(frozenset(sessions))

    def versions(self) -> list[VersionInfo]:
        """Every version of this branch, oldest first, with what each commit did."""
        handle = self._state.handle
        ds = handle.latest()  # each version is read on an object of its own (transactions borrow it)
        by_version: dict[int, list[str]] = {}
        for name, version in self._tags_of(ds).items():
            by_version.setdefault(version, []).append(name)
        key = handle.history_key
        return handle.call(lambda: list_versions(ds, by_version, key), "list versions", retry=False)

    def resolve(self, version_or_tag: int | str) -> int:
        """The version number a version or tag of this branch names."""
        if isinstance(version_or_tag, bool) or not isinstance(version_or_tag, (int, str)):
            raise VersionNotFoundError(f"expected a version number or tag name, got {version_or_tag!r}")
        if isinstance(version_or_tag, int):
            if version_or_tag < 1:
                raise VersionNotFoundError(f"versions are numbered from 1, got {version_or_tag}")
            if version_or_tag >= 2**63:  # beyond any version Lance can number
                raise VersionNotFoundError(f"version {version_or_tag} does not exist")
            self._state.handle.at(version_or_tag)  # raises VersionNotFoundError when missing
            return version_or_tag
        tags = self._state.handle.latest().tags.list()
        if version_or_tag not in tags:
            raise VersionNotFoundError(
                f"no tag named {version_or_tag!r}; tags: {', '.join(sorted(tags)) or 'none'}"
            )
        info = tags[version_or_tag]
        branch = info.get("branch") or MAIN_BRANCH
        if branch != self._state.handle.branch:
            raise VersionNotFoundError(
                f"tag {version_or_tag!r} points at branch {branch!r}; checkout_branch({branch!r}) first"
            )
        return int(info["version"])

    def checkout(self, version_or_tag: int | str) -> None:
        """Read the store as it was at a version (or tag); writes are refused until checkout_latest."""
        self._state.pinned = self.resolve(version_or_tag)

    def checkout_latest(self) -> None:
        """Go back to reading (and writing) the latest version."""
        self._state.pinned = None

    def at_version(self, version_or_tag: int | str) -> StoreState:
        """The state of a separate read-only view at a version; this store is unchanged."""
        return self._state.view(pinned=self.resolve(version_or_tag), read_only=True)

    # ------------------------------------------------------------------ tags
    def tag(self, name: str, version: int | None = None) -> None:
        """Name a version (default: the one this store reads)."""
        _check_name("tag", name)
        target = self.resolve(version) if version is not None else self.version()
        named = self._state.handle.latest().tags.list().get(name)
        if named is not None:
            raise InvalidFilterError(
                f"a tag named {name!r} already exists (on {named.get('branch') or MAIN_BRANCH}@"
                f"{named['version']}); delete_tag({name!r}) first to move it"
            )
        ref: int | tuple[str, int] = target if self.branch_name == MAIN_BRANCH else (self.branch_name, target)
        self._state.handle.write(lambda ds: ds.tags.create(name, ref), f"create tag {name!r}", retry=False)

    def tags(self) -> dict[str, int]:
        """Tags of this branch and the versions they name."""
        return self._tags_of(self._state.handle.latest())

    def _tags_of(self, ds: lance.LanceDataset) -> dict[str, int]:
        listed = ds.tags.list()
        return {
            name: int(info["version"])
            for name, info in listed.items()
            if (info.get("branch") or MAIN_BRANCH) == self.branch_name
        }

    def delete_tag(self, name: str) -> None:
        """Remove a tag of this branch (the version stays until cleanup)."""
        info = self._state.handle.latest().tags.list().get(name)
        if info is None:
            raise VersionNotFoundError(f"no tag named {name!r}")
        owner = info.get("branch") or MAIN_BRANCH
        if owner != self.branch_name:
            raise VersionNotFoundError(
                f"tag {name!r} belongs to branch {owner!r}, not {self.branch_name!r}; "
                f"delete it from a store on {owner!r}"
            )
        self._state.handle.write(lambda ds: ds.tags.delete(name), f"delete tag {name!r}", retry=False)

    @property
    def branch_name(self) -> str:
        """The branch this store is on."""
        return self._state.handle.branch

    # ------------------------------------------------------------------ restore
    def restore(self, version_or_tag: int | str) -> int:
        """Make a past version the new latest, as a new version; return that version.

        Works while that version is checked out; afterwards the store reads the latest.

        Raises:
            EncryptionError: The version was sealed with a key ``rotate_key()`` retired.
        """
        if self._state.read_only:
            raise ReadOnlyError(_READ_ONLY)
        target = self.resolve(version_or_tag)
        handle = self._state.handle
        then, now = read_marker(handle.schema(handle.at(target))), read_marker(handle.schema(handle.latest()))
        if then is not None and now is not None and then.get("key_id") != now.get("key_id"):
            raise EncryptionError(
                f"version {target} was sealed with a key rotate_key() has retired since: restoring the "
                "whole version would put that key back in charge of the store; restore its sessions "
                f"with restore({target}, run_id=...), which seals them with the current key "
                "(nothing was written)"
            )

        def restore(ds: lance.LanceDataset) -> int:
            restored = ds.checkout_version((self.branch_name, target))
            restored.restore()
            return int(restored.version)  # its own commit, whatever others committed since

        made = self._state.handle.write(restore, f"restore version {target}")
        self._state.pinned = None
        latest = self._state.handle.latest()
        follow_schema(self._state.embedding, self._state.handle.schema(latest), self._state.handle.uri)
        return made

    # ------------------------------------------------------------------ branches
    def branch(self, name: str, from_version: int | str | None = None) -> StoreState:
        """Create a branch from a version (default: the one this store reads); return its state."""
        if self._state.read_only:
            raise ReadOnlyError(_READ_ONLY)
        _check_name("branch", name)
        if name == MAIN_BRANCH or name in self.branches():
            raise InvalidFilterError(f"a branch named {name!r} already exists")
        source = self.version() if from_version is None else self.resolve(from_version)
        ref: int | tuple[str, int] = source if self.branch_name == MAIN_BRANCH else (self.branch_name, source)
        self._state.handle.write(
            lambda ds: ds.create_branch(name, ref), f"create branch {name!r}", retry=False
        )
        return self._state.view(handle=self._state.handle.on_branch(name), read_only=False)

    def checkout_branch(self, name: str) -> None:
        """Switch this store to another branch (``main`` for the main one)."""
        self._state.handle = self._state.handle.on_branch(name)
        self._state.pinned = None

    def branches(self) -> list[str]:
        """``main`` and every other branch."""
        listed = self._state.handle.latest().branches.list()
        return [MAIN_BRANCH, *sorted(listed)]

    def delete_branch(self, name: str) -> None:
        """Delete a branch and its versions."""
        if name == MAIN_BRANCH or name not in self.branches():
            raise VersionNotFoundError(f"no branch named {name!r} to delete")
        if name == self.branch_name:
            raise InvalidFilterError(
                "cannot delete the branch this store is on; checkout_branch('main') first"
            )
        latest = self._state.handle.latest()
        children = sorted(
            b for b, info in latest.branches.list().items() if info.get("parent_branch") == name
        )
        if children:
            raise InvalidFilterError(
                f"branch {name!r} has branches made from it ({children}); delete those first"
            )
        tags = sorted(t for t, info in latest.tags.list().items() if info.get("branch") == name)
        if tags:
            raise InvalidFilterError(f"branch {name!r} has tags ({tags}); delete_tag() them first")
        self._state.handle.write(lambda ds: ds.branches.delete(name), f"delete branch {name!r}", retry=False)

    # ------------------------------------------------------------------ diff
    def diff(self, from_version: int | str, to_version: int | str | None = None) -> VersionDiff:
        """Records added and removed between two versions (``to``: the version this store reads)."""
        start = self.resolve(from_version)
        end = self.version() if to_version is None else self.resolve(to_version)
        handle = self._state.handle
        added, removed = row_changes(handle.at(start), handle.at(end), cipher=self._state.cipher)
        return VersionDiff(
            start,
            end,
            added=self._fetch(end, set(added)),
            removed=self._fetch(start, set(removed)),
        )

    def _fetch(self, version: int, keys: set[tuple[str, int]]) -> list[ContextRecord]:
        """Full records for (id, seq) keys at a version, in append order."""
        if not keys:
            return []
        ds = self._state.handle.at(version)
        ids = sorted({record_id for record_id, _ in keys})
        found = []
        for start in range(0, len(ids), 1000):
            table = ds.to_table(
                filter=in_("id", ids[start : start + 1000]), columns=record_columns(ds.schema)
            )
            pairs = zip(table.column("id").to_pylist(), table.column("seq").to_pylist(), strict=True)
            mask = pa.array([pair in keys for pair in pairs], pa.bool_())
            found.append(table.filter(mask))
        merged = pa.concat_tables(found).sort_by([("seq", "ascending"), ("id", "ascending")])
        return table_to_records(merged, self._state.cipher)

    # ------------------------------------------------------------------ cleanup
    def cleanup(
        self,
        older_than: timedelta = timedelta(days=7),
        *,
        keep_tagged: bool = True,
        keep_versions: int | None = None,
        unreferenced: bool = False,
    ) -> dict[str, int]:
        """Delete the files of versions older than ``older_than`` (time travel to them ends).

        Args:
            older_than: Keep every version newer than this.
            keep_tagged: Keep tagged versions; when False, the tags of the versions this
                removes are removed first (a tag on the latest version, or on one of the
                newest ``keep_versions``, stays with its version).
            keep_versions: Also keep at least this many of the newest versions.
            unreferenced: Also delete files that no version references, however new: those
                of a write, compaction or index refresh that lost a race to another writer
                or was killed before its commit. Lance otherwise keeps them for 7 days, as
                they may belong to a write still in progress. Only while nothing else
                (thread or process) writes to the store: such a write would lose its files.

        Returns:
            ``{"bytes_removed": ..., "old_versions": ...}``.

        Raises:
            InvalidFilterError: An argument of the wrong type or range (nothing is removed).
        """
        self._state.check_writable()
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise InvalidFilterError(f"older_than must be a timedelta of zero or more, got {older_than!r}")
        if not isinstance(keep_tagged, bool):
            raise InvalidFilterError(f"keep_tagged must be True or False, got {keep_tagged!r}")
        if not isinstance(unreferenced, bool):
            raise InvalidFilterError(f"unreferenced must be True or False, got {unreferenced!r}")
        if keep_versions is not None and (
            isinstance(keep_versions, bool) or not isinstance(keep_versions, int) or keep_versions < 1
        ):
            raise InvalidFilterError(
                f"keep_versions must be a positive integer or None, got {keep_versions!r}"
            )
        if not keep_tagged:
            cutoff = datetime.now(timezone.utc) - older_than
            versions = sorted(self.versions(), key=lambda v: v.version)
            kept = {v.version for v in versions[-max(keep_versions or 1, 1) :]}  # the latest at least
            stamps = {v.version: v.timestamp for v in versions}
            for name, version in self.tags().items():
                if version not in kept and stamps.get(version, cutoff) < cutoff:
                    self.delete_tag(name)
        stats = self._state.handle.write(
            lambda ds: ds.cleanup_old_versions(
                older_than=older_than,
                retain_versions=keep_versions,
                delete_unverified=unreferenced,
                error_if_tagged_old_versions=False,
            ),
            "clean up old versions",
        )
        return {"bytes_removed": int(stats.bytes_removed), "old_versions": int(stats.old_versions)}
