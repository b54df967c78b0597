"""Versions, tags, branches, merge and review: this part of :class:`ContextStore`'s surface.

Split out of ``_store.py`` for size only. It holds no state and no logic: each method hands
its call to a collaborator (:class:`~lance_context._history.History`, the merger, the reviewer)
that the store wired around its :class:`~lance_context._state.StoreState`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ._dataset import MAIN_BRANCH
from ._errors import InvalidFilterError, ReadOnlyError
from ._history import History
from ._merge import Merger
from ._mergeplan import MergeResult, OnConflict
from ._restore import restore_session
from ._review import Review, Reviewer
from ._search import SearchMode
from ._state import StoreState
from ._versions import RecordChanges, VersionDiff, VersionInfo, version_ref
from ._writer import Writer

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["VersionMethods"]


class VersionMethods:
    """The version, branch and merge methods of :class:`~lance_context.ContextStore`."""

    _state: StoreState
    _history: History
    _merger: Merger
    _writer: Writer

    if TYPE_CHECKING:

        def __init__(self, state: StoreState) -> None: ...

    def version(self) -> int:
        """The version this store reads: the checked-out one, or the latest."""
        return self._history.version()

    def versions(self) -> list[VersionInfo]:
        """Every version of this branch, oldest first, with what each commit did."""
        return self._history.versions()

    def changes_between(self, since: int, until: int) -> RecordChanges | None:
        """Which sessions the commits after ``since`` up to ``until`` may have changed.

        None when that is not known (long runs of versions, commits that do not say).
        Lets in-memory views of some sessions survive commits that touched others.
        """
        return self._history.changes_between(since, until)

    def checkout(self, version_or_tag: int | str) -> Self:
        """Read the store as it was at a version (or tag); writes are refused until checkout_latest()."""
        self._history.checkout(version_ref(version_or_tag))
        return self

    def checkout_latest(self) -> Self:
        """Go back to reading (and writing) the latest version."""
        self._history.checkout_latest()
        return self

    def at_version(self, version_or_tag: int | str) -> Self:
        """A separate read-only view of the store at a version; this store is unchanged."""
        return type(self)(self._history.at_version(version_ref(version_or_tag)))

    def tag(self, name: str, version: int | None = None) -> None:
        """Name a version (default: the one this store reads; a checked-out one included)."""
        _refuse_if_read_only(self._state, f"create tag {name!r}")
        self._history.tag(name, None if version is None else version_ref(version))

    def tags(self) -> dict[str, int]:
        """Tags of this branch and the versions they name."""
        return self._history.tags()

    def delete_tag(self, name: str) -> None:
        """Remove a tag (the version stays until cleanup)."""
        _refuse_if_read_only(self._state, f"delete tag {name!r}")
        self._history.delete_tag(name)

    def restore(self, version_or_tag: int | str, *, run_id: str | None = None) -> int:
        """Make a past version the new latest, as a new version; return that version.

        With ``run_id`` only that session goes back: its records become what they were
        at that version (one commit) and every other session keeps its own. The store
        then reads the latest version.
        """
        version_or_tag = version_ref(version_or_tag)
        if run_id is None:
            return self._history.restore(version_or_tag)
        if not isinstance(run_id, str) or not run_id:
            raise InvalidFilterError(f"run_id must be a non-empty string, got {run_id!r}")
        _refuse_if_read_only(self._state, f"restore session {run_id!r}")
        then = self._history.at_version(version_or_tag)
        pinned = self._state.pinned
        self.checkout_latest()
        try:
            return restore_session(then, self._state, self._writer, run_id)
        except BaseException:
            self._state.pinned = pinned  # a restore that wrote nothing leaves the store reading what it read
            raise

    def branch(self, name: str, from_version: int | str | None = None) -> Self:
        """Create a branch from a version (default: the one this store reads); return a store on it.

        Writes on the branch never show on this branch and vice versa.
        """
        source = None if from_version is None else version_ref(from_version)
        return type(self)(self._history.branch(name, source))

    def checkout_branch(self, name: str) -> Self:
        """Switch this store to another branch (``main`` for the main one)."""
        self._history.checkout_branch(name)
        return self

    def branches(self) -> list[str]:
        """``main`` and every other branch."""
        return self._history.branches()

    def delete_branch(self, name: str) -> None:
        """Delete a branch and its versions."""
        _refuse_if_read_only(self._state, f"delete branch {name!r}")
        if name == MAIN_BRANCH:
            raise InvalidFilterError("the main branch cannot be deleted; only the branches made from it can")
        self._history.delete_branch(name)

    def merge(self, branch: str, *, into: str = MAIN_BRANCH, on_conflict: OnConflict = "fail") -> MergeResult:
        """Apply everything ``branch`` added, changed and deleted since it forked to ``into``, as one version.

        Merged records sort after the target's; merging again changes nothing.

        Raises:
            MergeConflictError: Records changed on both sides and ``on_conflict="fail"`` (nothing
                written); ``"ours"`` keeps the target's copies, ``"theirs"`` takes the branch's.
        """
        return self._merger.merge(branch, into, on_conflict)

    def review(
        self,
        branch: str,
        queries: Sequence[str] = (),
        *,
        k: int = 5,
        into: str = MAIN_BRANCH,
        mode: SearchMode = "vector",
        where: Mapping[Any, Any] | None = None,
        on_conflict: OnConflict = "fail",
    ) -> Review:
        """What merging ``branch`` changes, per session, and each query's top-k before and after; no write."""
        return Reviewer(self._state, self._merger).review(
            branch, queries, k=k, into=into, mode=mode, where=where, on_conflict=on_conflict
        )

    def diff(self, from_version: int | str, to_version: int | str | None = None) -> VersionDiff:
        """Records added and removed between two versions (``to`` defaults to the one read)."""
        return self._history.diff(
            version_ref(from_version), None if to_version is None else version_ref(to_version)
        )

    def cleanup(
        self,
        older_than: timedelta = timedelta(days=7),
        *,
        keep_tagged: bool = True,
        keep_versions: int | None = None,
        unreferenced: bool = False,
    ) -> dict[str, int]:
        """Delete the files of versions older than ``older_than`` (time travel to them ends).

        Tagged versions are kept unless ``keep_tagged=False``; ``keep_versions`` keeps at
        least that many of the newest. ``unreferenced=True`` also deletes the files no
        version references (left by writes that lost a race or were killed), which Lance
        otherwise keeps for 7 days: only while nothing else writes to the store.
        Returns ``{"bytes_removed", "old_versions"}``.
        """
        return self._history.cleanup(
            older_than, keep_tagged=keep_tagged, keep_versions=keep_versions, unreferenced=unreferenced
        )


def _refuse_if_read_only(state: StoreState, action: str) -> None:
    """Refuse a change to tags or branches (or a write) on a store opened read-only, or a view."""
    if state.read_only:
        raise ReadOnlyError(
            f"cannot {action}: this store was opened read_only=True (or is a read-only view of it); "
            "open it writable to do that. Nothing was written."
        )
