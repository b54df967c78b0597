"""More differential checks of the LangChain adapters against LangChain's references.

Found by running the same calls on ``InMemoryChatMessageHistory``, ``InMemoryCache``
and ``InMemoryRecordManager`` and on ours, edge case by edge case. Where the
reference accepts something we cannot store (a lone surrogate code point in an id),
ours must refuse it up front with a clear error and write nothing, never fail later
with a storage error.
"""

from __future__ import annotations

import base64
import dataclasses

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.documents import Document
from langchain_core.language_models import FakeListLLM
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, SystemMessageChunk, ToolMessage
from langchain_core.outputs import Generation

from lance_context import ContextStore, InvalidFilterError, InvalidRecordError
from lance_context.langchain import (
    LanceCache,
    LanceChatMessageHistory,
    LanceRecordManager,
    LanceSemanticCache,
)

from .conftest import TableEmbeddings

PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)
LONE = "a\ud800b"  # a lone surrogate: valid in a Python str, not storable as UTF-8


def test_a_session_id_that_cannot_be_stored_is_refused_when_the_history_is_made(
    store: ContextStore,
) -> None:
    before = store.version()
    with pytest.raises(InvalidRecordError, match="session_id .*lone surrogate"):
        LanceChatMessageHistory(LONE, store=store)
    assert store.version() == before


def test_a_leading_system_message_chunk_is_pinned_like_a_system_message(store: ContextStore) -> None:
    history = LanceChatMessageHistory("chunked-system", store=store)
    system = SystemMessageChunk(content="be brief", id="s")
    history.add_messages([system, *(HumanMessage(f"turn {n}") for n in range(5))])
    window = history.get_messages(last=2)
    assert window[0] == system
    assert [m.text for m in window[1:]] == ["turn 3", "turn 4"]


def test_a_leading_system_message_with_several_images_is_pinned_whole(store: ContextStore) -> None:
    """Its second image is an attachment record: the pinned message must bring it along."""
    image = {"type": "image", "base64": base64.b64encode(PNG).decode(), "mime_type": "image/png"}
    system = SystemMessage([{"type": "text", "text": "look"}, image, dict(image)])
    history = LanceChatMessageHistory("system-images", store=store)
    history.add_messages([system, HumanMessage("a"), AIMessage("b")])
    assert history.get_messages(last=1) == [system, AIMessage("b")]
    assert history.get_messages(max_tokens=10_000) == [system, HumanMessage("a"), AIMessage("b")]


def test_a_namespace_that_cannot_be_stored_is_refused_when_the_record_manager_is_made(
    store: ContextStore,
) -> None:
    with pytest.raises(InvalidRecordError, match="namespace .*lone surrogate"):
        LanceRecordManager(LONE, store=store)


def test_group_ids_that_cannot_be_stored_get_a_clear_error_and_write_nothing(store: ContextStore) -> None:
    records = LanceRecordManager("groups", store=store)
    records.update(["k"], group_ids=["g"])
    before = store.version()
    with pytest.raises(InvalidRecordError, match="group id .*lone surrogate"):
        records.update(["k", "j"], group_ids=["g", LONE])
    with pytest.raises(InvalidFilterError, match="not valid unicode: lone surrogate"):
        records.list_keys(group_ids=["g", LONE])
    assert store.version() == before
    assert records.list_keys(group_ids=["g"]) == ["k"]
    assert records.exists(["k", "j"]) == [True, False]


@pytest.mark.parametrize(
    ("kind", "prompt", "llm_string"),
    [("exact", "p", LONE), ("semantic", "p", LONE), ("semantic", LONE, "llm")],
)
def test_an_entry_that_cannot_be_stored_is_skipped_with_a_warning_not_raised(
    store: ContextStore, kind: str, prompt: str, llm_string: str
) -> None:
    """The reference caches it; ours cannot, so the model's answer must still reach its caller."""
    reference = InMemoryCache()
    reference.update(prompt, llm_string, [Generation(text="x")])
    assert reference.lookup(prompt, llm_string) == [Generation(text="x")]
    cache = LanceCache(store=store) if kind == "exact" else LanceSemanticCache(store=store)
    before = store.version()
    with pytest.warns(UserWarning, match="not cached: .*lone surrogate"):
        cache.update(prompt, llm_string, [Generation(text="x")])
    assert store.version() == before
    assert cache.lookup(prompt, llm_string) is None


