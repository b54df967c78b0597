"""Chat stores on a context store: ``BaseChatStore`` and the newer ``AsyncDBChatStore``.

Keys are session ids. Each key is the store session ``"llama_index.chat:<namespace>:<key>"``
(the adapter's namespace, split further by the optional ``namespace`` option, escaped),
so the keys of a chat store are exactly the sessions of its namespace that hold a
message, and never another adapter's or another namespace's.

A write to a key, with any read it depends on, holds the key's lock (one per location,
branch and session, shared by every chat store of the process; async work runs in threads).
"""

from __future__ import annotations

import asyncio
import operator
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.storage.chat_store.base import BaseChatStore
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus

from lance_context import DEFAULT_EMBEDDER, ContextRecord, ContextStore, InvalidFilterError
from lance_context.adapters import LLAMA_INDEX_CHAT, monotonic_times, session_lock, shared_records

from ._bound import StoreBound
from ._common import check_key, resolve_store
from ._messages import (
    CHAT_ROLES,
    has_chat_role,
    message_list,
    message_to_record,
    read_message,
    record_to_message,
)

__all__ = ["DEFAULT_CHAT_NAMESPACE", "LanceAsyncChatStore", "LanceChatStore"]

#: Default scope of chat-store keys inside the adapter's namespace (both chat stores
#: share it, so they read each other's keys).
DEFAULT_CHAT_NAMESPACE = ""
STATUS_KEY = "llama_index.status"


