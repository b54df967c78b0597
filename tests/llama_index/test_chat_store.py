"""LanceChatStore (BaseChatStore) and LanceAsyncChatStore (the newer Memory's store)."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms import MockLLM
from llama_index.core.memory import ChatMemoryBuffer, ChatSummaryMemoryBuffer, Memory, VectorMemoryBlock
from llama_index.core.storage.chat_store.base_db import MessageStatus

from lance_context import ContextRecord, ContextStore, HashingEmbedder, InvalidFilterError, ReadOnlyError
from lance_context.adapters import LLAMA_INDEX_CHAT
from lance_context.llama_index import (
    LanceAsyncChatStore,
    LanceChatStore,
    LanceEmbedding,
    LanceMemory,
    LanceVectorStore,
)

from .conftest import assistant, user, words

HOSTILE_KEYS = ["k", "k%", "k_", "x' OR '1'='1", "k\\", "k\nl", "\u00fc\U0001f600", " ", "a/b/../c"]


def contents(messages: list[ChatMessage]) -> list[str | None]:
    return [m.content for m in messages]


def test_chat_store_basic_operations(store: ContextStore) -> None:
    chats = LanceChatStore(store=store)
    assert chats.get_messages("nobody") == []
    chats.add_message("a", user("one"))
    chats.add_message("a", assistant("two"))
    chats.add_message("a", user("zero"), idx=0)
    assert contents(chats.get_messages("a")) == ["zero", "one", "two"]
    assert chats.delete_message("a", 1) == user("one")
    assert chats.delete_message("a", 7) is None
    assert chats.delete_last_message("a") == assistant("two")
    assert contents(chats.get_messages("a")) == ["zero"]
    chats.set_messages("b", [user("b1"), assistant("b2")])
    assert sorted(chats.get_keys()) == ["a", "b"]
    assert contents(chats.delete_messages("b") or []) == ["b1", "b2"]
    assert chats.delete_messages("b") is None
    assert chats.get_keys() == ["a"]
    assert all(r.run_id.startswith(LLAMA_INDEX_CHAT.prefix) for r in store.records())


def test_messages_read_again_are_copies_a_caller_may_change(store: ContextStore) -> None:
    """Reads rebuild a message once per cached record and hand each caller a copy of its own."""
    chats = LanceChatStore(store=store)
    memory = LanceMemory.from_defaults(session_id="s", store=store)
    given = ChatMessage(role="user", content="hello", additional_kwargs={"tags": ["a"], "ctx": {"k": 1}})
    chats.add_message("k", given)
    memory.put(given)
    for _ in range(3):
        for read in (lambda: chats.get_messages("k"), memory.get_all, memory.get):
            [got] = read()
            assert got == given and got is not given
            got.blocks[0].text = "changed"  # type: ignore[union-attr]
            got.blocks.append(got.blocks[0])
            got.additional_kwargs["tags"].append("b")
            got.additional_kwargs["ctx"]["k"] = 2
            got.role = MessageRole.ASSISTANT
    chats.set_messages("k", [ChatMessage(role="user", content="new")])  # the same position, new content
    assert contents(chats.get_messages("k")) == ["new"]


def test_keys_never_include_other_adapters_sessions(store: ContextStore) -> None:
    LanceMemory.from_defaults(session_id="memory-session", store=store).put(user("hi"))
    chats = LanceChatStore(store=store)
    chats.add_message("chat-key", user("hello"))
    other = LanceChatStore(store=store, namespace="team-b/")
    other.add_message("chat-key", user("other team"))
    sneaky = LanceChatStore(store=store, namespace="team-b")
    sneaky.add_message(":chat-key", user("not team b"))  # cannot reach ("team-b:", "chat-key")
    assert chats.get_keys() == ["chat-key"]
    assert other.get_keys() == ["chat-key"]
    assert contents(chats.get_messages("chat-key")) == ["hello"]
    assert contents(other.get_messages("chat-key")) == ["other team"]


def test_keys_are_the_sessions_holding_a_message(store: ContextStore) -> None:
    chats = LanceChatStore(store=store)
    chats.add_message("chat", user("hello"))
    # Records written through the core into a key's session: a note is not a message,
    # a record with a chat role is one (get_messages shows it).
    notes, foreign = (LLAMA_INDEX_CHAT.run_id(k, scope=chats.namespace) for k in ("notes", "foreign"))
    store.add(ContextRecord.from_content("a summary", role="observation", run_id=notes))
    store.add(ContextRecord.from_content("from elsewhere", role="assistant", run_id=foreign))
    assert chats.get_messages("notes") == []
    assert contents(chats.get_messages("foreign")) == ["from elsewhere"]
    assert chats.get_keys() == ["chat", "foreign"]
    chats.add_message("notes", user("now a chat"))
    assert chats.get_keys() == ["chat", "foreign", "notes"]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_keys_round_trip_and_stay_isolated(store: ContextStore, key: str) -> None:
    chats = LanceChatStore(store=store)
    for neighbour in ("k", "k%", "x"):
        chats.add_message(neighbour, user(f"for {neighbour}"))
    chats.add_message(key, user(f"mine {key}"))
    expected = ([f"for {key}"] if key in ("k", "k%", "x") else []) + [f"mine {key}"]
    assert contents(chats.get_messages(key)) == expected
    assert key in chats.get_keys()
    chats.delete_messages(key)
    assert chats.get_messages(key) == []
    assert all(chats.get_messages(n) for n in ("k", "k%", "x") if n != key)


def test_bad_keys_are_refused(store: ContextStore) -> None:
    chats = LanceChatStore(store=store)
    with pytest.raises(InvalidFilterError):
        chats.get_messages("")
    with pytest.raises(InvalidFilterError):
        chats.add_message(None, user("x"))  # type: ignore[arg-type]


def test_chat_memory_buffer_switches_by_one_argument(store: ContextStore) -> None:
    chats = LanceChatStore(store=store)
    memory = ChatMemoryBuffer.from_defaults(
        token_limit=6, chat_store=chats, chat_store_key="user-1", tokenizer_fn=words
    )
    memory.put(user("a b"))
    memory.put(assistant("c d"))
    memory.put(user("e f g"))
    again = ChatMemoryBuffer.from_defaults(
        token_limit=6,
        chat_store=LanceChatStore(store=ContextStore.open(store.uri)),
        chat_store_key="user-1",
        tokenizer_fn=words,
    )
    assert contents(again.get_all()) == ["a b", "c d", "e f g"]
    assert contents(again.get()) == ["e f g"]


def test_chat_summary_memory_buffer_uses_the_store(store: ContextStore) -> None:
    chats = LanceChatStore(store=store)
    memory = ChatSummaryMemoryBuffer.from_defaults(
        llm=MockLLM(max_tokens=4), token_limit=12, chat_store=chats, chat_store_key="s", tokenizer_fn=words
    )
    for i in range(6):
        memory.put(user(f"question {i} is here"))
        memory.put(assistant(f"answer {i} is there"))
    window = memory.get()
    assert window[0].role == "system"  # older turns summarized
    assert window[-1].content == "answer 5 is there"
    assert len(chats.get_messages("s")) == len(window)


def test_chat_store_time_travel(store: ContextStore) -> None:
    chats = LanceChatStore(store=store)
    chats.set_messages("a", [user("v1")])
    version = store.version()
    chats.set_messages("a", [user("v2")])
    past = chats.at_version(version)
    assert contents(past.get_messages("a")) == ["v1"]
    with pytest.raises(ReadOnlyError):
        past.add_message("a", user("no"))


async def test_chat_store_async_twins(store: ContextStore) -> None:
    chats = LanceChatStore(store=store)
    await chats.aset_messages("a", [user("1")])
    await chats.async_add_message("a", assistant("2"))
    assert contents(await chats.aget_messages("a")) == ["1", "2"]
    assert await chats.aget_keys() == ["a"]
    assert await chats.adelete_last_message("a") == assistant("2")
    assert await chats.adelete_message("a", 0) == user("1")
    assert await chats.adelete_messages("a") is None


async def test_async_chat_store_statuses(store: ContextStore) -> None:
    chats = LanceAsyncChatStore(store=store)
    await chats.add_messages("s", [user(str(i)) for i in range(5)])
    await chats.add_message("s", user("old"), status=MessageStatus.ARCHIVED)
    assert await chats.count_messages("s") == 5
    assert await chats.count_messages("s", status=None) == 6
    archived = await chats.archive_oldest_messages("s", 2)
    assert contents(archived) == ["0", "1"]
    assert contents(await chats.get_messages("s")) == ["2", "3", "4"]
    assert contents(await chats.get_messages("s", status=MessageStatus.ARCHIVED)) == ["0", "1", "old"]
    assert contents(await chats.get_messages("s", status=None)) == ["0", "1", "2", "3", "4", "old"]
    assert contents(await chats.get_messages("s", status=None, limit=2, offset=1)) == ["1", "2"]
    assert contents(await chats.delete_oldest_messages("s", 1)) == ["2"]
    assert await chats.delete_message("s", 0) == user("0")
    await chats.delete_messages("s", status=MessageStatus.ARCHIVED)
    assert contents(await chats.get_messages("s", status=None)) == ["3", "4"]
    await chats.set_messages("s", [assistant("fresh")])
    assert contents(await chats.get_messages("s")) == ["fresh"]
    assert await chats.get_keys() == ["s"]
    await chats.delete_messages("s")
    assert await chats.get_keys() == []


async def test_newer_memory_persists_to_lance_and_archives_overflow(store: ContextStore) -> None:
    memory = Memory.from_defaults(
        session_id="user-7",
        chat_store=LanceAsyncChatStore(store=store),
        token_limit=40,
        chat_history_token_ratio=0.5,
        token_flush_size=8,
        tokenizer_fn=words,
    )
    for i in range(8):
        await memory.aput(user(f"question {i} about something"))
        await memory.aput(assistant(f"answer {i} to that"))
    active = await memory.aget()
    assert 0 < len(active) < 16 and active[-1].content == "answer 7 to that"
    reopened = Memory.from_defaults(
        session_id="user-7",
        chat_store=LanceAsyncChatStore(store=ContextStore.open(store.uri)),
        token_limit=40,
        tokenizer_fn=words,
    )
    assert contents(await reopened.aget()) == contents(active)
    everything = await reopened.aget_all()
    assert len(everything) == 16 and everything[0].content == "question 0 about something"


async def test_vector_memory_block_recalls_flushed_messages(store: ContextStore) -> None:
    embed_model = LanceEmbedding(HashingEmbedder(256))
    block = VectorMemoryBlock(
        vector_store=LanceVectorStore(store=store, collection="memory-blocks"),
        embed_model=embed_model,
        similarity_top_k=1,
        retrieval_context_window=2,  # query with the input and the last message
    )
    memory = Memory.from_defaults(
        session_id="user-9",
        chat_store=LanceAsyncChatStore(store=store),
        memory_blocks=[block],
        token_limit=60,
        chat_history_token_ratio=0.5,
        token_flush_size=10,
        tokenizer_fn=words,
    )
    await memory.aput(user("my favourite colour is teal"))
    await memory.aput(assistant("teal, noted"))
    for i in range(10):
        await memory.aput(user(f"unrelated chatter number {i}"))
        await memory.aput(assistant(f"reply number {i}"))
    messages = await memory.aget(input="what is my favourite colour")
    assert "my favourite colour is teal" in (messages[0].content or "")
    assert "my favourite colour is teal" not in contents(await memory.aget_all())[-4:]
