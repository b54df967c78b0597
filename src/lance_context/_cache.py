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

import dataclasses
import json
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import timezone
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from ._copies import copy_tree
from ._records import METADATA_ON_READ, RELATIONSHIPS_ON_READ, ContextRecord
from ._versions import RecordChanges

if TYPE_CHECKING:
    from ._store import ContextStore

__all__ = [
    "SessionCache",
    "Tail",
    "TailCache",
    "copy_record",
    "derived_values",
    "hand_out",
    "shared_ends",
    "shared_records",
    "shares_records",
]

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


#: A record object, its field dict, ids, role, content type and time (measured: ~400 bytes).
_RECORD_OVERHEAD = 400
#: One relationship object with its target id and relation name.
_RELATIONSHIP_SIZE = 200


def _json_size(value: object) -> int:
    """About how much memory decoded JSON holds: every container, key and value."""
    total, pending = 0, [value]
    while pending:  # JSON values are checked for depth before they are stored: no cycles
        item = pending.pop()
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return total


def record_size(record: ContextRecord) -> int:
    """About how much memory a record holds (metadata included: a chat message keeps its copy there)."""
    size = _RECORD_OVERHEAD + len(record.binary_payload or b"") + _json_size(record.metadata)
    if record.text_payload is not None:
        size += sys.getsizeof(record.text_payload)  # a non-ASCII text takes 2 or 4 bytes a character
    if record.embedding is not None:
        size += int(record.embedding.nbytes)
    if record.state_metadata is not None:
        size += _json_size(record.state_metadata.custom)
    return size + _RELATIONSHIP_SIZE * len(record.relationships or ())


def derived_values(record: ContextRecord) -> dict[str, Any]:
    """Values derived from a stored record (a rebuilt message), kept as long as it is cached.

    The store's caches hand out copies of the records they hold, and every copy of one
    cached record shares this dict: a value derived once serves every later read until a
    commit drops the record from the cache. Key entries by adapter, and keep with each
    value what it was derived from (a copy's owner may have replaced its metadata).
    """
    values: dict[str, Any] | None = record.__dict__.get("_derived")
    if values is None:
        values = record.__dict__["_derived"] = {}
    return values


def copy_record(record: ContextRecord, *, with_vector: bool = True) -> ContextRecord:
    """A copy a caller may change, nested metadata included, without changing the cache.

    The copy shares the original's :func:`derived_values`.
    """
    return _copied(record, _prepared(record), with_vector)


_PREPARED = "_prepared"  # a cached record's attributes as every copy of it starts (see hand_out)


def _prepared(record: ContextRecord) -> dict[str, Any]:
    """The attributes a copy of ``record`` starts from: a dict the caller owns."""
    # A field-by-field copy without __init__: cached tails are copied on every read.
    derived_values(record)
    fields = record.__dict__.copy()
    fields.pop(_PREPARED, None)
    METADATA_ON_READ.defer(fields)  # deep-copied when the caller first reads it
    RELATIONSHIPS_ON_READ.defer(fields)  # likewise
    if "_metadata_json" in fields:
        fields["_metadata_json"] = None  # it describes the original's metadata object only
    fields["embedding"] = None
    return fields


def _copied(record: ContextRecord, fields: dict[str, Any], with_vector: bool) -> ContextRecord:
    """A record made of ``fields`` (from :func:`_prepared`), its mutable values copied from ``record``."""
    state = record.state_metadata
    if state is not None and state.custom:
        fields["state_metadata"] = dataclasses.replace(state, custom=copy_tree(state.custom))
    vector = record.embedding
    if vector is not None and with_vector:
        # a vector is changed in place (normalised, scaled) more often than metadata: never share it
        fields["embedding"] = vector.copy()
    copied: ContextRecord = object.__new__(ContextRecord)
    copied.__dict__ = fields
    return copied