def test_the_exact_cache_keeps_a_prompt_holding_a_lone_surrogate(store: ContextStore) -> None:
    cache = LanceCache(store=store)
    cache.update(LONE, "llm", [Generation(text="x")])
    assert cache.lookup(LONE, "llm") == [Generation(text="x")]
    assert cache.lookup("a", "llm") is None


async def test_an_llm_whose_prompt_cannot_be_stored_still_answers(store: ContextStore) -> None:
    """A plain LLM's cache key is its raw prompt (a chat model's is escaped JSON)."""
    llm = FakeListLLM(responses=["hello", "again"], cache=LanceSemanticCache(store=store))
    with pytest.warns(UserWarning, match="not cached"):
        assert llm.invoke(LONE) == "hello"
    with pytest.warns(UserWarning, match="not cached"):
        assert await llm.ainvoke(LONE) == "again"


def test_a_semantic_lookup_of_a_cached_prompt_returns_its_own_entry(store_path: str) -> None:
    """As with ``InMemoryCache``: update(p, v) then lookup(p) gives v, even when another
    cached prompt embeds to the very same vector (a tie the nearest search cannot break)."""
    embeddings = TableEmbeddings({"hello": [1, 0, 0], "hello!": [1, 0, 0], "bye": [0, 1, 0]})
    store = ContextStore.open(store_path, embedder=None)
    cache = LanceSemanticCache(embeddings, store=store, score_threshold=0.99)
    reference = InMemoryCache()
    for c in (reference, cache):
        c.update("hello", "llm", [Generation(text="first")])
        c.update("hello!", "llm", [Generation(text="second")])
        c.update("bye", "llm", [Generation(text="third")])
    fresh = LanceSemanticCache(embeddings, store=store, score_threshold=0.99)
    for prompt in ("hello", "hello!", "bye"):
        assert fresh.lookup(prompt, "llm") == reference.lookup(prompt, "llm")
        assert cache.lookup(prompt, "llm") == reference.lookup(prompt, "llm")
    assert fresh.lookup("hello", "other llm") is None


def test_a_retriever_tools_document_artifact_reads_back_as_documents(store: ContextStore) -> None:
    """As in the reference, a tool message's Documents come back as Documents."""
    history = LanceChatMessageHistory("artifacts", store=store)
    reference = InMemoryChatMessageHistory()
    docs = [Document("doc", metadata={"n": 1}, id="d1"), {"nested": [Document("other")]}]
    messages = [HumanMessage("find it"), ToolMessage("found", tool_call_id="c1", artifact=docs)]
    for chat in (history, reference):
        chat.add_messages(messages)
    assert LanceChatMessageHistory("artifacts", store=store).messages == reference.messages


def test_a_stored_artifact_builds_nothing_but_documents(store: ContextStore) -> None:
    history = LanceChatMessageHistory("artifacts", store=store)
    history.add_messages([ToolMessage("found", tool_call_id="c1", artifact=[Document("doc")])])
    [record] = store.records(history.run_id)
    payload = record.metadata["langchain_message"]
    payload["data"]["artifact"][0]["id"] = ["langchain_core", "messages", "ai", "AIMessage"]
    store.upsert(dataclasses.replace(record, metadata={**record.metadata, "langchain_message": payload}))
    with pytest.raises(ValueError, match="AIMessage"):
        LanceChatMessageHistory("artifacts", store=store).get_messages()


def test_a_message_that_would_not_read_back_names_the_field_and_writes_nothing(store: ContextStore) -> None:
    history = LanceChatMessageHistory("artifacts", store=store)
    history.add_messages([HumanMessage("find it")])
    before = store.version()
    tool = ToolMessage("found", tool_call_id="c1", artifact=("a", "tuple"))
    with pytest.raises(InvalidRecordError, match=r"message 1 \(tool\) .*its artifact holds"):
        history.add_messages([AIMessage("looking"), tool])
    assert store.version() == before
    assert history.messages == [HumanMessage("find it")]
