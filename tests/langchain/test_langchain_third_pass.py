"""The LangChain adapters beside the vector store, third pass: edge cases a user meets.

Each test compares with what LangChain's own in-memory backends do
(``InMemoryChatMessageHistory``, ``InMemoryByteStore``, ``InMemoryCache``,
``InMemoryRecordManager``) where they have an answer, and otherwise checks that bad
input gets a clear error and writes nothing.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.documents import Document
from langchain_core.indexing import InMemoryRecordManager
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    HumanMessageChunk,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.stores import InMemoryByteStore

from lance_context import ContextStore, InvalidRecordError
from lance_context.adapters import LANGCHAIN_CACHE
from lance_context.langchain import (
    LanceByteStore,
    LanceCache,
    LanceChatMessageHistory,
    LanceDocumentStore,
    LanceRecordManager,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(24))
PNG_B64 = base64.b64encode(PNG).decode()
GIF = b"GIF89a" + bytes(range(10))


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _every_kind_of_message() -> list[BaseMessage]:
    return [
        SystemMessage("be brief", id="sys-1"),
        HumanMessage(
            [
                {"type": "text", "text": "what is this?"},
                {"type": "image", "base64": PNG_B64, "mime_type": "image/png"},
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:image/png;base64,{PNG_B64}", "detail": "low"},
                },
                {"type": "image", "base64": GIF},
            ],
            name="ada",
            id="h-1",
            additional_kwargs={"trace": [1, {"nested": None}], "flag": True},
        ),
        AIMessage(
            "",
            id="a-1",
            tool_calls=[{"name": "look", "args": {"q": "x"}, "id": "call-1", "type": "tool_call"}],
            invalid_tool_calls=[
                {
                    "name": "bad",
                    "args": "{oops",
                    "id": "call-2",
                    "error": "bad json",
                    "type": "invalid_tool_call",
                }
            ],
            usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
            response_metadata={"model_name": "fake", "finish_reason": "tool_calls"},
        ),
        ToolMessage("a picture", tool_call_id="call-1", name="look", artifact={"k": [1, 2]}, status="error"),
        AIMessageChunk(
            "partial",
            tool_call_chunks=[
                {"name": "f", "args": '{"a"', "id": "call-3", "index": 0, "type": "tool_call_chunk"}
            ],
        ),
        ChatMessage("noted", role="critic"),
        FunctionMessage("42", name="answer"),
        HumanMessageChunk("chunk"),
        AIMessage([{"type": "text", "text": "done"}, {"type": "reasoning", "reasoning": "because"}]),
        HumanMessage(""),
    ]


# ---------------------------------------------------------------------- chat history
async def test_every_message_field_reads_back_as_the_reference_holds_it(store: ContextStore) -> None:
    messages = _every_kind_of_message()
    reference = InMemoryChatMessageHistory()
    ours = LanceChatMessageHistory("fidelity", store=store)
    for history in (reference, ours):
        history.add_messages(messages[:4])
        await history.aadd_messages(messages[4:])
    assert ours.messages == reference.messages == messages
    assert await ours.aget_messages() == await reference.aget_messages()
    assert [type(m) for m in ours.messages] == [type(m) for m in messages]


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image", "base64": PNG_B64, "mime_type": ""},
        {"type": "image", "base64": PNG, "mime_type": ""},
        {"type": "image", "source": {"type": "base64", "media_type": "", "data": PNG_B64}},
    ],
    ids=["base64", "bytes", "anthropic-source"],
)
def test_an_image_block_with_an_empty_mime_type_is_kept_as_given(
    store: ContextStore, block: dict[str, Any]
) -> None:
    message = HumanMessage([{"type": "text", "text": "look"}, block])
    reference = InMemoryChatMessageHistory()
    ours = LanceChatMessageHistory("blank-mime", store=store)
    for history in (reference, ours):
        history.add_messages([message])
    assert ours.messages == reference.messages == [message]
    (record,) = store.records(ours.run_id)
    assert record.content_type == "image/png"  # the record's type comes from the bytes
    assert record.binary_payload == PNG


def test_a_message_nested_too_deeply_gets_a_clear_error_and_writes_nothing(store: ContextStore) -> None:
    history = LanceChatMessageHistory("deep", store=store)
    history.add_messages([HumanMessage("kept")])
    before = store.version()
    for deep in (
        HumanMessage("x", additional_kwargs={"deep": _nested(5000)}),
        AIMessage("x", response_metadata={"deep": _nested(1200)}),
    ):
        with pytest.raises(InvalidRecordError, match="message 1 .* nests too deeply"):
            history.add_messages([HumanMessage("ok"), deep])
    assert store.version() == before
    assert history.messages == [HumanMessage("kept")]


@pytest.mark.parametrize("other", [b"raw bytes", {"when": b"x"}])
def test_an_artifact_holding_documents_and_an_unserializable_object_is_refused_clearly(
    store: ContextStore, other: object
) -> None:
    history = LanceChatMessageHistory("artifact", store=store)
    before = store.version()
    message = ToolMessage("found", tool_call_id="c1", artifact=[Document("page"), other])
    with pytest.raises(InvalidRecordError, match="message 0 \\(tool\\) cannot be stored: its artifact"):
        history.add_messages([message])
    assert store.version() == before
    assert history.messages == []


def test_sessions_with_look_alike_ids_never_see_each_other(store: ContextStore) -> None:
    ids = ["a", "a%", "a_", "a'", 'a"', "a\\", "a:b", "a%3Ab", "A", "a "]
    histories = {i: LanceChatMessageHistory(i, store=store) for i in ids}
    for session_id, history in histories.items():
        history.add_messages([HumanMessage(f"from {session_id!r}"), AIMessage(f"to {session_id!r}")])
    histories["a"].clear()
    for session_id, history in histories.items():
        expected = (
            []
            if session_id == "a"
            else [HumanMessage(f"from {session_id!r}"), AIMessage(f"to {session_id!r}")]
        )
        assert history.messages == expected
        assert history.get_messages(last=1) == expected[-1:]
        found = history.search(f"from {session_id!r}", k=10, mode="vector")
        assert all(m in expected for m in found)


# ---------------------------------------------------------------------- key-value stores
KEYS = [
    "",
    "a",
    "a%",
    "a_",
    "a%b",
    "a_b",
    "ab",
    "a'b",
    'a"b',
    "a\\b",
    "a\\",
    "a\\%",
    "a:b",
    "A",
    "é",
    "a\nb",
    "a*",
]
PREFIXES = [None, "", "a", "a%", "a_", "a\\", "a'", 'a"', "a:", "A", "é", "%", "_", "\\", "'", "zz"]


async def test_key_value_store_matches_the_reference_for_literal_prefixes(store: ContextStore) -> None:
    reference, ours = InMemoryByteStore(), LanceByteStore("third", store=store)
    for kv in (reference, ours):
        kv.mset([(k, k.encode()) for k in KEYS])
        kv.mdelete(["missing", "a", "a", "nope%"])
        await kv.amdelete(["also-missing"])
        kv.mset([("a", b"again"), ("a_b", b"changed")])
    assert ours.mget([*KEYS, "missing"]) == reference.mget([*KEYS, "missing"])
    assert await ours.amget(KEYS) == await reference.amget(KEYS)
    for prefix in PREFIXES:
        assert list(ours.yield_keys(prefix=prefix)) == list(reference.yield_keys(prefix=prefix)), prefix
        assert [k async for k in ours.ayield_keys(prefix=prefix)] == [
            k async for k in reference.ayield_keys(prefix=prefix)
        ]


def test_deleting_only_missing_keys_changes_nothing(store: ContextStore) -> None:
    kv = LanceByteStore("third", store=store)
    kv.mset([("x", b"1")])
    before = store.version()
    kv.mdelete(["y", "x%", "x_", ""])
    assert store.version() == before
    assert kv.mget(["x"]) == [b"1"]


def test_a_document_nested_too_deeply_gets_a_clear_error_and_writes_nothing(store: ContextStore) -> None:
    docs = LanceDocumentStore("third", store=store)
    before = store.version()
    with pytest.raises(ValueError, match="'deep' nests too deeply"):
        docs.mset([("ok", Document("fine")), ("deep", Document("x", metadata={"v": _nested(5000)}))])
    assert store.version() == before
    assert docs.mget(["ok", "deep"]) == [None, None]


# ---------------------------------------------------------------------- LLM cache
async def test_the_exact_cache_answers_as_the_reference_does(store: ContextStore) -> None:
    reference, ours = InMemoryCache(), LanceCache("third", store=store)
    values: list[list[Generation]] = [
        [],
        [Generation(text="plain", generation_info={"finish_reason": "stop"})],
        [
            ChatGeneration(
                message=AIMessage(
                    "hi",
                    id="run-1",
                    usage_metadata={"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
                )
            )
        ],
    ]
    for cache in (reference, ours):
        for n, value in enumerate(values):
            cache.update(f"prompt {n}", "llm", value)
        await cache.aupdate("", "", [Generation(text="empty keys")])
    for prompt, llm in [
        ("prompt 0", "llm"),
        ("prompt 1", "llm"),
        ("prompt 2", "llm"),
        ("", ""),
        ("prompt 1", "other"),
    ]:
        assert ours.lookup(prompt, llm) == reference.lookup(prompt, llm)
        assert await ours.alookup(prompt, llm) == await reference.alookup(prompt, llm)
    for cache in (reference, ours):
        await cache.aclear()
    assert ours.lookup("prompt 1", "llm") is reference.lookup("prompt 1", "llm") is None


def test_an_answer_nested_too_deeply_is_not_cached_and_still_reaches_the_caller(store: ContextStore) -> None:
    cache = LanceCache("third", store=store)
    reply = AIMessage("deep answer", response_metadata={"trace": _nested(1200)})
    model = GenericFakeChatModel(messages=iter([reply, AIMessage("second")]), cache=cache)
    before = store.version()
    with pytest.warns(UserWarning, match="not cached: .* nests too deeply"):
        assert model.invoke("hello").content == "deep answer"
    assert store.version() == before
    assert model.invoke("hello").content == "second"  # a miss: the model answered again


def test_a_cache_entry_too_deep_to_revive_is_a_miss(
    store: ContextStore, caplog: pytest.LogCaptureFixture
) -> None:
    cache = LanceCache("third", store=store)
    cache.update("p", "llm", [Generation(text="ok")])
    [record] = store.records(where={"run_id": {"$prefix": LANGCHAIN_CACHE.prefix}})
    record.binary_payload = json.dumps(["[" * 5000 + "]" * 5000]).encode()
    store.upsert(record)
    assert cache.lookup("p", "llm") is None
    assert "could not be read" in caplog.text


# ---------------------------------------------------------------------- record manager
GROUPS = ["1", "1.0", "true", "null", "a'b", 'a"b', "a\\b", "%", "_", "", "é", "a\nb", "\\u0041", "A"]


def test_record_manager_group_filters_match_the_reference(store: ContextStore) -> None:
    ours, reference = LanceRecordManager("n'%_\\", store=store), InMemoryRecordManager("n'%_\\")
    keys = [f"k{n}" for n in range(len(GROUPS))] + ["no-group"]
    for records in (ours, reference):
        records.update(keys, group_ids=[*GROUPS, None])
        records.delete_keys(["k0", "missing"])
    for group in GROUPS:
        assert ours.list_keys(group_ids=[group]) == reference.list_keys(group_ids=[group]), group
    assert sorted(ours.list_keys(group_ids=GROUPS[:4])) == sorted(reference.list_keys(group_ids=GROUPS[:4]))
    assert ours.exists(["k0", "k1", "no-group", "k1"]) == reference.exists(["k0", "k1", "no-group", "k1"])
