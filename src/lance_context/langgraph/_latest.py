"""Each thread's latest checkpoint in memory, checked against the store version.

LangGraph reads a thread's latest checkpoint at the start of every run (and the UI at
every ``get_state``). This cache answers those reads from memory while the store has
not changed, so a process serving a thread reads it from Lance once. It is exact, not
time-based:

- it is valid at one (branch, version) of the store, and every lookup first checks
  the store's latest version (a file-existence check on a local store);
- commits added since are inspected: compaction, indexing and other maintenance leave
  every record as it was, and lance-context's appends, upserts and deletes by id name
  the sessions they touched, so only those threads are forgotten; any other commit (a
  restore, a forget, another program's) empties the cache;
- this saver's own writes update it when their commit directly follows the cached
  version, so an agent's own checkpoints never send it back to Lance.

A thread's first read is a two-step read (``ContextStore.outline``): an outline
of the thread's rows picks the latest checkpoint, its pending writes, and writes
already stored for checkpoints not stored yet (LangGraph may save a step's writes
before its checkpoint); then only those rows are fetched. The latest checkpoint is the
last in ``checkpoint_order``; a checkpoint this saver writes in a commit that directly
follows the cached version is in a newer write group than every stored row, so it is
the latest.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

from lance_context import ContextRecord, ContextStore
from lance_context.adapters import SessionCache

from ._checkpoint_records import CHECKPOINT_ROLE, WRITE_ROLE
from ._listing import checkpoint_order, thread_rows

__all__ = ["Latest", "LatestCheckpoints"]

#: (store session of the thread, checkpoint namespace)
Key = tuple[str, str]

#: Memory of one checkpoint id held in ``Latest.stored`` (a 36-character string and its set slot).
_STORED_ID_SIZE = 120


@dataclass
class Latest:
    """What the cache knows of one thread and namespace."""

    #: The latest checkpoint (None: the thread has none in this namespace).
    checkpoint: ContextRecord | None
    #: Pending writes of ``checkpoint``, by record id.
    writes: dict[str, ContextRecord] = field(default_factory=dict)
    #: Ids of every checkpoint stored for the key.
    stored: set[str] = field(default_factory=set)
    #: Writes of checkpoints not stored (yet), by checkpoint id then record id.
    orphans: dict[str, dict[str, ContextRecord]] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """About how much memory the entry holds: its records (metadata included) and stored ids."""
        records = [
            self.checkpoint,
            *self.writes.values(),
            *(w for ws in self.orphans.values() for w in ws.values()),
        ]
        held = sum(SessionCache.record_size(r) for r in records if r is not None)
        # a long thread stores thousands of checkpoint ids: counted without visiting each
        return held + sys.getsizeof(self.stored) + _STORED_ID_SIZE * len(self.stored)

    @property
    def checkpoint_id(self) -> str | None:
        """The id of the latest checkpoint, if any."""
        return None if self.checkpoint is None else str(self.checkpoint.metadata["checkpoint_id"])


class LatestCheckpoints:
    """The latest checkpoint (and its writes) of recently used threads.

    Kept in the core's version-checked :class:`~lance_context.adapters.SessionCache`: at
    most ``capacity`` threads and about ``max_bytes`` of payloads, the least recently used
    going first; a thread larger than ``max_bytes`` alone is not kept.
    """

    def __init__(self, store: ContextStore, capacity: int, max_bytes: int = 64 * 2**20) -> None:
        self._store = store
        self._cache: SessionCache[Key, Latest] = SessionCache(
            lambda: (store.branch_name, store.version()),
            store.changes_between,
            lambda key: key[0],
            lambda entry: entry.nbytes,
            max_entries=capacity,
            max_bytes=max_bytes,
        )

    def __len__(self) -> int:
        return len(self._cache)

    def sync(self) -> tuple[str, int]:
        """Bring the cache to the store's current version; return that (branch, version)."""
        return self._cache.sync()

    def get(self, key: Key) -> Latest | None:
        """What is cached for ``key`` at the current version, if anything."""
        return self._cache.get(key)

    def load(self, key: Key) -> Latest:
        """Read ``key`` from the store (two-step read) and cache it."""
        at = self._cache.sync()  # the read runs outside the lock: other threads' lookups go on
        found = _read(self._store, key)
        self._cache.put(key, found, at)  # ignored when the cache moved on meanwhile
        return found

    def entries(self) -> list[Latest]:
        """Every cached entry (least recently used first)."""
        return self._cache.values()

    def wrote_checkpoint(
        self, before: tuple[str, int], version: int, key: Key, record: ContextRecord
    ) -> None:
        """Account for this saver's write of ``record`` (committed as ``version``)."""
        with self._cache.lock:
            entry = self._follow(before, version, key)
            if entry is None:
                return
            checkpoint_id = str(record.metadata["checkpoint_id"])
            if checkpoint_id == entry.checkpoint_id:
                entry.checkpoint = record
            elif checkpoint_id in entry.stored:
                # an older checkpoint written again keeps its place; read the thread again to be sure
                self._cache.discard(key)
            else:
                entry.checkpoint = record
                entry.writes = entry.orphans.pop(checkpoint_id, {})
                entry.stored.add(checkpoint_id)
            self._cache.trim([key])

    def wrote_writes(
        self,
        before: tuple[str, int],
        version: int,
        key: Key,
        checkpoint_id: str,
        records: Iterable[ContextRecord],
    ) -> None:
        """Account for this saver's write of pending writes of ``checkpoint_id``."""
        with self._cache.lock:
            entry = self._follow(before, version, key)
            if entry is None:
                return
            if checkpoint_id == entry.checkpoint_id:
                target = entry.writes
            elif checkpoint_id not in entry.stored:
                target = entry.orphans.setdefault(checkpoint_id, {})
            else:
                return  # writes of an older checkpoint: not part of the latest one
            for record in records:
                target.pop(record.id, None)
                target[record.id] = record
            self._cache.trim([key])

    def writes_of(self, key: Key, checkpoint_id: str) -> dict[str, ContextRecord] | None:
        """The stored writes of ``checkpoint_id`` when the cache knows them all, else None."""
        entry = self.get(key)
        if entry is None:
            return None
        if checkpoint_id == entry.checkpoint_id:
            return dict(entry.writes)
        if checkpoint_id not in entry.stored:
            return dict(entry.orphans.get(checkpoint_id, {}))
        return None

    def knows_stored(self, key: Key, checkpoint_id: str) -> bool | None:
        """Whether ``checkpoint_id`` is stored for ``key``, when the cache knows; else None."""
        entry = self.get(key)
        return None if entry is None else checkpoint_id in entry.stored

    def _follow(self, before: tuple[str, int], version: int, key: Key) -> Latest | None:
        """The entry to update for a commit made at ``version`` after ``before``, if any.

        Only a commit that directly follows the cached version is applied: then nothing
        else changed in between. Otherwise the next lookup catches up with the others.
        """
        return self._cache.peek(key) if self._cache.follow(before, version) else None


def _read(store: ContextStore, key: Key) -> Latest:
    """The latest checkpoint of ``key``, its writes and the orphan writes, in two steps."""
    view, rows = thread_rows(store, *key)
    checkpoints = [r for r in rows if r["role"] == CHECKPOINT_ROLE]
    stored = {str(r["checkpoint_id"]) for r in checkpoints}
    latest = max(checkpoints, key=checkpoint_order, default=None)
    latest_id = None if latest is None else latest["checkpoint_id"]
    writes = [
        r
        for r in rows
        if r["role"] == WRITE_ROLE and (r["checkpoint_id"] == latest_id or r["checkpoint_id"] not in stored)
    ]
    wanted = ([] if latest is None else [latest]) + writes
    fetched = view.fetch([r["_rowid"] for r in wanted])
    entry = Latest(checkpoint=None, stored=stored)
    for row, record in zip(wanted, fetched, strict=True):
        checkpoint_id = str(row["checkpoint_id"])
        if row is latest:
            entry.checkpoint = record
        elif checkpoint_id == latest_id:
            entry.writes[record.id] = record
        else:
            entry.orphans.setdefault(checkpoint_id, {})[record.id] = record
    return entry