def _copy_cached(record: ContextRecord, with_vector: bool) -> ContextRecord:
    """:func:`copy_record` of a record the cache holds, which nothing changes.

    Its prepared attributes are kept on it, so each later copy is one dict copy.
    """
    fields: dict[str, Any] | None = record.__dict__.get(_PREPARED)
    if fields is None:
        fields = record.__dict__[_PREPARED] = _prepared(record)
    return _copied(record, fields.copy(), with_vector)


def _as_stored(record: ContextRecord, vector: Any) -> ContextRecord:
    """A copy of a record as reading it back from the store gives it."""
    copied = copy_record(record, with_vector=False)
    copied.__dict__["_derived"] = {}  # nothing derived from the caller's record carries over
    copied.search_text = copied.embed_text = None  # what to index and embed: reads do not return them
    copied.embedding = None if vector is None else np.array(vector, dtype=np.float32)
    known = record.known_metadata_json()
    metadata = json.loads(known) if known is not None else json.loads(json.dumps(record.metadata))
    METADATA_ON_READ.settle(copied, metadata)
    RELATIONSHIPS_ON_READ.settle(copied, list(record.relationships or ()))  # the caller's list may change
    copied.created_at = record.created_at.astimezone(timezone.utc)
    if record.state_metadata is not None:
        custom = json.loads(json.dumps(record.state_metadata.custom))
        copied.state_metadata = dataclasses.replace(record.state_metadata, custom=custom)
    return copied


def shared_records(
    store: ContextStore, run_id: str, *, last: int | None = None, limit: int | None = None
) -> list[ContextRecord]:
    """A session's records as ``store.records`` reads them, what its cache holds uncopied.

    The same records as ``store.records(run_id, last=last, limit=limit, with_vectors=False)``,
    for an adapter that only reads records to rebuild its own objects, kept with them by
    :func:`derived_values` (a rebuilt message, handed out as a copy): it skips copying
    each record on every read, and what it derived stays with the cached record. The
    records must not be changed or handed out. Embeddings may be present.

    Example:
        >>> from lance_context import ContextStore
        >>> store = ContextStore.open("./memory.lance")                       # doctest: +SKIP
        >>> [r.text for r in shared_records(store, "chat-1", last=10)]        # doctest: +SKIP
        ['hello', 'hi, how can I help?']
    """
    return store._reader.records(run_id, last=last, limit=limit, with_vectors=False, copies=False)


def shared_ends(
    store: ContextStore, run_id: str, *, first: int, last: int
) -> tuple[list[ContextRecord], list[ContextRecord]]:
    """A session's first ``first`` and newest ``last`` records, as :func:`shared_records` reads them.

    What a chat window reads each turn (a pinned system message and the newest turns):
    served from the store's cache after one check of the store's version instead of two,
    so both lists come from the same version. On a miss, the two reads of
    :func:`shared_records`. The same rules apply: the records must not be changed or
    handed out.

    Example:
        >>> head, newest = shared_ends(store, "chat-1", first=1, last=10)    # doctest: +SKIP
    """
    tails = store._state.tails if store._state.pinned is None else None
    found = None if tails is None else tails.read_ends(run_id, first, last)
    if found is not None:
        return found[0], found[1]
    newest = shared_records(store, run_id, last=last)  # fills the cache with the head too
    return shared_records(store, run_id, limit=first), newest


def shares_records(store: ContextStore, *, whole: int | None = None) -> bool:
    """Whether :func:`shared_records` can return the same record objects on a later read.

    True when the store keeps its sessions' newest records in memory (its tail cache is
    on) and reads its latest version; a pinned view (``at_version``) or a store with the
    cache off reads new objects every time, so nothing kept beside them is found again.

    Args:
        store: The store read.
        whole: For a read of a whole session (no ``last`` or ``limit``) that returned this
            many records: the cache keeps whole sessions of up to 1,024 records only, so a
            longer one is read afresh every time.

    Example:
        >>> shares_records(ContextStore.open("./memory.lance"))               # doctest: +SKIP
        True
    """
    state = store._state
    tails = state.tails
    kept = whole is None or whole <= TailCache.most
    return kept and tails is not None and state.pinned is None and tails.cache.max_entries > 0


