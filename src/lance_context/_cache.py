"""Version-checked, bounded caches of what a store knows about its sessions.

Agents read the same few sessions over and over (the tail of a chat, a thread's latest
checkpoint) while other sessions change. A :class:`SessionCache` keeps values about
sessions valid at one (branch, version) of the store and, before every lookup, catches
up with the commits made since — by anyone, in any process:

- maintenance commits (compaction, indexes) change no record, so nothing is dropped;
- a commit made by lance-context names the sessions it touched (transaction
  properties), so only their entries are dropped;
- any other commit (another program's, a restore, a long run of versions) empties it.

A store's own writes move the cache forward without a read when they directly follow
the version it is at (:meth:`SessionCache.follow`). Entries are bounded by count and by
an estimate of their bytes, least recently used first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

from ._handouts import record_size
from ._records import ContextRecord
from ._versions import RecordChanges

__all__ = ["Position", "SessionCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Position = tuple[str, int]


class SessionCache(Generic[K, V]):
    """Values keyed by ``session(key)``, valid while no commit touched that session.

    Args:
        position: The store's (branch, latest version), checked before every lookup.
        changes: What the commits between two versions touched (None: not known).
        session: The session a key belongs to.
        size: About how many bytes a value holds.
        max_entries: At most this many entries (0 turns the cache off).
        max_bytes: At most about this many bytes of values.
    """

    def __init__(
        self,
        position: Callable[[], Position],
        changes: Callable[[int, int], RecordChanges | None],
        session: Callable[[K], str],
        size: Callable[[V], int],
        *,
        max_entries: int,
        max_bytes: int,
    ) -> None:
        self._position, self._changes, self._session, self._size = position, changes, session, size
        self.max_entries, self.max_bytes = max(0, max_entries), max(0, max_bytes)
        self._at: Position | None = None
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._sizes: dict[K, int] = {}  # each entry's size when last measured
        self._total = 0
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> list[V]:
        """The cached values, least recently used first."""
        with self.lock:
            return list(self._entries.values())

    @property
    def at(self) -> Position | None:
        """The (branch, version) the entries are valid at; None before the first lookup."""
        return self._at

    def sync(self) -> Position:
        """Catch up with the commits made since the cached version; return the store's position.

        The store is asked for its position outside the lock, so a stalled request (a slow
        object store) never holds up another thread's lookup.
        """
        now = self._position()
        with self.lock:
            at = self._at
            if at is not None and at[0] == now[0] and now[1] < at[1]:
                return at  # another thread caught up with a later version meanwhile
            if now != at and self._entries:
                touched = None
                if at is not None and at[0] == now[0]:
                    touched = self._changes(at[1], now[1])
                if touched is None:
                    self._entries.clear()
                    self._sizes.clear()
                    self._total = 0
                else:
                    self.forget(touched.sessions)
            self._at = now
            return now

    def forget(self, sessions: Iterable[str]) -> None:
        """Drop every entry of these sessions."""
        gone = set(sessions)
        with self.lock:
            for key in [k for k in self._entries if self._session(k) in gone]:
                self._drop(key)

    def get(self, key: K) -> V | None:
        """The value of ``key`` at the store's latest version, if cached."""
        self.sync()
        with self.lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: K, value: V, at: Position) -> None:
        """Cache ``value``, read at ``at``; ignored if the cache has moved on since."""
        with self.lock:
            if not self.max_entries or at != self._at:
                return
            self._entries[key] = value
            self._entries.move_to_end(key)
            self.trim([key])

    def follow(self, before: Position, version: int) -> bool:
        """Move to ``version`` after this process's own commit made on ``before``.

        True when nothing else committed in between (the cache stays valid and the
        caller updates the entries its commit changed); False otherwise (the next
        lookup catches up).
        """
        with self.lock:
            if self._at != before or version != before[1] + 1:
                return False
            self._at = (before[0], version)
            return True

    def discard(self, key: K) -> None:
        """Drop one entry."""
        with self.lock:
            if key in self._entries:
                self._drop(key)

    def peek(self, key: K) -> V | None:
        """The cached value without catching up (for a writer that just followed its commit)."""
        with self.lock:
            return self._entries.get(key)

    def trim(self, changed: Iterable[K] = ()) -> None:
        """Evict the least recently used entries past the count and byte bounds.

        Args:
            changed: Keys whose values were put or changed in place since they were last
                measured (only these are measured again, so a trim costs no more than they do).
        """
        with self.lock:
            for key in changed:
                value = self._entries.get(key)
                if value is not None:
                    size = self._size(value)
                    self._total += size - self._sizes.get(key, 0)
                    self._sizes[key] = size
            while len(self._entries) > self.max_entries or (self._entries and self._total > self.max_bytes):
                self._drop(next(iter(self._entries)))

    def _drop(self, key: K) -> None:
        del self._entries[key]
        self._total -= self._sizes.pop(key, 0)

    @staticmethod
    def record_size(record: ContextRecord) -> int:
        """About how much memory a record holds, for a cache's ``size`` callback.

        Counts the payloads, the vector, and the decoded metadata and state (Python
        objects take several times the bytes of their JSON text).
        """
        return record_size(record)
