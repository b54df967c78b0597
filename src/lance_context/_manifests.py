"""Finding a local store's versions without listing them.

Lance finds the latest version of a dataset by listing its ``_versions`` folder: on a
store grown one message at a time (10,000 versions kept) that listing alone takes
about 4 ms, more than the rest of a cold read. A local store's manifests can instead be
looked up by name, starting from the version Lance records in
``_versions/latest_version_hint.json`` after each commit and probing forward (the hint
may lag behind a commit in flight; versions are consecutive, except where cleanup
removed some after a version it kept: see ``LocalManifests.past_gap``). Whatever cannot be
confirmed this way (another layout, an object store, a missing hint) is left to Lance.
"""

from __future__ import annotations

import json
import os
import time

__all__ = ["MAIN_BRANCH", "LocalManifests", "latest_local_version"]

#: The branch every store starts on (its manifests sit at the top of ``_versions``).
MAIN_BRANCH = "main"

#: The file in which Lance records the latest version it committed.
_HINT = "latest_version_hint.json"


class LocalManifests:
    """Where a local store keeps its version manifests, when that could be confirmed.

    Lance names manifests ``_versions/{version}.manifest`` or, in its newer layout,
    ``_versions/{2**64 - 1 - version}.manifest``; a branch keeps its own under
    ``tree/{branch}/``. The layout is recognised by finding the manifest of a version
    known to exist; if neither name is there (another layout, or an object store),
    nothing is assumed and Lance is asked instead.
    """

    _NAMINGS = ("{inverted:020d}.manifest", "{version}.manifest")

    def __init__(self, folder: str | None, naming: str | None) -> None:
        self.folder = folder
        self.naming = naming
        self._paths: dict[int, str] = {}  # recent versions' manifest paths (probed on every read)
        self._stamp: int | None = None  # the folder's modification time when last looked past a gap
        self._hint: tuple[tuple[int, int, int, int], int] | None = None  # hint file's stat, version

    @property
    def known(self) -> bool:
        """Whether manifests can be looked up directly."""
        return self.folder is not None and self.naming is not None

    @staticmethod
    def folder_of(uri: str, branch: str) -> str | None:
        """The manifests folder of a local store's ``branch``; None on an object store."""
        if "://" in uri and not uri.startswith("file://"):
            return None
        root = uri.removeprefix("file://")
        if branch != MAIN_BRANCH:
            root = os.path.join(root, "tree", *branch.split("/"))
        return os.path.join(root, "_versions")

    @classmethod
    def find(cls, uri: str, branch: str, version: int) -> LocalManifests:
        """Recognise the layout of ``uri``'s ``branch`` from existing ``version``."""
        folder = cls.folder_of(uri, branch)
        if folder is None:
            return cls(None, None)
        for naming in cls._NAMINGS:
            found = cls(folder, naming)
            if found.exists(version):
                return found
        return cls(None, None)

    def exists(self, version: int) -> bool:
        """Whether the manifest of ``version`` exists."""
        path = self._paths.get(version)
        if path is None:
            assert self.folder is not None and self.naming is not None
            name = self.naming.format(version=version, inverted=2**64 - 1 - version)
            path = os.path.join(self.folder, name)
            if len(self._paths) >= 8:
                self._paths.clear()
            self._paths[version] = path
        return os.path.exists(path)

    def newest_from(self, version: int) -> int:
        """The last of the consecutive versions from ``version`` whose manifests exist."""
        while self.exists(version + 1):
            version += 1
        return version

    def past_gap(self, version: int) -> int | None:
        """A version after ``version`` past a gap in the numbers, or None when there is none.

        Versions are consecutive as commits make them, but cleanup may keep a tagged
        version and remove the ones after it, so a handle on that version finds no
        successor although newer versions exist. The folder's modification time (one
        ``stat``) says whether anything was committed or removed since the last look;
        only then is Lance's hint read. A time within the last second is read as a
        change, since some file systems keep modification times in coarse ticks.
        """
        assert self.folder is not None
        try:
            stamp = os.stat(self.folder).st_mtime_ns
        except OSError:
            return None
        if stamp == self._stamp and time.time_ns() - stamp > 1_000_000_000:
            return None
        self._stamp = stamp
        latest = self._hinted()
        if latest is None or latest <= version:  # nothing recorded past ``version``
            return None
        if not self.exists(latest):  # cleaned up: a newer commit's hint is on its way
            return None
        return self.newest_from(latest)

    def note_commit(self) -> None:
        """Read the hint this process's commit just replaced, as part of the write.

        The next probe then only stats it. This moves the read (~50-70 µs) from the read
        after a write to the write itself: where the write runs in the background
        (LangGraph's checkpoint puts), the read the caller waits for gets shorter.
        """
        self._hinted()

    def _hinted(self) -> int | None:
        """The version recorded in Lance's hint; the file is read again only once replaced.

        Lance replaces the hint by a rename on each commit, so a new hint is a new file:
        its inode, times or size differ from the last one read. Right after a write the
        folder's time alone cannot tell (see ``past_gap``), and reading the hint was most
        of an agent loop's version check. A time with no fraction of a second (a file
        system with coarse ticks) is never trusted to be unchanged.
        """
        assert self.folder is not None
        try:
            info = os.stat(os.path.join(self.folder, _HINT))
        except OSError:
            return None
        key = (info.st_ino, info.st_mtime_ns, info.st_ctime_ns, info.st_size)
        if self._hint is not None and self._hint[0] == key and info.st_mtime_ns % 1_000_000_000:
            return self._hint[1]
        version = _read_hint(self.folder)
        self._hint = None if version is None else (key, version)
        return version


def _read_hint(folder: str) -> int | None:
    """The version recorded in ``folder``'s hint; None when it is missing or unreadable."""
    try:
        handle = os.open(os.path.join(folder, _HINT), os.O_RDONLY)
        try:
            data = os.read(handle, 65536)
        finally:
            os.close(handle)
        return int(json.loads(data)["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def latest_local_version(uri: str, branch: str) -> int | None:
    """The latest version of the local store at ``uri``, found without a listing.

    None when it cannot be confirmed: an object store, no hint, or a hinted manifest
    that is gone (removed by cleanup); the caller then asks Lance.

    Example:
        >>> latest_local_version("s3://bucket/store.lance", "main") is None
        True
    """
    folder = LocalManifests.folder_of(uri, branch)
    version = None if folder is None else _read_hint(folder)
    if version is None:
        return None
    manifests = LocalManifests.find(uri, branch, version)
    return manifests.newest_from(version) if manifests.known else None