def hand_out(records: Sequence[ContextRecord], with_vectors: bool, copies: bool) -> list[ContextRecord]:
    """Cached records handed out: copies, or (``copies=False``) the cached records themselves.

    Cached records are shared by every later read: only code that reads them and hands
    out nothing of them (an adapter rebuilding its messages) asks for them uncopied. A
    read that has just put records in the cache hands them out this way too.
    """
    if copies:
        return [_copy_cached(r, with_vectors) for r in records]
    return list(records)


class Tail:
    """The newest records of a session, oldest first.

    Attributes:
        records: The records.
        complete: Whether they are the whole session.
        vectors: Whether their embeddings were read.
        head: The session's first records, when they were read (a pinned system message).

    The lists change only through the methods below, which keep each record's size, so
    :attr:`nbytes` costs no new measurement after an append to a long tail.
    """

    def __init__(
        self,
        records: list[ContextRecord],
        complete: bool,
        vectors: bool,
        head: list[ContextRecord] | None = None,
    ) -> None:
        """Hold ``records`` (and ``head``), measured once."""
        self.records, self.complete, self.vectors = records, complete, vectors
        self._sizes = [record_size(r) for r in records]
        self.head: list[ContextRecord] = []
        self._head_sizes: list[int] = []
        self.set_head(head or [])

    @property
    def nbytes(self) -> int:
        """About how much memory the tail holds."""
        return sum(self._sizes) + sum(self._head_sizes)

    def set_head(self, head: list[ContextRecord]) -> None:
        """Hold these as the session's first records."""
        self.head, self._head_sizes = head, [record_size(r) for r in head]

    def extend(self, records: list[ContextRecord], most: int) -> None:
        """Add the session's newest records, keeping at most ``most`` records.

        An id appended again replaces its stored copy: a read shows an id once, where its
        newest copy is (ids are unique within one append).
        """
        ids = {r.id for r in records}
        if any(r.id in ids for r in self.records):
            kept = [(r, n) for r, n in zip(self.records, self._sizes, strict=True) if r.id not in ids]
            self.records, self._sizes = [r for r, _ in kept], [n for _, n in kept]
        if any(r.id in ids for r in self.head):
            kept = [(r, n) for r, n in zip(self.head, self._head_sizes, strict=True) if r.id not in ids]
            self.head, self._head_sizes = [r for r, _ in kept], [n for _, n in kept]
        self.records.extend(records)
        self._sizes.extend(record_size(r) for r in records)
        if len(self.records) > most:
            del self.records[: len(self.records) - most]
            del self._sizes[: len(self._sizes) - most]
            self.complete = False


def _newest(tail: Tail | None, last: int, with_vectors: bool) -> list[ContextRecord] | None:
    """The newest ``last`` records ``tail`` holds, or None when it cannot tell."""
    if tail is None or (with_vectors and not tail.vectors):
        return None
    if len(tail.records) < last and not tail.complete:
        return None
    return tail.records[max(0, len(tail.records) - last) :] if last else []


def _first(tail: Tail | None, limit: int, with_vectors: bool) -> list[ContextRecord] | None:
    """The first ``limit`` records ``tail`` holds, or None when it cannot tell."""
    if tail is None or (with_vectors and not tail.vectors):
        return None
    source = tail.records if tail.complete else tail.head
    if len(source) < limit and not tail.complete:
        return None
    return source[:limit]


