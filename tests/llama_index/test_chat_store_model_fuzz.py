"""The chat stores and LanceMemory beside LlamaIndex's own, over seeded random call sequences.

Each step runs the same call on ours and on the reference (``SimpleChatStore``,
``SQLAlchemyChatStore``, ``Memory`` on its default store, ``ChatMemoryBuffer``) and
compares what it returned (or raised) and then what is stored. Answers differ only where
ours is deliberately different (see ``test_chat_store_reference``): a key with no
messages left is not listed, and where SimpleChatStore raises ``IndexError`` (an index
before the start, the last message of a key emptied earlier) ours deletes nothing and
returns None; deleting every message of a key emptied earlier returns None
(SimpleChatStore: ``[]``).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    AudioBlock,
    CacheControl,
    CachePoint,
    ChatMessage,
    CitableBlock,
    CitationBlock,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.memory import ChatMemoryBuffer, Memory
from llama_index.core.storage.chat_store import SimpleChatStore
from llama_index.core.storage.chat_store.base_db import MessageStatus
from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore

from lance_context import ContextRecord, ContextStore
from lance_context.llama_index import LanceAsyncChatStore, LanceChatStore, LanceMemory

from .conftest import answer, assistant, user, words
from .test_memory_reference import system

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
KEYS = ("a", "b", "c", "d")
ROLES = list(MessageRole)
KWARGS: list[dict[str, Any]] = [
    {},
    {"name": "ana", "n": 3},
    {"tool_call_id": "call-1", "nested": {"x": [1, 2.5, None, True]}},
    {"raw": b"\x00\xff", "pair": (1, "a")},
]


def random_message(rng: random.Random, n: int, kwargs_pool: list[dict[str, Any]] = KWARGS) -> ChatMessage:
    role = rng.choice(ROLES)
    kwargs = dict(rng.choice(kwargs_pool))
    shape = rng.randrange(8)
    if shape == 0:
        return ChatMessage(role=role, content="", additional_kwargs=kwargs)
    if shape == 1:
        return ChatMessage(role=role, content=None, additional_kwargs=kwargs)
    if shape == 2:
        blocks: list[Any] = [TextBlock(text=f"m{n} first"), TextBlock(text=f"m{n} second")]
    elif shape == 3:
        blocks = [TextBlock(text=f"m{n} look"), ImageBlock(image=PNG, image_mimetype="image/png")]
    elif shape == 4:
        blocks = [ImageBlock(image=PNG + bytes([n % 256])), TextBlock(text=""), ImageBlock(image=PNG)]
    elif shape == 5:
        blocks = [
            ThinkingBlock(content=f"m{n} think", additional_information={"sig": "x"}),
            ToolCallBlock(tool_call_id=f"c{n}", tool_name="weather", tool_kwargs={"city": "Paris"}),
            AudioBlock(audio=b"RIFF" + bytes(16), format="wav"),
            DocumentBlock(data=b"%PDF-1.4 " + bytes(8), title="doc"),
            CachePoint(cache_control=CacheControl(type="ephemeral")),
        ]
    elif shape == 6:
        blocks = [
            CitableBlock(title="t", source="s", content=[TextBlock(text=f"m{n}"), ImageBlock(image=PNG)]),
            CitationBlock(
                cited_content=ImageBlock(image=PNG), source="s", title="t", additional_location_info={"p": 1}
            ),
            ImageBlock(url="https://example.com/a.png"),
        ]
    else:
        return ChatMessage(role=role, content=f"m{n} \u00e9\U0001f600", additional_kwargs=kwargs)
    return ChatMessage(role=role, blocks=blocks, additional_kwargs=kwargs)


def fresh(message: ChatMessage) -> ChatMessage:
    """A copy, so that the model's stored lists and ours never share objects."""
    return message.model_copy(deep=True)


