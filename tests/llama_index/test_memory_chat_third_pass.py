"""LlamaIndex memory, chat stores and messages beside LlamaIndex's own, third pass.

Differential where practical: ``SimpleChatStore`` for ``LanceChatStore``,
``SQLAlchemyChatStore`` (in-memory SQLite, LlamaIndex's default) for
``LanceAsyncChatStore``, ``ChatMemoryBuffer`` for ``LanceMemory``'s window.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    TextBlock,
    VideoBlock,
)
from llama_index.core.memory import ChatMemoryBuffer, Memory
from llama_index.core.storage.chat_store import SimpleChatStore
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus
from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore
from pydantic import ValidationError

from lance_context import (
    ContextStore,
    HashingEmbedder,
    InvalidFilterError,
    InvalidRecordError,
    RecallOptions,
    UnsupportedContentError,
)
from lance_context.llama_index import LanceAsyncChatStore, LanceChatStore, LanceMemory

from .conftest import DIM, answer, assistant, user, words
from .test_memory import long_chat

RAW = b"\x89\xff\x00 not utf-8, not base64 \x80"


def system(text: str) -> ChatMessage:
    return ChatMessage(role="system", content=text)


def sql_chat_store() -> SQLAlchemyChatStore:
    return SQLAlchemyChatStore(table_name="chats", async_database_uri="sqlite+aiosqlite:///:memory:")


# ---------------------------------------------------------------------- media file objects
def _resolved(block: Any) -> bytes:
    data: bytes = getattr(block, f"resolve_{block.block_type}")().read()
    return data


MEDIA: dict[str, Callable[[io.IOBase], Any]] = {
    "image": lambda f: ImageBlock(image=f, image_mimetype="image/png"),
    "audio": lambda f: AudioBlock(audio=f, format="wav"),
    "video": lambda f: VideoBlock(video=f, video_mimetype="video/mp4"),
    "document": lambda f: DocumentBlock(data=f, document_mimetype="application/pdf", title="t"),
}


@pytest.mark.parametrize("kind", list(MEDIA))
def test_a_media_block_holding_a_file_object_round_trips_as_in_simple_chat_store(
    store: ContextStore, kind: str
) -> None:
    # LlamaIndex lets audio, video and document blocks hold a file object as an image
    # block can; only images were stored, the others were refused as "cannot be serialized".
    ours, reference = LanceChatStore(store=store), SimpleChatStore()
    for chats in (ours, reference):
        chats.set_messages(
            "k", [ChatMessage(role="user", blocks=[TextBlock(text="see"), MEDIA[kind](io.BytesIO(RAW))])]
        )
    [back] = LanceChatStore(store=ContextStore.open(store.uri)).get_messages("k")
    [expected] = reference.get_messages("k")
    assert back.content == expected.content == "see"
    assert type(back.blocks[1]) is type(expected.blocks[1])
    assert _resolved(back.blocks[1]) == _resolved(expected.blocks[1]) == RAW


@pytest.mark.parametrize("kind", list(MEDIA))
def test_a_media_block_holding_a_text_stream_is_refused_and_nothing_is_written(
    store: ContextStore, kind: str
) -> None:
    # An image from a text stream was stored as an empty image, silently.
    chats = LanceChatStore(store=store)
    chats.set_messages("k", [user("kept")])
    version = store.version()
    message = ChatMessage(role="user", blocks=[MEDIA[kind](io.StringIO("text"))])
    with pytest.raises(InvalidRecordError, match="binary mode"):
        chats.add_message("k", message)
    assert store.version() == version
    assert chats.get_messages("k") == [user("kept")]


# ---------------------------------------------------------------------- LanceMemory
@pytest.mark.parametrize(
    "options",
    [
        {"session_id": ""},
        {"session_id": 3},
        {"token_limit": 0},
        {"semantic_top_k": -1},
        {"semantic_token_ratio": 1.5},
        {"chat_history": [user("ok"), "not a message"]},
        {"chat_history": user("a single message")},
        {"chat_history": [ChatMessage(content="x", additional_kwargs={"bad": {1, 2}})]},
    ],
    ids=[
        "empty session",
        "session not a string",
        "zero token limit",
        "negative top k",
        "ratio above one",
        "history with a string",
        "history a single message",
        "history with a set",
    ],
)
def test_from_defaults_refuses_bad_input_before_creating_a_store(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    # The store was opened (so created at uri) before the options were checked.
    uri = tmp_path / "memory.lance"
    options = {"session_id": "s", **options}
    with pytest.raises((ValidationError, InvalidFilterError, UnsupportedContentError, InvalidRecordError)):
        LanceMemory.from_defaults(uri=str(uri), embedder=HashingEmbedder(DIM), **options)
    assert not uri.exists()


def test_from_defaults_with_good_input_still_creates_and_fills_the_store(tmp_path: Path) -> None:
    uri = str(tmp_path / "memory.lance")
    history = [user("hello"), assistant("hi")]
    LanceMemory.from_defaults("s", uri=uri, embedder=HashingEmbedder(DIM), chat_history=history)
    assert LanceMemory.from_defaults("s", uri=uri).get_all() == history


MID_SYSTEM_HISTORY = [
    user("w0"),
    assistant("w1 w1"),
    system("w2 w2 w2"),
    assistant("w3 w3"),
    user("w4 w4"),
    assistant("w5"),
]


@pytest.mark.parametrize("limit", range(1, 14))
@pytest.mark.parametrize("initial", [0, 1])
def test_a_window_starting_on_a_later_system_message_matches_chat_memory_buffer(
    store: ContextStore, limit: int, initial: int
) -> None:
    # Only the session's own leading system message is pinned; a window starting on a
    # later one dropped the assistant message after it although it fitted.
    if initial > limit:
        pytest.skip("the initial count must fit the limit")
    memory = LanceMemory.from_defaults(
        session_id=f"mid-{limit}-{initial}", store=store, token_limit=limit, tokenizer_fn=words
    )
    memory.put_messages(MID_SYSTEM_HISTORY)
    reference = ChatMemoryBuffer.from_defaults(
        token_limit=limit, tokenizer_fn=words, chat_history=MID_SYSTEM_HISTORY
    )
    assert answer(memory.get(initial_token_count=initial)) == answer(
        reference.get(initial_token_count=initial)
    )


def test_a_leading_system_message_is_still_pinned_and_followed_by_a_user_turn(store: ContextStore) -> None:
    memory = LanceMemory.from_defaults(session_id="pin", store=store, token_limit=5, tokenizer_fn=words)
    memory.put_messages([system("be brief"), user("one"), assistant("two two"), user("three")])
    # "two two" fits but a window cut short starts on a user message after the system one
    assert answer(memory.get()) == [("system", "be brief"), ("user", "three")]


@pytest.mark.parametrize("make", ["branch", "at_version"])
def test_branches_and_past_versions_keep_the_recall_options(store: ContextStore, make: str) -> None:
    # A branch or a past version of a memory came back with the default recall
    # options: the reranker was lost.
    def anything_but_planet_107(query: str, texts: list[str]) -> list[float]:
        return [float(" 107 " not in t) for t in texts]

    options = RecallOptions(reranker=anything_but_planet_107)
    memory = LanceMemory.from_defaults(
        session_id="s", store=store, token_limit=60, tokenizer_fn=words, semantic_top_k=1,
        recall_options=options,
    )  # fmt: skip
    memory.put_messages(long_chat("my dog is called biscuit and she loves carrots"))
    other = memory.branch("fork") if make == "branch" else memory.at_version(store.version())
    plain = LanceMemory.from_defaults(
        session_id="s", store=store, token_limit=60, tokenizer_fn=words, semantic_top_k=1
    )
    assert "planet 107 is a gas giant" in [m.content for m in plain.get(input="planet number 107")]
    for reranked in (memory, other):
        assert "planet 107 is a gas giant" not in [m.content for m in reranked.get(input="planet number 107")]


# ---------------------------------------------------------------------- a list, not one message
def test_a_single_message_where_a_list_is_expected_is_refused_and_nothing_is_written(
    store: ContextStore,
) -> None:
    memory = LanceMemory.from_defaults(session_id="s", store=store, tokenizer_fn=words)
    memory.put(user("kept"))
    chats = LanceChatStore(store=store)
    chats.set_messages("k", [user("kept")])
    version = store.version()
    for call in (
        lambda: memory.put_messages(user("one")),  # type: ignore[arg-type]
        lambda: memory.set(user("one")),  # type: ignore[arg-type]
        lambda: chats.set_messages("k", user("one")),  # type: ignore[arg-type]
        lambda: memory.put_messages(None),  # type: ignore[arg-type]
    ):
        with pytest.raises(UnsupportedContentError, match="list of llama_index ChatMessage"):
            call()
    assert store.version() == version
    assert memory.get_all() == [user("kept")] and chats.get_messages("k") == [user("kept")]


async def test_the_async_chat_store_refuses_a_single_message_for_a_list(store: ContextStore) -> None:
    chats = LanceAsyncChatStore(store=store)
    for call in (chats.add_messages, chats.set_messages):
        with pytest.raises(UnsupportedContentError, match="list of llama_index ChatMessage"):
            await call("k", user("one"))  # type: ignore[arg-type]
    assert await chats.get_keys() == []


# ---------------------------------------------------------------------- the async chat store
async def _async_flow(chats: AsyncDBChatStore) -> list[Any]:
    out: list[Any] = []
    await chats.add_messages("k", [user(str(i)) for i in range(6)])
    await chats.add_message("k", assistant("archived"), status=MessageStatus.ARCHIVED)
    await chats.add_message("j", user("j0"))
    for status in (MessageStatus.ACTIVE, MessageStatus.ARCHIVED, None):
        out.append(answer(await chats.get_messages("k", status=status)))
        out.append(await chats.count_messages("k", status=status))
    out.append(answer(await chats.get_messages("k", limit=2, offset=1)))
    out.append(answer(await chats.get_messages("k", status=None, limit=3, offset=5)))
    out.append(answer(await chats.get_messages("k", offset=4)))
    out.append(answer(await chats.archive_oldest_messages("k", 2)))
    out.append(answer(await chats.delete_oldest_messages("k", 1)))
    out.append(answer(await chats.delete_oldest_messages("k", 0)))
    out.append(answer(await chats.archive_oldest_messages("missing", 2)))
    out.append(answer(await chats.get_messages("k", status=None)))
    out.append(sorted(await chats.get_keys()))
    await chats.delete_messages("k", status=MessageStatus.ARCHIVED)
    out.append(answer(await chats.get_messages("k", status=None)))
    await chats.set_messages("k", [assistant("s")], status=MessageStatus.ARCHIVED)
    out.append(answer(await chats.get_messages("k", status=None)))
    out.append(answer(await chats.get_messages("k")))
    await chats.delete_messages("j")
    out.append(sorted(await chats.get_keys()))
    out.append((answer(await chats.get_messages("missing")), await chats.count_messages("missing")))
    return out


async def test_the_async_chat_store_answers_as_sqlalchemy_chat_store_does(store: ContextStore) -> None:
    assert await _async_flow(LanceAsyncChatStore(store=store)) == await _async_flow(sql_chat_store())
    reopened = LanceAsyncChatStore(store=ContextStore.open(store.uri))
    assert answer(await reopened.get_messages("k", status=MessageStatus.ARCHIVED)) == [("assistant", "s")]


async def test_newer_memory_windows_and_archives_as_on_its_default_store(store: ContextStore) -> None:
    async def flow(chats: AsyncDBChatStore) -> list[Any]:
        memory = Memory.from_defaults(
            session_id="s",
            token_limit=60,
            chat_history_token_ratio=0.5,
            token_flush_size=10,
            chat_store=chats,
        )
        seen = []
        for i in range(10):
            role = "user" if i % 2 == 0 else "assistant"
            await memory.aput(ChatMessage(role=role, content=f"message number {i} with some words"))
            seen.append(answer(await memory.aget()))
        seen.append(answer(await chats.get_messages("s", status=MessageStatus.ARCHIVED)))
        await memory.aset([user("fresh")])
        await memory.aput_messages([assistant("a"), user("b")])
        seen.append(answer(await memory.aget_all(status=None)))
        return seen

    assert await flow(LanceAsyncChatStore(store=store)) == await flow(sql_chat_store())


@pytest.mark.parametrize("status", ["archived", "active"])
async def test_a_status_may_be_given_by_its_value(store: ContextStore, status: str) -> None:
    chats = LanceAsyncChatStore(store=store)
    await chats.add_messages("k", [user("0"), user("1")], status=status)  # type: ignore[arg-type]
    assert await chats.count_messages("k", status=MessageStatus(status)) == 2
    assert await chats.count_messages("k", status=status) == 2  # type: ignore[arg-type]
    assert len(await chats.get_messages("k", status=status)) == 2  # type: ignore[arg-type]


async def test_a_bad_status_or_count_is_refused_and_nothing_changes(store: ContextStore) -> None:
    # These raised AttributeError ('str' object has no attribute 'value') or compared a
    # string with an integer.
    chats = LanceAsyncChatStore(store=store)
    await chats.add_messages("k", [user("0"), user("1")])
    version = store.version()
    calls = [
        chats.add_message("k", user("x"), status="gone"),  # type: ignore[arg-type]
        chats.set_messages("k", [user("x")], status="gone"),  # type: ignore[arg-type]
        chats.delete_messages("k", status="gone"),  # type: ignore[arg-type]
        chats.get_messages("k", status="gone"),  # type: ignore[arg-type]
        chats.count_messages("k", status="gone"),  # type: ignore[arg-type]
        chats.archive_oldest_messages("k", "1"),  # type: ignore[arg-type]
        chats.delete_oldest_messages("k", 1.0),  # type: ignore[arg-type]
        chats.archive_oldest_messages("k", True),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(InvalidFilterError, match="status must be one of|must be an integer"):
            await call
    assert store.version() == version
    assert answer(await chats.get_messages("k")) == [("user", "0"), ("user", "1")]


# ---------------------------------------------------------------------- the sync chat store
def _call(chats: Any, op: str, key: str, message: ChatMessage, position: int) -> Any:
    if op == "add":
        return chats.add_message(key, message)
    if op == "insert":
        return chats.add_message(key, message, idx=position)
    if op == "delete":
        return chats.delete_message(key, position)
    if op == "delete_last":
        return chats.delete_last_message(key)
    if op == "delete_all":
        return chats.delete_messages(key)
    return chats.set_messages(key, [message, user(f"{message.content}b")])


def test_a_seeded_run_of_calls_matches_simple_chat_store_across_reopens(store: ContextStore) -> None:
    rng = random.Random(7)
    reference, ours = SimpleChatStore(), LanceChatStore(store=store)
    keys = ["a", "b", "a:b", "%", " "]
    for step in range(90):
        key = rng.choice(keys)
        size = len(reference.get_messages(key))
        message = ChatMessage(role=rng.choice(["user", "assistant"]), content=f"m{step}")
        op = rng.choice(["add", "add", "insert", "delete", "delete_last", "delete_all", "set", "reopen"])
        if op == "reopen":
            ours = LanceChatStore(store=ContextStore.open(store.uri))
            continue
        if op == "delete_last" and not size:
            continue  # SimpleChatStore raises IndexError on a key it holds with no messages
        position = rng.randint(-size - 1, size + 1) if op == "insert" else rng.randint(-size, size + 1)
        expected = answer(_call(reference, op, key, message, position))
        got = answer(_call(ours, op, key, message, position))
        assert got == (None if expected == [] else expected), (step, op, key)
        held = {k: answer(reference.get_messages(k)) for k in keys if reference.get_messages(k)}
        assert {k: answer(ours.get_messages(k)) for k in keys if ours.get_messages(k)} == held, (step, op)
        assert sorted(ours.get_keys()) == sorted(held)


def test_a_deep_copy_is_refused_clearly_and_a_shallow_copy_shares_the_store(tmp_path: Path) -> None:
    import copy

    memory = LanceMemory.from_defaults("s", uri=str(tmp_path / "m.lance"), embedder=HashingEmbedder(DIM))
    chats = LanceChatStore(uri=str(tmp_path / "c.lance"), embedder=None)
    for bound in (memory, chats):
        with pytest.raises(TypeError, match="bound to an open store"):
            copy.deepcopy(bound)
    memory.put(user("hello"))
    shared = copy.copy(memory)
    assert shared.get_all() == memory.get_all() == [user("hello")]
