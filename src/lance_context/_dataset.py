"""The one place that talks to Lance: opening, refreshing, committing, retrying, translating.

Every Lance or pyarrow call of a store runs through :meth:`DatasetHandle.call` (its body
is ``_lance_calls.call_lance``), which retries commit conflicts with jittered, bounded
backoff and translates anything else with ``translate_lance_error`` (a Rust panic
included: it is a ``BaseException`` that would escape every ``except Exception``). The
few private pylance APIs the store uses are wrapped here, each with the reason.

Reads and writes work on *snapshots*: ``LanceDataset`` objects fixed at one version.
The handle keeps the newest one it knows and refreshes it with one cheap probe (a file
lookup on a local store, one LIST on an object store). Writes commit through Lance's
transaction API from a snapshot, which leaves the snapshot untouched, so readers in
other threads never see an object change under them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import lance
import pyarrow as pa

from ._commits import check_commits
from ._errors import ForkSafetyError, VersionNotFoundError, redact
from ._known import Facts, KnownVersions, StoreKey
from ._lance_calls import at_latest, call_lance
from ._manifests import MAIN_BRANCH, LocalManifests, latest_local_version
from ._policies import CachePolicy
from ._storage import (
    check_context_schema,
    is_missing,
    probed_dataset,
    secret_values,
    shared_session,
    storage_defaults,
)
from ._versions import OP_KEY

__all__ = ["MAIN_BRANCH", "DatasetHandle", "shared_session"]

T = TypeVar("T")


class DatasetHandle:
    """A Lance dataset on one branch, refreshed to its latest version on demand."""

    def __init__(
        self,
        uri: str,
        storage_options: Mapping[str, str] | None,
        *,
        branch: str = MAIN_BRANCH,
        caches: CachePolicy | None = None,
        retries: int = 8,
    ) -> None:
        """Open the dataset at ``uri`` (it must exist) on ``branch``."""
        self.uri = uri
        self.storage_options = storage_defaults(uri, storage_options)
        self.branch = branch
        self.caches = caches or CachePolicy()
        self.retries = retries
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._manifests: LocalManifests | None = None
        self._known = KnownVersions()
        self._commits_checked = False
        self._identity: object = None  # which branch of that name it opened (see check_branch)
        self._gone: str | None = None  # why this branch is refused for good (deleted, or made again)
        self._ds: lance.LanceDataset = self.call(self._open, "open the store")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in messages (object-store credentials)."""
        return secret_values(self.storage_options)

    def display_uri(self) -> str:
        """The URI with any credentials in it masked, for reprs and messages."""
        return redact(self.uri, self.secrets)

    @property
    def history_key(self) -> StoreKey:
        """Which history this handle's version numbers belong to (a branch made again starts anew)."""
        return (self.uri, self.branch, repr(self._identity))

    @property
    def snapshot(self) -> lance.LanceDataset:
        """The version this handle read last, without looking for a newer one (see ``latest``)."""
        return self._ds

    def on_branch(self, branch: str) -> DatasetHandle:
        """A handle on another branch of the same dataset."""
        return DatasetHandle(self.uri, self.storage_options, branch=branch, caches=self.caches)

    def _open(self) -> lance.LanceDataset:
        session = shared_session(self.uri, self.caches)
        options = self.storage_options or None
        # The dataset the "is there a store?" probe just opened saves a listing on an object
        # store (the first latest() looks for newer versions anyway); a local store opens at
        # the version its manifests name, without listing them.
        ds = probed_dataset(self.uri, self.storage_options, session) or at_latest(
            lambda v: lance.dataset(self.uri, version=v, storage_options=options, session=session),
            latest_local_version(self.uri, MAIN_BRANCH),
        )
        if self.branch != MAIN_BRANCH:
            listed = ds.branches.list()
            if self.branch not in listed:
                raise VersionNotFoundError(f"no branch named {self.branch!r}")
            self._identity = listed[self.branch].get("branch_identifier")
            main = ds
            ds = at_latest(
                lambda v: main.checkout_version((self.branch, v)), latest_local_version(self.uri, self.branch)
            )
            self._same_branch(int(ds.version))  # remembers which manifest that version was
        check_context_schema(ds, self.display_uri())
        return ds

    def check_fork(self) -> None:
        """Refuse use after ``fork()``: Lance's runtime does not survive it."""
        if os.getpid() != self._pid:
            raise ForkSafetyError(
                "this store was opened in another process and used after fork(); Lance is "
                "not fork-safe. Open the store again in the child, or use the 'spawn' start "
                "method for multiprocessing."
            )

    def call(self, fn: Callable[[], T], action: str, *, retry: bool = True) -> T:
        """Run ``fn`` with conflict retries (jittered, bounded backoff) and error translation."""
        self.check_fork()
        return call_lance(fn, action, self.secrets, self.retries if retry else 1)

    # ------------------------------------------------------------------ snapshots
    def latest(self) -> lance.LanceDataset:
        """A snapshot of the latest version of this handle's branch.

        The probe for a newer version runs outside the handle's lock, so one stalled
        request never blocks other threads' reads behind it.
        """
        self.check_fork()
        current = self._ds
        try:
            if self._gone is not None:  # a branch made again may look fine later: never follow it
                raise VersionNotFoundError(self._gone)
            newest = self.call(lambda: self._newer(current), "look for newer versions", retry=False)
        except VersionNotFoundError as exc:
            if self.branch == MAIN_BRANCH:
                raise
            self._gone = str(exc) if _REPLACED in str(exc) else f"branch {self.branch!r} {_DELETED}"
            raise VersionNotFoundError(self._gone) from None
        if newest is None:
            return current
        fresh = self.call(
            lambda: current.checkout_version((self.branch, newest)), "refresh to the latest version"
        )
        return self.adopt(fresh)

    def private_latest(self) -> lance.LanceDataset:
        """A snapshot of the latest version that no other thread uses, for a write to commit on.

        Committing, merging and deleting borrow their dataset object mutably; on the
        shared snapshot that would fail readers in other threads (pyo3's "already
        mutably borrowed"). The copy comes from the shared session's cached manifest.
        """
        snapshot = self.latest()
        return self.call(
            lambda: snapshot.checkout_version((self.branch, snapshot.version)), "prepare a write"
        )

    def adopt(self, ds: lance.LanceDataset) -> lance.LanceDataset:
        """Make ``ds`` the newest known snapshot unless a newer one is known; return the newest."""
        with self._lock:
            adopted, newest = int(ds.version) > int(self._ds.version), self._ds
            self._ds = ds if adopted else newest
        if adopted:
            self._same_branch(int(ds.version))  # one stat per new version, on a local branch
        return ds if adopted else newest

    def _newer(self, ds: lance.LanceDataset) -> int | None:
        """The version to refresh to, or None when ``ds`` is the latest.

        On a local store: whether the next manifest file exists (about 2 µs), and whether
        ``ds``'s own is still there and, on a branch, the same file (see ``_same_branch``).
        On an object store: one LIST of the manifests (a missing-version probe costs Lance
        five requests). A snapshot whose own manifest was removed by another process's
        cleanup asks Lance for the latest (and, on a branch, whether it is still that branch).
        """
        version = int(ds.version)
        if self._manifests is None:
            self._manifests = LocalManifests.find(self.uri, self.branch, version)
        manifests = self._manifests
        if manifests.known:
            main = self.branch == MAIN_BRANCH
            if manifests.exists(version + 1):
                if not main and not self._same_branch(version):
                    self.check_branch(ds)  # cleaned up, or a new branch that starts later: ask once
                return manifests.newest_from(version + 1)
            if manifests.exists(version) if main else self._same_branch(version):
                return manifests.past_gap(version)
            self._manifests = None  # cleaned up, or another layout: ask Lance
        latest = int(ds.latest_version)
        if latest < version:  # a history never goes back: the branch was made again (see check_branch)
            raise VersionNotFoundError(f"branch {self.branch!r} {_REPLACED}")
        if latest > version and LocalManifests.folder_of(self.uri, self.branch) is not None:
            self.check_branch(ds)  # its manifest is gone: cleaned up, or a new branch starts later
        return latest if latest != version else None

    def _noted(self) -> None:
        """After this handle's commit: let a local store's manifests read the new hint now."""
        manifests = self._manifests
        if manifests is not None and manifests.known:
            manifests.note_commit()

    def _same_branch(self, version: int) -> bool:
        """Whether ``version``'s manifest on a local branch is the file this handle first saw.

        A branch made again may reach the numbers this handle read: its reads, and caches
        keyed by version, would serve the deleted branch. Raises ``VersionNotFoundError`` if
        it is another file; False when not known (see ``KnownVersions.same_manifest``).
        """
        if self.branch == MAIN_BRANCH:
            return False
        if self._manifests is None:
            self._manifests = LocalManifests.find(self.uri, self.branch, version)
        same = self._known.same_manifest(self._manifests, version)
        if same is False:
            self._gone = f"branch {self.branch!r} {_REPLACED}"
            raise VersionNotFoundError(self._gone)
        return bool(same)

    def at(self, version: int) -> lance.LanceDataset:
        """A snapshot of ``version`` of this branch (a branch made again is refused, see ``_same_branch``)."""
        if self._gone:
            self.latest()  # raises the reason it is refused
        else:
            self._same_branch(int(self._ds.version))

        def checkout() -> lance.LanceDataset:
            try:
                return self._ds.checkout_version((self.branch, version))
            except (OSError, ValueError, RuntimeError) as exc:
                if is_missing(exc):
                    raise VersionNotFoundError(
                        f"version {version} of branch {self.branch!r} does not exist "
                        "(or was removed by cleanup)"
                    ) from exc
                raise

        return self.call(checkout, f"check out version {version}", retry=False)

    def facts(self, ds: lance.LanceDataset) -> Facts:
        """The manifest facts of ``ds``'s version (kept for the last few versions)."""
        found = self._known.facts(int(ds.version))
        if found is None:
            found = self.call(lambda: Facts.of(ds), "describe the store's files")
            self._known.keep_facts(found)
        return found

    def schema(self, ds: lance.LanceDataset) -> pa.Schema:
        """The Arrow schema of ``ds``'s version (a snapshot of this handle's branch).

        pylance builds the schema anew on every access (~20-50 us); it is kept for the
        last few versions, and an append this handle commits keeps its base's schema.
        """
        found = self._known.schema(int(ds.version))
        if found is None:
            found = ds.schema
            self._known.keep_schema(int(ds.version), found)
        return found

    # ------------------------------------------------------------------ writes
    def commit(
        self,
        base: lance.LanceDataset,
        change: lance.LanceOperation.BaseOperation | lance.Transaction,
        properties: Mapping[str, str],
        *,
        max_retries: int = 20,
    ) -> lance.LanceDataset:
        """Commit an operation (or a transaction prepared on ``base``) on top of snapshot ``base``.

        ``base`` is left untouched; the new version is adopted and returned (this commit's
        own, even when a concurrent commit in another thread is newer by now). Lance
        rebases compatible concurrent commits (appends never conflict); ``max_retries=0``
        instead fails on any commit landed since ``base``.
        """
        self.check_commits()
        if isinstance(change, lance.Transaction):
            change.transaction_properties = dict(properties)
            transaction = change
        else:
            transaction = lance.Transaction(
                int(base.version), change, transaction_properties=dict(properties)
            )
        try:
            new = lance.LanceDataset.commit(base, transaction, max_retries=max_retries)
        except OSError as exc:
            if is_missing(exc) and ".manifest" in str(exc):
                # Another process's cleanup removed the version this write read (or one
                # it must check) before the commit: nothing was written, and the caller's
                # retry reads the latest version again.
                raise _BaseCleanedUp(
                    f"commit conflict: version {int(base.version)}, which this write read, was "
                    "cleaned up by another process before the commit"
                ) from exc
            raise
        self._known.keep_properties(int(new.version), properties)
        if isinstance(change, lance.LanceOperation.Append):
            self._known.after_append(base, new, change.fragments)
        self.adopt(new)
        self._noted()
        return new  # this commit's own version, even when another thread's is newer by now

    def own_properties(self, version: int) -> dict[str, str] | None:
        """The transaction properties of ``version`` if this handle committed it (recent ones).

        Lets a reader learn what its own commits did without reading their transaction
        files back (~0.2 ms each). A branch's version numbers are never reused while a
        handle is open on it.
        """
        return self._known.properties(version)

    def write(
        self,
        fn: Callable[[lance.LanceDataset], T],
        action: str,
        *,
        retry: bool = True,
        keeps_records: bool = False,
    ) -> T:
        """Run a Lance API that changes the object it runs on, on a private object at the latest version.

        For the calls that have no uncommitted form in pylance (delete, compaction, index
        builds, restore, tags, branches). Commit conflicts are retried on a fresh object.
        ``keeps_records``: ``fn`` only maintains the store (indexes), so the version its
        commit made is remembered as changing no record (when it directly followed).
        """
        self.check_commits()

        def attempt() -> T:
            private = self.private_latest()
            before = int(private.version)
            result = fn(private)
            if keeps_records and int(private.version) == before + 1:  # one commit, ours, nothing between
                self._known.keep_properties(before + 1, {OP_KEY: "maintenance"})
            self.adopt(private)
            self._noted()
            return result

        return self.call(attempt, action, retry=retry)

    def check_commits(self) -> None:
        """Before this handle's first write: refuse an object store that cannot commit safely."""
        if not self._commits_checked:
            check_commits(self.uri, self.storage_options)
            self._commits_checked = True
        self.check_branch(self._ds)

    def check_branch(self, ds: lance.LanceDataset) -> None:
        """Before a write: refuse a branch deleted, or deleted and made again (Lance names each anew).

        A new branch of that name can reach the version this handle read: a commit on the old
        snapshot would land on it, pointing at the old branch's deleted files.
        """
        if self.branch != MAIN_BRANCH:
            found = self.call(lambda: ds.branches.list(), "list the branches", retry=False).get(self.branch)
            if found is None or found.get("branch_identifier") != self._identity:
                gone = VersionNotFoundError(f"branch {self.branch!r} {_DELETED}")
                raise VersionNotFoundError(f"branch {self.branch!r} {_REPLACED}") if found else gone

    @staticmethod
    def take_rows(ds: lance.LanceDataset, row_ids: Sequence[int], columns: Sequence[str]) -> pa.Table:
        """The rows with these Lance row ids (from a scan of the same snapshot), in that order.

        Wraps pylance's ``_take_rows``, documented as unstable (pinned by ``pylance<15``):
        the public ``take`` addresses rows by position, which needs a second pass to map.
        """
        return ds._take_rows(list(row_ids), columns=list(columns))


_DELETED = "no longer exists (it was deleted); open the store on another branch"
_REPLACED = "was deleted and made again since this store opened it; open the store on it again"


class _BaseCleanedUp(OSError):
    """A commit's base version vanished under it; retried as a conflict (see ``commit``)."""