def plain(value: Any) -> Any:
    """An answer as comparable data: messages as their JSON dump, lists item by item."""
    if isinstance(value, ChatMessage):
        return (value.role.value, [b.model_dump(mode="json") for b in value.blocks], value.additional_kwargs)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def call(chats: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    """Run one call (an ``a...`` name through asyncio); its answer or the error type it raised."""
    method = getattr(chats, name)
    try:
        result = asyncio.run(method(*args, **kwargs)) if name.startswith("a") else method(*args, **kwargs)
    except Exception as exc:
        return ("raised", type(exc).__name__)
    return ("ok", plain(result))


def random_step(
    rng: random.Random, model: SimpleChatStore, n: int
) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    key = rng.choice(KEYS)
    size = len(model.store.get(key, []))
    which = rng.randrange(10)
    sync = rng.random() < 0.6
    if which == 0:
        messages = [random_message(rng, n * 10 + i) for i in range(rng.randrange(4))]
        return ("set_messages" if sync else "aset_messages", (key, messages), {})
    if which in (1, 2):
        name = "add_message" if sync else "async_add_message"
        return (name, (key, random_message(rng, n)), {})
    if which == 3:
        idx = rng.randint(-size - 2, size + 2)
        return ("add_message", (key, random_message(rng, n)), {"idx": idx})
    if which == 4:
        return ("get_messages" if sync else "aget_messages", (key,), {})
    if which == 5:
        return ("delete_messages" if sync else "adelete_messages", (key,), {})
    if which in (6, 7):
        idx = rng.randint(-size - 1, size + 1)
        return ("delete_message" if sync else "adelete_message", (key, idx), {})
    if which == 8:
        return ("delete_last_message" if sync else "adelete_last_message", (key,), {})
    return ("get_keys" if sync else "aget_keys", (), {})


def expected(
    model: SimpleChatStore, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, Any]:
    """What ours should answer: the model's answer, but None where the model raises IndexError."""
    empty = args[:1] and args[0] in model.store and not model.store[args[0]]
    got = call(model, name, args, kwargs)
    if empty and name in ("delete_messages", "adelete_messages"):
        return ("ok", None)  # a key emptied earlier is no key: nothing to delete
    if got == ("raised", "IndexError") and name.lstrip("a").startswith(("delete_message", "delete_last")):
        return ("ok", None)
    if name in ("get_keys", "aget_keys"):
        return ("ok", sorted(k for k in got[1] if model.store[k]))
    return got


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_call_sequences_answer_as_simple_chat_store_does(store: ContextStore, seed: int) -> None:
    rng = random.Random(seed)
    model, ours = SimpleChatStore(), LanceChatStore(store=store)
    for n in range(60):
        name, args, kwargs = random_step(rng, model, n)
        ours_args = tuple([fresh(m) for m in a] if isinstance(a, list) else a for a in args)
        ours_args = tuple(fresh(a) if isinstance(a, ChatMessage) else a for a in ours_args)
        want = expected(model, name, args, kwargs)
        got = call(ours, name, ours_args, kwargs)
        if name in ("get_keys", "aget_keys") and got[0] == "ok":
            got = ("ok", sorted(got[1]))
        assert got == want, f"seed {seed} step {n}: {name}{args!r} {kwargs!r}"
        for key in KEYS:
            mine, theirs = ours.get_messages(key), model.get_messages(key)
            assert plain(mine) == plain(theirs), f"seed {seed} step {n} after {name}: key {key!r}"
            assert mine == theirs, f"seed {seed} step {n} after {name}: key {key!r}"


@pytest.mark.parametrize("idx", range(-5, 6))
def test_an_insert_position_counts_messages_not_other_records_of_the_key(
    store: ContextStore, idx: int
) -> None:
    # A record of the key's session that is not a chat message (here a core-written
    # observation) is not a message: get_messages and delete_message skip it, and
    # add_message(idx=...) counted it, putting the message one place too early.
    model, ours = SimpleChatStore(), LanceChatStore(store=store)
    run = ours._run("k")
    store.add([ContextRecord(run_id=run, role="observation", text_payload="seen")])
    for chats in (model, ours):
        chats.add_message("k", ChatMessage(role="user", content="0"))
    store.add([ContextRecord(run_id=run, role="observation", text_payload="seen again")])
    for chats in (model, ours):
        chats.add_message("k", ChatMessage(role="assistant", content="1"))
        chats.add_message("k", ChatMessage(role="user", content="2"))
        chats.add_message("k", ChatMessage(role="tool", content="new"), idx=idx)
    assert ours.get_messages("k") == model.get_messages("k")
    assert store.count(run, roles="observation") == 2


async def test_random_call_sequences_answer_as_the_sql_chat_store_does(store: ContextStore) -> None:
    # The async chat store beside LlamaIndex's SQLAlchemyChatStore (delete_message is left
    # out: SQLAlchemyChatStore's idx is its row id, ours a position).
    rng = random.Random(5)
    model = SQLAlchemyChatStore(table_name="chats", async_database_uri="sqlite+aiosqlite:///:memory:")
    ours = LanceAsyncChatStore(store=store)
    statuses = [None, MessageStatus.ACTIVE, MessageStatus.ARCHIVED]
    for n in range(80):
        key, which = rng.choice(KEYS[:3]), rng.randrange(11)
        status = rng.choice(statuses)
        messages = [random_message(rng, n * 10 + i, KWARGS[:3]) for i in range(rng.randrange(4))]
        count = rng.choice([0, 1, 2, 5])
        limit, offset = rng.choice([None, 0, 1, 2, 5]), rng.choice([None, 0, 1, 3])
        got = []
        for chats in (model, ours):
            batch = [fresh(m) for m in messages]
            written = status or MessageStatus.ACTIVE
            if which == 0:
                result: Any = await chats.set_messages(key, batch, status=written)
            elif which in (1, 2) and batch:
                result = await chats.add_message(key, batch[0], status=written)
            elif which == 3:
                result = await chats.add_messages(key, batch, status=written) if batch else None
            elif which == 4:
                result = await chats.get_messages(key, status=status, limit=limit, offset=offset)
            elif which == 5:
                result = await chats.count_messages(key, status=status)
            elif which == 6:
                result = await chats.delete_messages(key, status=status)
            elif which == 7:
                result = await chats.delete_oldest_messages(key, count)
            elif which == 8:
                result = await chats.archive_oldest_messages(key, count)
            else:
                result = sorted(await chats.get_keys())
            every = [plain(await chats.get_messages(key, status=s)) for s in (None, MessageStatus.ARCHIVED)]
            got.append((plain(result), every))
        assert got[1] == got[0], f"step {n} ({which})"


# ---------------------------------------------------------------------- memories
async def test_memory_on_the_async_chat_store_acts_as_on_its_default_store(store: ContextStore) -> None:
    # LlamaIndex's Memory flushes (archives) its oldest messages as the token limit is
    # passed; on our async chat store every answer matches its default SQL store's.
    # (Tuples and bytes in additional_kwargs are left out: the SQL store returns them as
    # JSON lists and strings, ours as they were put.)
    rng = random.Random(7)
    reference = Memory.from_defaults(session_id="s", token_limit=40, token_flush_size=8)
    ours = Memory.from_defaults(
        session_id="s", token_limit=40, token_flush_size=8, chat_store=LanceAsyncChatStore(store=store)
    )
    flushed = False
    for n in range(40):
        which = rng.randrange(8)
        reset = which == 5 and rng.random() < 0.3
        messages = [random_message(rng, n * 10 + i, KWARGS[:3]) for i in range(rng.randrange(1, 4))]
        status = rng.choice([None, MessageStatus.ACTIVE, MessageStatus.ARCHIVED])
        got = []
        for memory in (reference, ours):
            batch = [fresh(m) for m in messages]
            if which in (0, 1, 2):
                await memory.aput(batch[0])
            elif which == 3:
                await memory.aput_messages(batch)
            elif which == 4:
                await memory.aset(batch)
            elif reset:
                await memory.areset()
            got.append((plain(await memory.aget()), plain(await memory.aget_all(status=status))))
        assert got[1] == got[0], f"step {n} ({which})"
        flushed = flushed or bool(await reference.aget_all(status=MessageStatus.ARCHIVED))
    assert flushed, "the sequence should make Memory flush"


def test_lance_memory_windows_as_chat_memory_buffer_does_over_random_turns(store: ContextStore) -> None:
    # Plain text turns, system messages among them (no tool exchanges, and no leading
    # system message, which LanceMemory pins and ChatMemoryBuffer does not): the same
    # window for every limit and prefix.
    rng = random.Random(11)
    vocabulary = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]

    def turn(first: bool) -> ChatMessage:
        roles = ["user", "assistant"] if first else ["user", "assistant", "assistant", "system"]
        text = " ".join(rng.choices(vocabulary, k=rng.randrange(1, 6)))
        return ChatMessage(role=rng.choice(roles), content=text)

    for limit in (2, 6, 12):
        ours = LanceMemory.from_defaults(
            session_id=f"s{limit}", store=store, token_limit=limit, tokenizer_fn=words
        )
        reference = ChatMemoryBuffer.from_defaults(token_limit=limit, tokenizer_fn=words)
        for n in range(25):
            which = rng.randrange(6)
            empty = not reference.get_all()
            batch = [turn((empty or which == 4) and i == 0) for i in range(rng.randrange(1, 4))]
            for memory in (reference, ours):
                if which in (0, 1, 2):
                    memory.put(fresh(batch[0]))
                elif which == 3:
                    memory.put_messages([fresh(m) for m in batch])
                elif which == 4:
                    memory.set([fresh(m) for m in batch])
            if which == 5 and rng.random() < 0.2:
                reference.reset()
                ours.reset()
            initial = rng.randrange(0, limit + 1)
            assert answer(ours.get_all()) == answer(reference.get_all()), f"limit {limit} step {n}"
            assert answer(ours.get(initial_token_count=initial)) == answer(
                reference.get(initial_token_count=initial)
            ), f"limit {limit} step {n} initial {initial}"


@pytest.mark.parametrize("top_k", [0, 1])
def test_a_pinned_system_message_that_leaves_no_room_gives_way_to_the_turns(
    store: ContextStore, top_k: int
) -> None:
    # With the leading system message pinned nothing else fitted, so the newest message
    # came back alone (an assistant one), although a user turn and its answer fit the
    # limit: the window is then ChatMemoryBuffer's, without the system message.
    history = [system("theta gamma alpha zeta"), user("a b c d"), user("e f"), assistant("g h i")]
    memory = LanceMemory.from_defaults(
        session_id="s", store=store, token_limit=6, tokenizer_fn=words, semantic_top_k=top_k
    )
    memory.put_messages(history)
    reference = ChatMemoryBuffer.from_defaults(token_limit=6, tokenizer_fn=words, chat_history=history)
    assert answer(reference.get()) == [("user", "e f"), ("assistant", "g h i")]
    assert answer(memory.get()) == answer(reference.get())
    # room for the system message and a turn: it stays pinned first
    memory.set([*history, user("j")])
    assert answer(memory.get()) == [("system", "theta gamma alpha zeta"), ("user", "j")]