class TailCache:
    """The newest records of recently read sessions, for ``records(run_id, last=n)``."""

    #: Records kept per session beyond what a read asked for, so a growing chat is served.
    margin = 16

    def __init__(self, cache: SessionCache[str, Tail]) -> None:
        """Keep tails in ``cache``."""
        self.cache = cache

    def read(
        self, run_id: str, last: int, with_vectors: bool, *, copies: bool = True
    ) -> list[ContextRecord] | None:
        """The newest ``last`` records of ``run_id`` if the cache holds them (see :func:`hand_out`)."""
        chosen = _newest(self.cache.get(run_id), last, with_vectors)
        return None if chosen is None else hand_out(chosen, with_vectors, copies)

    def read_all(self, run_id: str, with_vectors: bool, *, copies: bool = True) -> list[ContextRecord] | None:
        """Every record of ``run_id`` if the cache holds the whole session (see :func:`hand_out`)."""
        tail = self.cache.get(run_id)
        if tail is None or not tail.complete or (with_vectors and not tail.vectors):
            return None
        return hand_out(tail.records, with_vectors, copies)

    def read_head(
        self, run_id: str, limit: int, with_vectors: bool, *, copies: bool = True
    ) -> list[ContextRecord] | None:
        """The first ``limit`` records of ``run_id`` if the cache holds them (see :func:`hand_out`)."""
        chosen = _first(self.cache.get(run_id), limit, with_vectors)
        return None if chosen is None else hand_out(chosen, with_vectors, copies)

    def read_ends(self, run_id: str, first: int, last: int) -> tuple[list[ContextRecord], ...] | None:
        """``read_head`` and ``read``, uncopied and without vectors, after one version check."""
        tail = self.cache.get(run_id)
        head, newest = _first(tail, first, False), _newest(tail, last, False)
        return None if head is None or newest is None else (list(head), list(newest))

    def keep_head(
        self, run_id: str, records: list[ContextRecord], vectors: bool, at: tuple[str, int]
    ) -> None:
        """Cache the first records of a session, read at ``at``."""
        if self.cache.sync() != at:
            return
        with self.cache.lock:
            if self.cache.at != at:  # another thread moved the cache on meanwhile
                return
            tail = self.cache.peek(run_id)
            if tail is None:
                tail = Tail([], False, vectors)
                self.cache.put(run_id, tail, at)
            elif vectors != tail.vectors:
                return
            tail.set_head(list(records))
            self.cache.trim([run_id])

    def keep(
        self,
        run_id: str,
        records: list[ContextRecord],
        complete: bool,
        vectors: bool,
        at: Position,
        *,
        head: list[ContextRecord] | None = None,
    ) -> None:
        """Cache what a read at ``at`` returned, with the session's first records when read along.

        The records themselves are kept: the reader hands out copies of them (``hand_out``).
        """
        kept = list(records)
        first = list(head) if head is not None else []
        self.cache.put(run_id, Tail(kept, complete, vectors, first), at)

    #: The most records kept for one session.
    most = 1024

    def appended(
        self, before: Position, version: int, records: list[ContextRecord], vectors: Sequence[Any] | Any
    ) -> None:
        """Account for this store's own append, committed as ``version`` on ``before``.

        The records are kept as a read would return them: metadata through JSON, times in
        UTC, and the vectors that were stored (``vectors``: one per record, None for a
        store without a vector column).
        """
        with self.cache.lock:
            if not self.cache.follow(before, version):
                return
            for run_id in {r.run_id for r in records}:
                tail = self.cache.peek(run_id)
                if tail is None:
                    continue
                stored = [
                    _as_stored(record, None if vectors is None else vectors[index])
                    for index, record in enumerate(records)
                    if record.run_id == run_id
                ]
                tail.extend(stored, self.most)
            self.cache.trim({r.run_id for r in records})

    def changed(self, before: Position, version: int, sessions: Iterable[str] | None) -> None:
        """Account for this store's own upsert or delete: the sessions it touched are forgotten."""
        with self.cache.lock:
            if sessions is None or not self.cache.follow(before, version):
                return
            self.cache.forget(sessions)
