"""What a store's collaborators share: the dataset handle, the version read, settings.

``ContextStore`` is a facade over collaborators that each own one concern (writing,
reading, search, versions, maintenance, re-embedding). They share one
:class:`StoreState` and nothing else: no collaborator reaches into another.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import lance

from ._dataset import DatasetHandle
from ._embedding import Embedding
from ._encryption import Cipher
from ._errors import ReadOnlyError, ReadOnlyVersionError
from ._policies import CompactionPolicy, IndexPolicy, StoreLimits
from ._retention import RetentionPolicy
from ._tailcache import TailCache

__all__ = ["Settings", "StoreState"]


@dataclass(frozen=True)
class Settings:
    """The policies a store was opened with."""

    compaction: CompactionPolicy
    indexing: IndexPolicy
    limits: StoreLimits
    retention: RetentionPolicy | None = None


@dataclass
class StoreState:
    """One store's shared state.

    Attributes:
        handle: The dataset, on one branch.
        embedding: How records and queries are embedded (shared by views of the store).
        settings: Compaction, index and record policies.
        read_only: Refuse every write.
        pinned: The version read (None: the latest).
        cipher: Seals and opens records of an encrypted store (None: a plain store).
    """

    handle: DatasetHandle
    embedding: Embedding
    settings: Settings
    read_only: bool = False
    pinned: int | None = None
    tails: TailCache | None = None
    cipher: Cipher | None = None

    @property
    def position(self) -> tuple[str, int]:
        """The branch and latest version (one probe for a newer version)."""
        return (self.handle.branch, int(self.handle.latest().version))

    def snapshot(self, version: int | None = None) -> lance.LanceDataset:
        """The dataset at ``version``, else at the pinned version, else the latest."""
        target = version if version is not None else self.pinned
        return self.handle.latest() if target is None else self.handle.at(target)

    def check_writable(self) -> None:
        """Raise unless this store may write now."""
        if self.pinned is not None and self.read_only:  # at_version(): checkout_latest() would not help
            raise ReadOnlyVersionError(
                f"this is a read-only view of version {self.pinned} (at_version()); write through the "
                f"store it came from: restore({self.pinned}) there makes this state the latest, "
                f"branch('name', from_version={self.pinned}) continues from it on a branch."
            )
        if self.pinned is not None:
            raise ReadOnlyVersionError(
                f"version {self.pinned} is checked out, so the store is read-only. "
                "Call checkout_latest() to write on top of the latest version, "
                f"restore({self.pinned}) to make this state the latest, or "
                f"branch('name', from_version={self.pinned}) to continue from it on a branch."
            )
        if self.read_only:
            raise ReadOnlyError("this store was opened read_only=True; open it writable to write")

    def view(
        self, *, handle: DatasetHandle | None = None, pinned: int | None = None, read_only: bool | None = None
    ) -> StoreState:
        """Another state with this one's settings and a copy of its embedding.

        A copy: ``reembed()`` through the other (a branch) switches that one's model, not this one's.
        """
        return replace(
            self,
            embedding=copy.copy(self.embedding),
            handle=handle or self.handle,
            pinned=pinned,
            read_only=self.read_only if read_only is None else read_only,
            tails=None,  # a view gets its own (the store facade makes it)
        )
