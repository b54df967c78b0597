"""The newest records of recently read sessions, kept for ``records(run_id, last=n)``.

A :class:`TailCache` keeps, per session, its newest records (and its first ones, for a
pinned system message) in a :class:`~lance_context._cache.SessionCache`, so they are
valid while no commit touched the session. Adapters that only rebuild their own objects
from a session's records read them uncopied (:func:`shared_records`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._cache import Position, SessionCache
from ._handouts import as_stored, hand_out, record_size
from ._records import ContextRecord

if TYPE_CHECKING:
    from ._store import ContextStore

__all__ = ["Tail", "TailCache", "shared_ends", "shared_records", "shares_records"]


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
                    as_stored(record, None if vectors is None else vectors[index])
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