class _KeyedStore:
    """The translation both chat stores share: key <-> run id, records <-> messages."""

    if TYPE_CHECKING:
        namespace: str
        _store: ContextStore

    def _run(self, key: str) -> str:
        return LLAMA_INDEX_CHAT.run_id(check_key(key, "chat store key"), scope=self.namespace)

    def _locked(self, key: str) -> threading.Lock:
        """The lock held around every write to a key (and the reads it depends on)."""
        return session_lock(self._store, self._run(key))

    def _records(
        self, key: str, status: MessageStatus | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[ContextRecord]:
        """A key's records in append order (archiving keeps a record's place), only those asked for."""
        where = _status_where(status)
        return self._store.records(
            self._run(key), where=where, limit=limit, offset=offset, with_vectors=False
        )

    def _messages(
        self, key: str, status: MessageStatus | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[tuple[str, ChatMessage]]:
        out = []
        records = (
            shared_records(self._store, self._run(key), limit=limit)  # only read: cached ones uncopied
            if status is None and not offset
            else self._records(key, status, limit=limit, offset=offset)
        )
        for record in records:
            message = read_message(record)
            if message is not None:
                out.append((record.id, message))
        return out

    def _build(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> list[ContextRecord]:
        run_id = self._run(key)
        value = _status(status).value
        messages = message_list(messages)
        times = monotonic_times(len(messages))
        return [
            message_to_record(m, run_id, created_at=t, metadata={STATUS_KEY: value})
            for m, t in zip(messages, times)
        ]

    def _add(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        records = self._build(key, messages, status)
        if records:
            with self._locked(key):
                self._store.add(records)

    def _set(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        records = self._build(key, messages, status)
        with self._locked(key):
            self._store.replace(self._run(key), records)  # one commit

    def _delete_at(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at position ``idx``, reading only that record.

        Positions count the messages ``get_messages`` shows: a record of the session that
        is not a chat message (say, a core-written observation) is not one (records of
        roles that are not chat roles are read to tell).

        Raises:
            InvalidFilterError: ``idx`` is not an integer (nothing is deleted).
        """
        position = _position(idx)
        with self._locked(key):
            return self._delete_unlocked(key, position)

    def _delete_unlocked(self, key: str, position: int) -> ChatMessage | None:
        view = self._store.outline(self._run(key))
        rows = view.table.column("_rowid").to_pylist()
        roles = view.table.column("role").to_pylist()
        others = [row for row, role in zip(rows, roles, strict=True) if not has_chat_role(role)]
        if others:  # records of other roles are looked at: are they messages?
            records = view.fetch(others, with_vectors=False)
            skipped = {row for row, r in zip(others, records, strict=True) if record_to_message(r) is None}
            rows = [row for row in rows if row not in skipped]
        if not -len(rows) <= position < len(rows):
            return None
        [record] = view.fetch([rows[position]], with_vectors=False)
        self._store.delete(record.id)
        return record_to_message(record)

    def _keys(self) -> list[str]:
        """The keys holding at least one chat message.

        A session whose records all have other roles (say, only core-written notes) is
        looked at: it is a key only if one of its records reads as a message.
        """
        chats = set(self._store.run_ids(roles=CHAT_ROLES))
        keys = []
        for run in self._store.run_ids():
            key = LLAMA_INDEX_CHAT.key(run, scope=self.namespace)
            if key is None:
                continue
            if run in chats or any(
                record_to_message(r) is not None for r in self._store.records(run, with_vectors=False)
            ):
                keys.append(key)
        return keys


def _integer(value: object, what: str) -> int:
    """Any integer (a numpy one too, not a bool), as a list index takes it."""
    if not isinstance(value, bool):
        try:
            return operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            pass
    raise InvalidFilterError(f"{what} must be an integer, got {value!r}")


def _position(idx: object) -> int:
    """A message position: any integer, negative ones counting from the end."""
    return _integer(idx, "a message position")


def _insert_at(records: list[ContextRecord], position: int) -> int:
    """Where among a key's records a message goes to stand at ``position`` among its messages.

    Positions count messages as ``list.insert`` does (clamped); records that are not
    messages keep their place, and past the last message is the end.
    """
    at = [i for i, r in enumerate(records) if has_chat_role(r.role) or record_to_message(r) is not None]
    position = max(position + len(at), 0) if position < 0 else position
    return at[position] if position < len(at) else len(records)


def _status(value: object) -> MessageStatus:
    """A message status: a ``MessageStatus`` or its value (``"active"``, ``"archived"``)."""
    try:
        return MessageStatus(value)
    except ValueError:
        statuses = ", ".join(repr(s.value) for s in MessageStatus)
        raise InvalidFilterError(f"a message status must be one of {statuses}, got {value!r}") from None


def _status_where(status: object) -> dict[str, str] | None:
    """The filter of a status argument (None: every status)."""
    return None if status is None else {f"metadata.{STATUS_KEY}": _status(status).value}


def _open(
    store: ContextStore | None, uri: str | None, embedder: Any, storage_options: Mapping[str, str] | None
) -> ContextStore:
    return resolve_store(
        store, uri, who="LlamaIndex chat store", embedder=embedder, storage_options=storage_options
    )


class LanceChatStore(StoreBound, _KeyedStore, BaseChatStore):
    """A LlamaIndex ``BaseChatStore`` in a lance-context store (keys are session ids).

    Switch a ``ChatMemoryBuffer`` or ``ChatSummaryMemoryBuffer`` to durable, versioned
    storage by passing it as ``chat_store``. Calls on one key made at the same time in one
    process act as if made one after the other; other processes are not held.

    Example:
        >>> chat_store = LanceChatStore(uri="chats.lance", embedder=HashingEmbedder())  # doctest: +SKIP
        >>> memory = ChatMemoryBuffer.from_defaults(                                     # doctest: +SKIP
        ...     token_limit=3000, chat_store=chat_store, chat_store_key="user-42")
    """

    namespace: str = Field(
        default=DEFAULT_CHAT_NAMESPACE, description="Scope of the keys inside the LlamaIndex chat namespace."
    )
    _store: ContextStore = PrivateAttr()

    def __init__(
        self,
        *,
        store: ContextStore | None = None,
        uri: str | None = None,
        embedder: Any = DEFAULT_EMBEDDER,
        storage_options: Mapping[str, str] | None = None,
        namespace: str = DEFAULT_CHAT_NAMESPACE,
    ) -> None:
        """Use an open ``store`` or open one at ``uri`` (see ``ContextStore.open``)."""
        super().__init__(namespace=namespace)  # type: ignore[call-arg]
        self._store = _open(store, uri, embedder, storage_options)

    @classmethod
    def class_name(cls) -> str:
        """The LlamaIndex class name."""
        return "LanceChatStore"

    @property
    def store(self) -> ContextStore:
        """The store underneath."""
        return self._store

    def at_version(self, version: int | str) -> LanceChatStore:
        """A read-only chat store as the store was at a version or tag."""
        return LanceChatStore(store=self._store.at_version(version), namespace=self.namespace)

    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Replace the messages of a key."""
        self._set(key, messages)

    def get_messages(self, key: str) -> list[ChatMessage]:
        """The messages of a key, oldest first (empty for an unknown key)."""
        return [m for _, m in self._messages(key)]

    def add_message(self, key: str, message: ChatMessage, idx: int | None = None) -> None:
        """Append a message (one commit), or insert it at ``idx``."""
        if idx is None:
            self._add(key, [message])
            return
        # one commit; the messages already stored keep their time, status (archived by the
        # async store) and vectors: only the new one is embedded
        position, new = _position(idx), self._build(key, [message])[0]
        with self._locked(key):
            records = self._store.records(self._run(key))
            records.insert(_insert_at(records, position), new)
            self._store.replace(self._run(key), records)

    def delete_messages(self, key: str) -> list[ChatMessage] | None:
        """Delete every message of a key; return them (None when there were none)."""
        with self._locked(key):
            messages = self.get_messages(key)
            if not messages:
                return None
            self._store.delete(run_id=self._run(key))
        return messages

    def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at position ``idx``; return it (None when out of range).

        Raises:
            InvalidFilterError: ``idx`` is not an integer.
        """
        return self._delete_at(key, idx)

    def delete_last_message(self, key: str) -> ChatMessage | None:
        """Delete the newest message; return it (None when the key has none)."""
        return self._delete_at(key, -1)

    def get_keys(self) -> list[str]:
        """Every key that has messages."""
        return self._keys()


class LanceAsyncChatStore(StoreBound, _KeyedStore, AsyncDBChatStore):
    """The chat store of LlamaIndex's newer ``Memory``, in a lance-context store.

    Messages carry an ``active`` / ``archived`` status: ``Memory`` archives the
    oldest messages when its FIFO queue overflows; archived messages stay in the store.
    Calls on one key made at the same time in one process act as if made one after the
    other; other processes are not held.

    Example:
        >>> chat_store = LanceAsyncChatStore(store=store)                        # doctest: +SKIP
        >>> memory = Memory.from_defaults(session_id="user-42", chat_store=chat_store)  # doctest: +SKIP
    """

    namespace: str = Field(
        default=DEFAULT_CHAT_NAMESPACE, description="Scope of the keys inside the LlamaIndex chat namespace."
    )
    _store: ContextStore = PrivateAttr()

    def __init__(
        self,
        *,
        store: ContextStore | None = None,
        uri: str | None = None,
        embedder: Any = DEFAULT_EMBEDDER,
        storage_options: Mapping[str, str] | None = None,
        namespace: str = DEFAULT_CHAT_NAMESPACE,
    ) -> None:
        """Use an open ``store`` or open one at ``uri`` (see ``ContextStore.open``)."""
        super().__init__(namespace=namespace)  # type: ignore[call-arg]
        self._store = _open(store, uri, embedder, storage_options)

    @classmethod
    def class_name(cls) -> str:
        """The LlamaIndex class name."""
        return "LanceAsyncChatStore"

    @property
    def store(self) -> ContextStore:
        """The store underneath."""
        return self._store

    def _get(
        self, key: str, status: MessageStatus | None, limit: int | None, offset: int | None
    ) -> list[ChatMessage]:
        if status is None and (limit is not None or offset):
            # every status: records of the key's session that are not messages (no status,
            # not a chat role) are left out, so the page is cut from the messages themselves
            start = offset or 0
            every = [m for _, m in self._messages(key)]
            return every[start : None if limit is None else start + limit]
        return [m for _, m in self._messages(key, status, limit=limit, offset=offset or 0)]

    async def get_messages(
        self,
        key: str,
        status: MessageStatus | None = MessageStatus.ACTIVE,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[ChatMessage]:
        """Messages of a key with this status (None: all), oldest first."""
        return await asyncio.to_thread(self._get, key, status, limit, offset)

    async def count_messages(self, key: str, status: MessageStatus | None = MessageStatus.ACTIVE) -> int:
        """How many messages a key has with this status (None: all)."""
        return await asyncio.to_thread(self._store.count, self._run(key), where=_status_where(status))

    async def add_message(
        self, key: str, message: ChatMessage, status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        """Append one message (one commit)."""
        await asyncio.to_thread(self._add, key, [message], status)

    async def add_messages(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        """Append messages in one commit."""
        await asyncio.to_thread(self._add, key, messages, status)

    async def set_messages(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        """Replace every message of a key."""
        await asyncio.to_thread(self._set, key, messages, status)

    async def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at position ``idx`` (all statuses, oldest first); return it."""
        return await asyncio.to_thread(self._delete_at, key, idx)

    async def delete_messages(self, key: str, status: MessageStatus | None = None) -> None:
        """Delete a key's messages with this status (None: all)."""
        await asyncio.to_thread(self._delete_all, key, _status_where(status))

    def _delete_all(self, key: str, where: dict[str, str] | None) -> None:
        with self._locked(key):
            self._store.delete(run_id=self._run(key), where=where)

    def _take_oldest(self, key: str, n: int, archive: bool) -> list[ChatMessage]:
        n = _integer(n, "the number of messages")
        if n <= 0:
            return []
        with self._locked(key):
            oldest = self._records(key, MessageStatus.ACTIVE, limit=n)
            if not oldest:
                return []
            if archive:  # in place: a message another process replaced meanwhile is not brought back
                archived = {STATUS_KEY: MessageStatus.ARCHIVED.value}
                self._store.update_metadata([r.id for r in oldest], archived)
            else:
                self._store.delete([r.id for r in oldest])
        return [m for m in map(record_to_message, oldest) if m is not None]

    async def delete_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Delete the oldest ``n`` active messages; return them."""
        return await asyncio.to_thread(self._take_oldest, key, n, False)

    async def archive_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Mark the oldest ``n`` active messages archived (one commit); return them."""
        return await asyncio.to_thread(self._take_oldest, key, n, True)

    async def get_keys(self) -> list[str]:
        """Every key that has messages."""
        return await asyncio.to_thread(self._keys)
