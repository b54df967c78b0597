"""Chat-store calls on one key made at the same time act as if made one after the other.

Each race is made deterministic by wrapping the store read a call makes before it
writes: the first call, once it has read, waits until a second call has read too (or
until another write has finished) before it goes on. Without the per-key lock both calls
work from the same read; with it the second call waits for the lock, the first one's wait
runs out (``WAIT`` seconds) and the calls run one after the other. End results are
compared with LlamaIndex's own stores given the same calls one after the other.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.storage.chat_store import SimpleChatStore
from llama_index.core.storage.chat_store.base_db import MessageStatus
from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore

from lance_context import ContextStore, HashingEmbedder
from lance_context.llama_index import LanceAsyncChatStore, LanceChatStore

from .conftest import DIM, answer, assistant, user

#: How long the first call waits for the second one to read (or write) before going on.
WAIT = 0.4
KEY = "race"


class AfterRead:
    """Wraps a store read: the first call, once it has read, waits for ``release``.

    A later call of the read sets ``release`` once it has read, so two callers of the
    same read-then-write both read before either writes unless something keeps the
    second one out. A test may set ``release`` itself (after another write finished).
    """

    def __init__(self, read: Callable[..., Any], wait: float = WAIT) -> None:
        self.read = read
        self.wait = wait
        self.calls = 0
        self.guard = threading.Lock()
        self.first_read = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.read(*args, **kwargs)
        with self.guard:
            self.calls += 1
            first = self.calls == 1
        if first:
            self.first_read.set()
            self.release.wait(self.wait)
        else:
            self.release.set()
        return out


def hook(monkeypatch: pytest.MonkeyPatch, store: ContextStore, read: str, wait: float = WAIT) -> AfterRead:
    # records: the store's reader, which both ``store.records`` and ``shared_records`` reach
    target: Any = store._reader if read == "records" else store
    wrapped = AfterRead(getattr(target, read), wait)
    monkeypatch.setattr(target, read, wrapped)
    return wrapped


def seed() -> list[ChatMessage]:
    return [user("0"), assistant("1"), user("2"), assistant("3"), user("4"), assistant("5")]


def first_then_second(
    first: Callable[[], Any], second: Callable[[], Any], hooked: AfterRead
) -> tuple[Any, Any]:
    """Start ``first``; once it has read, start ``second`` on another thread."""
    with ThreadPoolExecutor(2) as pool:
        a: Future[Any] = pool.submit(first)
        assert hooked.first_read.wait(30)
        b: Future[Any] = pool.submit(second)
        return a.result(30), b.result(30)


def write_while_read(first: Callable[[], Any], write: Callable[[], Any], hooked: AfterRead) -> Any:
    """Start ``first``; once it has read, run ``write`` (waiting ``WAIT`` at most) before it goes on."""
    with ThreadPoolExecutor(2) as pool:
        a: Future[Any] = pool.submit(first)
        assert hooked.first_read.wait(30)
        b: Future[Any] = pool.submit(write)
        try:
            b.result(WAIT)  # with the lock the write waits for ``first``: this runs out
        except TimeoutError:
            pass
        hooked.release.set()
        b.result(30)
        return a.result(30)


# ---------------------------------------------------------------------- sync store
@pytest.mark.parametrize("write", ["add_message", "async add_messages"])
@pytest.mark.parametrize("idx", [0, 2, -1])
def test_insert_at_keeps_an_append_made_meanwhile(
    store: ContextStore, store_path: str, monkeypatch: pytest.MonkeyPatch, write: str, idx: int
) -> None:
    chats = LanceChatStore(store=store)
    chats.set_messages(KEY, seed())
    # the append comes through another chat store on another store object at the same place
    other = ContextStore.open(store_path, embedder=HashingEmbedder(DIM))
    appended = [user("appended")] if write == "add_message" else [user("appended"), assistant("too")]

    def append() -> None:
        if write == "add_message":
            LanceChatStore(store=other).add_message(KEY, appended[0])
        else:
            asyncio.run(LanceAsyncChatStore(store=other).add_messages(KEY, appended))

    hooked = hook(monkeypatch, store, "records")
    write_while_read(lambda: chats.add_message(KEY, user("inserted"), idx=idx), append, hooked)

    reference = SimpleChatStore()
    reference.set_messages(KEY, seed())
    reference.add_message(KEY, user("inserted"), idx=idx)
    for message in appended:
        reference.add_message(KEY, message)
    assert answer(chats.get_messages(KEY)) == answer(reference.get_messages(KEY))


def test_delete_all_returns_every_message_it_deletes(
    store: ContextStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    chats = LanceChatStore(store=store)
    chats.set_messages(KEY, seed())
    hooked = hook(monkeypatch, store, "records")
    deleted = write_while_read(
        lambda: chats.delete_messages(KEY), lambda: chats.add_message(KEY, user("appended")), hooked
    )

    reference = SimpleChatStore()
    reference.set_messages(KEY, seed())
    expected = reference.delete_messages(KEY)
    reference.add_message(KEY, user("appended"))
    assert answer(deleted) == answer(expected)
    assert answer(chats.get_messages(KEY)) == answer(reference.get_messages(KEY))


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.delete_last_message(KEY), id="delete_last_message"),
        pytest.param(lambda c: c.delete_message(KEY, 0), id="delete_message 0"),
        pytest.param(lambda c: c.delete_message(KEY, -2), id="delete_message -2"),
    ],
)
def test_two_deletes_at_once_delete_two_messages(
    store: ContextStore, monkeypatch: pytest.MonkeyPatch, call: Callable[[Any], Any]
) -> None:
    chats = LanceChatStore(store=store)
    chats.set_messages(KEY, seed())
    hooked = hook(monkeypatch, store, "outline")
    got = first_then_second(lambda: call(chats), lambda: call(chats), hooked)

    reference = SimpleChatStore()
    reference.set_messages(KEY, seed())
    expected = (call(reference), call(reference))
    assert answer(list(got)) == answer(list(expected))
    assert answer(chats.get_messages(KEY)) == answer(reference.get_messages(KEY))


def test_other_keys_are_not_held(store: ContextStore, monkeypatch: pytest.MonkeyPatch) -> None:
    chats = LanceChatStore(store=store)
    chats.set_messages(KEY, seed())
    hooked = hook(monkeypatch, store, "records", wait=30)
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(chats.add_message, KEY, user("inserted"), 0)
        assert hooked.first_read.wait(30)
        # KEY's call is paused inside its read-then-replace: another key still goes through
        pool.submit(chats.add_message, "other", user("elsewhere")).result(WAIT * 10)
        hooked.release.set()
        held.result(30)
    assert answer(chats.get_messages("other")) == [("user", "elsewhere")]
    assert answer(chats.get_messages(KEY))[0] == ("user", "inserted")


# ---------------------------------------------------------------------- async store
async def _sql_reference(method: str, arg: int) -> tuple[list[Any], list[Any], list[Any]]:
    reference = SQLAlchemyChatStore(table_name="chats", async_database_uri="sqlite+aiosqlite:///:memory:")
    await reference.add_messages(KEY, seed())
    got = [await getattr(reference, method)(KEY, arg), await getattr(reference, method)(KEY, arg)]
    return (
        got,
        await reference.get_messages(KEY, status=None),
        await reference.get_messages(KEY, status=MessageStatus.ACTIVE),
    )


@pytest.mark.parametrize("method", ["delete_oldest_messages", "archive_oldest_messages"])
def test_two_takes_of_the_oldest_at_once_take_distinct_messages(
    store: ContextStore, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    chats = LanceAsyncChatStore(store=store)

    async def run() -> tuple[list[Any], list[Any], list[Any]]:
        await chats.add_messages(KEY, seed())
        hook(monkeypatch, store, "records")
        got = await asyncio.gather(getattr(chats, method)(KEY, 2), getattr(chats, method)(KEY, 2))
        monkeypatch.undo()
        return (
            list(got),
            await chats.get_messages(KEY, status=None),
            await chats.get_messages(KEY, status=MessageStatus.ACTIVE),
        )

    got, every, active = asyncio.run(run())
    expected, expected_every, expected_active = asyncio.run(_sql_reference(method, 2))
    # gather starts both at once: either may have gone first
    assert sorted(answer(got)) == sorted(answer(expected))
    assert answer(every) == answer(expected_every)
    assert answer(active) == answer(expected_active)


def test_two_takes_of_the_oldest_from_threads(store: ContextStore, monkeypatch: pytest.MonkeyPatch) -> None:
    chats = LanceAsyncChatStore(store=store)
    asyncio.run(chats.add_messages(KEY, seed()))
    hooked = hook(monkeypatch, store, "records")

    def take() -> list[ChatMessage]:
        return asyncio.run(chats.delete_oldest_messages(KEY, 2))

    got = first_then_second(take, take, hooked)
    monkeypatch.undo()

    expected, expected_every, _ = asyncio.run(_sql_reference("delete_oldest_messages", 2))
    assert answer(list(got)) == answer(expected)
    assert answer(asyncio.run(chats.get_messages(KEY, status=None))) == answer(expected_every)


def test_async_delete_message_at_once(store: ContextStore, monkeypatch: pytest.MonkeyPatch) -> None:
    chats = LanceAsyncChatStore(store=store)

    async def run() -> list[Any]:
        await chats.add_messages(KEY, seed())
        hook(monkeypatch, store, "outline")
        got = await asyncio.gather(chats.delete_message(KEY, -1), chats.delete_message(KEY, -1))
        monkeypatch.undo()
        return list(got)

    got = asyncio.run(run())
    reference = SimpleChatStore()
    reference.set_messages(KEY, seed())
    expected = [reference.delete_message(KEY, -1), reference.delete_message(KEY, -1)]
    assert sorted(answer(got)) == sorted(answer(expected))
    remaining = asyncio.run(chats.get_messages(KEY, status=None))
    assert answer(remaining) == answer(reference.get_messages(KEY))


def test_archiving_never_brings_back_messages_another_process_replaced(
    store: ContextStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``set_messages`` from another process lands between the archive's read and its commit."""
    from lance_context.llama_index import _chat_store

    locks: dict[int, threading.Lock] = {}  # one lock per store handle, as two processes have
    monkeypatch.setattr(
        _chat_store, "session_lock", lambda s, run_id: locks.setdefault(id(s), threading.Lock())
    )
    other = ContextStore.open(store.uri, embedder=HashingEmbedder(DIM))
    chats, elsewhere = LanceAsyncChatStore(store=store), LanceAsyncChatStore(store=other)
    asyncio.run(chats.set_messages(KEY, seed()))
    handle, real, replaced = store._state.handle, store._state.handle.commit, []

    def commit(*args: Any, **kwargs: Any) -> Any:
        if not replaced:
            replaced.append(asyncio.run(elsewhere.set_messages(KEY, [user("fresh")])))
        return real(*args, **kwargs)

    monkeypatch.setattr(handle, "commit", commit)
    taken = asyncio.run(chats.archive_oldest_messages(KEY, 2))
    assert replaced and [m.content for m in taken] == ["0", "1"]  # what it read
    expected = SimpleChatStore()  # the replacement came last: only it remains
    expected.set_messages(KEY, [user("fresh")])
    fresh = LanceAsyncChatStore(store=ContextStore.open(store.uri, embedder=HashingEmbedder(DIM)))
    assert [m.content for m in asyncio.run(fresh.get_messages(KEY, status=None))] == [
        m.content for m in expected.get_messages(KEY)
    ]
