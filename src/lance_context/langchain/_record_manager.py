"""LanceRecordManager: the record manager of LangChain's indexing API, on a shared context store.

``langchain_core.indexing.index()`` hashes each document, asks the record manager which
hashes it has seen, writes only the new ones to the vector store, and deletes what a
cleanup (``incremental``, ``full``, ``scoped_full``) finds older than the run's start.

Layout: the record manager of namespace ``ns`` keeps each key as one record of the
session ``langchain.records:<ns>``, id ``langchain.records:<escaped ns>:<key>``, role
``record``, metadata ``{"group_id": <source id or null>}``, and ``created_at`` the time
of the key's last update (an update rewrites the record in its place). One more record,
the clock mark (id ``langchain.records:<escaped ns>``, role ``clock``, never a key's id), holds
the latest time stamped in the namespace. Every ``update`` and every ``delete_keys``
that matches is one commit; ``update`` writes its keys and the mark together.

The clock. ``index()`` deletes the keys stamped *before* the time ``get_time()`` gave
at the start of the run, so a key written during the run must never be stamped
earlier (that is the data loss ``RecordManager`` warns about), and a run must see as
older everything earlier runs stamped. SQL record managers use the database server's
clock; a Lance store has no server, so time here is a hybrid logical clock kept
consistent with the store: ``get_time()`` is the wall clock in microseconds, but never
less than one microsecond past the last time handed out in this process (it never
goes backwards, even when the system clock is stepped back) nor past the mark stored
in the namespace (so a writer whose clock lags another's still stamps later than
everything already recorded). ``update`` stamps with the same clock and refuses a
``time_at_least`` later than it, as SQL record managers refuse a server time earlier
than it. As with every record manager, run one ``index()`` per namespace at a time.

Updates of one namespace made at once in a process (threads, gathered ``aupdate``
calls, several record managers on one location) take the namespace's lock from
stamping to commit, so they commit in the order of their stamps and the mark, which
each of them rewrites, ends on the latest stamp; otherwise a slower update could put
an earlier mark back, and another process whose clock lags would then hand out a
``get_time()`` earlier than keys already stamped (a full cleanup would miss them).

Why :class:`LanceVectorStore` does not also implement ``DocumentIndex``: the two
interfaces disagree where users notice. ``VectorStore.delete(None)`` empties our
collection and returns ``True``, while ``DocumentIndex.delete()`` must raise and
returns a ``DeleteResponse``; ``DocumentIndex`` is a pydantic ``BaseRetriever`` (the
vector store's retriever is ``as_retriever()``) and is still marked beta, with
langchain-tests advising against implementing it. ``index()`` accepts a
``VectorStore`` as it is, so the record manager is what the indexing API needs.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from langchain_core.indexing import RecordManager

from lance_context import (
    DEFAULT_EMBEDDER,
    ContextRecord,
    ContextStore,
    InvalidFilterError,
    InvalidRecordError,
)
from lance_context.adapters import (
    LANGCHAIN_RECORD_MANAGER,
    async_twin,
    check_unicode,
    open_store,
    session_lock,
)

from ._keyspace import KeySpace

__all__ = ["LanceRecordManager"]

_KEY_ROLE = "record"
_CLOCK_ROLE = "clock"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)

_clock_lock = threading.Lock()
_last_us = 0


def _tick(at_least_us: int) -> int:
    """Microseconds since the epoch: strictly increasing in this process, at least ``at_least_us``."""
    global _last_us
    with _clock_lock:
        _last_us = max(time.time_ns() // 1000, _last_us + 1, at_least_us)
        return _last_us


def _datetime(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _microseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


#: Timestamps are seconds since the epoch, up to the end of year 9999 (what datetime holds).
_LATEST_SECONDS = 253_402_300_799


def _seconds(value: object, name: str, error: type[ValueError]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise error(f"{name} must be a finite timestamp in seconds, got {value!r}")
    if not 0 <= value <= _LATEST_SECONDS:
        raise error(f"{name} must be seconds since 1970 (up to year 9999), got {value!r}")
    return float(value)


def _grid(seconds: float) -> tuple[int, bool]:
    """``seconds`` in whole microseconds (floor), and whether it was exactly on the grid.

    Times from :meth:`LanceRecordManager.get_time` are whole microseconds divided by a
    million; multiplying back can land a hair off the integer, which is not a real
    fraction of a microsecond.
    """
    scaled = seconds * 1_000_000
    nearest = round(scaled)
    if abs(scaled - nearest) < 1e-3:
        return nearest, True
    return math.floor(scaled), False


class LanceRecordManager(RecordManager):
    """A LangChain ``RecordManager`` for ``index()`` / ``aindex()``, on a lance-context store.

    Re-indexing a changed corpus writes only new or changed documents to the vector
    store and, with ``cleanup="incremental"`` or ``"full"``, deletes the ones that went
    away. Keys, groups and times live in the same store as the vectors (see the module
    notes for the layout and the clock).

    Args:
        namespace: The record manager's namespace (any non-empty string, such as
            ``"lance/docs"``); namespaces share nothing.
        store: A shared :class:`~lance_context.ContextStore`.
        uri: Where to open a store, when ``store`` is not given.
        storage_options: Object-store settings for ``uri``.
        embedder: The embedder of a store opened at ``uri`` (records here are not embedded).

    Example:
        >>> from langchain_core.indexing import index
        >>> records = LanceRecordManager("lance/docs", store=store)             # doctest: +SKIP
        >>> index(docs, records, LanceVectorStore(store=store, collection="docs"),
        ...       cleanup="incremental", source_id_key="source", key_encoder="sha256")  # doctest: +SKIP
        {'num_added': 2, 'num_updated': 0, 'num_skipped': 0, 'num_deleted': 0}
    """

    def __init__(
        self,
        namespace: str,
        *,
        store: ContextStore | None = None,
        uri: str | None = None,
        storage_options: Mapping[str, str] | None = None,
        embedder: Any = DEFAULT_EMBEDDER,
    ) -> None:
        """Open (or share) a store and bind the record manager ``namespace`` of it."""
        if not isinstance(namespace, str) or not namespace:
            raise ValueError(f"namespace must be a non-empty str, got {namespace!r}")
        check_unicode(namespace, "namespace")  # refused now, not at every later call
        super().__init__(namespace)
        self.space = KeySpace(LANGCHAIN_RECORD_MANAGER, namespace)
        self.store = open_store(
            store, uri, who="LanceRecordManager", storage_options=storage_options, embedder=embedder
        )
        self._mark_id = self.space.id_prefix[:-1]  # the escaped namespace holds no ':': never a key id

    def __repr__(self) -> str:
        return f"LanceRecordManager({self.namespace!r}, store={self.store!r})"

    # ------------------------------------------------------------------ clock
    def _mark(self) -> int:
        """The latest time stamped in this namespace (0 when none)."""
        record = self.store.get(self._mark_id)
        return 0 if record is None else _microseconds(record.created_at)

    def create_schema(self) -> None:
        """Nothing to create: the store's schema exists from the moment it is opened."""

    def get_time(self) -> float:
        """The current time in seconds, from the store-consistent clock (see the module notes)."""
        return _tick(self._mark() + 1) / 1_000_000

    # ------------------------------------------------------------------ writes
    def update(
        self,
        keys: Sequence[str],
        *,
        group_ids: Sequence[str | None] | None = None,
        time_at_least: float | None = None,
    ) -> None:
        """Record ``keys`` (with their groups) as updated now, in one commit.

        An empty ``group_ids`` means no groups, as ``InMemoryRecordManager`` reads it.

        Raises:
            InvalidRecordError: A non-empty ``group_ids`` has another length than ``keys``,
                or a group id is not a str or None or not valid unicode (nothing written).
            ValueError: ``time_at_least`` is later than the clock (nothing written).
            TypeError: A key is not a str (nothing written).
        """
        ids = self.space.record_ids(keys)
        if isinstance(group_ids, (str, bytes)):
            raise InvalidRecordError(f"group_ids must be a list of str or None, got the string {group_ids!r}")
        groups = list(group_ids or ()) or [None] * len(ids)  # [] is no groups, as in the reference
        if len(groups) != len(ids):
            raise InvalidRecordError(f"got {len(groups)} group_ids for {len(ids)} keys")
        for group in groups:
            if group is not None and not isinstance(group, str):
                raise InvalidRecordError(f"group ids must be str or None, got {group!r}")
            if group is not None:
                check_unicode(group, "group id")
        needed = 0
        if time_at_least is not None:
            us, exact = _grid(_seconds(time_at_least, "time_at_least", InvalidRecordError))
            needed = us if exact else us + 1
        if not ids:
            return
        latest = dict(zip(ids, groups))  # a key given twice keeps its last group
        with session_lock(self.store, self.space.run_id):  # commits in stamp order: the mark only grows
            stamp = _tick(self._mark() + 1)
            if needed > stamp:
                raise ValueError(
                    f"time_at_least ({time_at_least}) is later than the record manager's clock "
                    f"({stamp / 1_000_000}); pass a time from this record manager's get_time()"
                )
            moment = _datetime(stamp)
            records = [self._record(i, _KEY_ROLE, moment, {"group_id": g}) for i, g in latest.items()]
            records.append(self._record(self._mark_id, _CLOCK_ROLE, moment, {}))
            self.store.upsert(records, keep_order=True)  # an updated key keeps its place, as in a dict

    def _record(self, record_id: str, role: str, moment: datetime, metadata: dict[str, Any]) -> ContextRecord:
        return ContextRecord(
            id=record_id, run_id=self.space.run_id, role=role, created_at=moment, metadata=metadata
        )

    def delete_keys(self, keys: Sequence[str]) -> None:
        """Forget ``keys`` in one commit; unknown keys are ignored."""
        ids = self.space.record_ids(keys)
        if ids:
            self.store.delete(ids, run_id=self.space.run_id)

    # ------------------------------------------------------------------ reads
    def exists(self, keys: Sequence[str]) -> list[bool]:
        """Whether each key is recorded, in order."""
        ids = self.space.record_ids(keys)
        found = {r.id for r in self.store.get_many(ids) if self.space.owns(r)}
        return [i in found for i in ids]

    def list_keys(
        self,
        *,
        before: float | None = None,
        after: float | None = None,
        group_ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[str]:
        """Keys updated strictly before ``before`` and after ``after``, of ``group_ids``.

        An empty or absent ``group_ids`` does not filter by group, a ``limit`` of 0 or
        None does not limit, and a ``before`` or ``after`` of 0 does not bound the time
        (as LangChain's own record managers read them). Keys come in the order they were
        first recorded (an update keeps a key's place, as ``InMemoryRecordManager`` and
        ``SQLRecordManager`` list them). On an encrypted store that seals the
        ``group_id`` values (not listed in ``EncryptionPolicy(clear_metadata=...)``), the
        keys of the time range are read and filtered by group here, after opening.

        Raises:
            InvalidFilterError: A bad ``limit``, time or group id (a ``ValueError``).
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidFilterError(f"limit must be a non-negative integer or None, got {limit!r}")
        if isinstance(group_ids, str):
            raise InvalidFilterError(f"group_ids must be a list of str, got the string {group_ids!r}")
        groups = list(group_ids or ())
        if not all(isinstance(group, str) for group in groups):
            raise InvalidFilterError(f"group_ids must be a list of str, got {group_ids!r}")
        for group in groups:  # refused here, so the store's filter refuses only a sealed key
            try:
                check_unicode(group, "group id")
            except InvalidRecordError as exc:
                raise InvalidFilterError(str(exc)) from None
        until = since = None
        if before is not None:
            us, exact = _grid(_seconds(before, "before", InvalidFilterError))
            if before:  # 0 is no bound, as the reference reads it (``if before and ...``)
                until = _datetime(us if exact else us + 1)  # exclusive: stamps < before
        if after is not None:  # 0 bounds nothing either: every stamp is later
            since = _datetime(
                _grid(_seconds(after, "after", InvalidFilterError))[0] + 1
            )  # inclusive: stamps > after
        return [self.space.key(r) for r in self._keys(since, until, groups, limit or None)]

    def _keys(
        self, since: datetime | None, until: datetime | None, groups: list[str], limit: int | None
    ) -> list[ContextRecord]:
        """The key records of the time range and groups, filtered by the store when it can."""
        run_id = self.space.run_id
        if not groups:
            return self.store.records(run_id, roles=_KEY_ROLE, since=since, until=until, limit=limit)
        try:
            return self.store.records(
                run_id, roles=_KEY_ROLE, since=since, until=until,
                where={"metadata.group_id": {"$in": groups}}, limit=limit,
            )  # fmt: skip
        except InvalidFilterError:  # an encrypted store sealing group_id cannot compare it
            wanted = set(groups)
            found = self.store.records(run_id, roles=_KEY_ROLE, since=since, until=until)
            return [r for r in found if r.metadata.get("group_id") in wanted][:limit]

    # ------------------------------------------------------------------ async
    aget_time = async_twin(get_time)
    aupdate = async_twin(update)
    adelete_keys = async_twin(delete_keys)
    aexists = async_twin(exists)
    alist_keys = async_twin(list_keys)

    async def acreate_schema(self) -> None:
        """Async :meth:`create_schema`."""
