"""Bad input to the LangChain adapters: clear errors, nothing half-written, no leaks."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from lance_context import (
    ContextStore,
    EmbedderMismatchError,
    EmbeddingError,
    HashingEmbedder,
    InvalidFilterError,
    InvalidRecordError,
    UnsupportedContentError,
)
from lance_context.adapters import LANGCHAIN_HISTORY
from lance_context.langchain import LanceChatMessageHistory, LanceVectorStore

HOSTILE_SESSIONS = [
    "it's",
    'say "hi"',
    "100%",
    "%_%",
    "x' OR '1'='1",
    "a\\b",
    "line\nbreak",
    "東京-セッション",
    "emoji-🦜🔗",
    "nul\x00byte",
    "s" * 10_000,
    " ",
    "default",
]


class CustomMessage(BaseMessage):
    """A message type LangChain cannot rebuild from a dict."""

    type: str = "custom"


# ---------------------------------------------------------------------- sessions
def test_empty_or_non_string_session_ids_are_refused(store: ContextStore) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        LanceChatMessageHistory("", store=store)
    for bad in (None, 42, b"bytes"):
        with pytest.raises(TypeError, match="session_id must be a str"):
            LanceChatMessageHistory(bad, store=store)  # type: ignore[arg-type]


def test_hostile_session_ids_are_stored_safely_and_isolated(store: ContextStore) -> None:
    histories = [LanceChatMessageHistory(s, store=store) for s in HOSTILE_SESSIONS]
    for n, h in enumerate(histories):
        h.add_messages([HumanMessage(f"message {n}"), AIMessage(f"reply {n}")])
    for n, h in enumerate(histories):
        assert [m.text for m in h.messages] == [f"message {n}", f"reply {n}"]
        found = {m.text for m in h.search(f"message {n}", k=10)}
        assert found == {f"message {n}", f"reply {n}"}
    assert set(store.run_ids()) == {LANGCHAIN_HISTORY.run_id(s) for s in HOSTILE_SESSIONS}
    histories[4].clear()  # the SQL-injection-looking one
    assert histories[4].messages == []
    for n, h in enumerate(histories):
        if n != 4:
            assert len(h.messages) == 2


def test_a_session_named_like_a_prefix_sees_nothing_of_others(store: ContextStore) -> None:
    LanceChatMessageHistory("user-1", store=store).add_messages([HumanMessage("secret of user-1")])
    LanceChatMessageHistory("user-10", store=store).add_messages([HumanMessage("secret of user-10")])
    assert [m.text for m in LanceChatMessageHistory("user-1", store=store).messages] == ["secret of user-1"]
    assert LanceChatMessageHistory("user-%", store=store).messages == []
    assert LanceChatMessageHistory("user-", store=store).search("secret", k=5) == []


# ---------------------------------------------------------------------- messages
def assert_nothing_written(store: ContextStore, version: int) -> None:
    assert store.version() == version
    assert store.count() == 0


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (CustomMessage(content="hello"), "type 'custom'"),
        (HumanMessage("x", additional_kwargs={"when": dt.datetime(2024, 1, 1)}), "JSON-serializable"),
        (HumanMessage("x", additional_kwargs={"obj": object()}), "JSON-serializable"),
        (HumanMessage("x", additional_kwargs={"s": {1, 2}}), "JSON-serializable"),
        (HumanMessage("x", additional_kwargs={"nan": float("nan")}), "JSON-serializable"),
        (HumanMessage("x", additional_kwargs={"t": (1, 2)}), "would not read back equal"),
        (HumanMessage("x", additional_kwargs={"k": {1: "int key"}}), "would not read back equal"),
        (ToolMessage("x", tool_call_id="c", artifact=object()), "JSON-serializable"),
        (AIMessage("x", response_metadata={"raw": b"\x00bytes"}), "JSON-serializable"),
    ],
    ids=["unknown-type", "datetime", "object", "set", "nan", "tuple", "int-key", "artifact", "bytes"],
)
def test_messages_that_cannot_round_trip_are_refused_whole(
    store: ContextStore, message: BaseMessage, match: str
) -> None:
    h = LanceChatMessageHistory("s1", store=store)
    before = store.version()
    with pytest.raises(InvalidRecordError, match=match):
        h.add_messages([HumanMessage("valid first"), message])
    assert_nothing_written(store, before)


@pytest.mark.parametrize("item", ["plain string", {"role": "user", "content": "hi"}, ("human", "hi"), None])
def test_non_messages_are_refused(store: ContextStore, item: Any) -> None:
    h = LanceChatMessageHistory("s1", store=store)
    before = store.version()
    with pytest.raises(UnsupportedContentError, match="not a LangChain BaseMessage"):
        h.add_messages([item])
    assert isinstance(UnsupportedContentError("x"), TypeError)
    assert_nothing_written(store, before)


# ---------------------------------------------------------------------- vector store
def test_wrong_embedding_dimensions_give_clear_errors(store: ContextStore, store_path: str) -> None:
    vs = LanceVectorStore(store=store)
    vs.add_texts(["a document"])
    with pytest.raises(EmbeddingError, match="3 dimensions, the store expects 64"):
        vs.similarity_search_by_vector([0.1, 0.2, 0.3])
    with pytest.raises(EmbeddingError):
        vs.max_marginal_relevance_search_by_vector([0.1] * 65)
    with pytest.raises(EmbedderMismatchError):
        LanceVectorStore(DeterministicFakeEmbedding(size=64), store=store)
    other = str(store_path) + "-plain"
    ContextStore.open(other, embedder=None, dimension=64)
    with pytest.raises(EmbedderMismatchError, match="8-dimensional"):
        LanceVectorStore(DeterministicFakeEmbedding(size=8), store=ContextStore.open(other, embedder=None))
    with pytest.raises(EmbedderMismatchError):
        LanceVectorStore(DeterministicFakeEmbedding(size=8), uri=store_path)  # built with hashing


def test_vector_store_bad_arguments(store: ContextStore) -> None:
    vs = LanceVectorStore(store=store)
    before = store.version()
    with pytest.raises(ValueError, match="metadatas"):
        vs.add_texts(["a", "b"], metadatas=[{}])
    with pytest.raises(ValueError, match="ids"):
        vs.add_texts(["a", "b"], ids=["1"])
    with pytest.raises(TypeError, match="document ids must be str"):
        vs.add_texts(["a"], ids=[1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="texts must be str"):
        vs.add_texts([b"bytes"])  # type: ignore[list-item]
    with pytest.raises(InvalidRecordError, match="JSON-serializable"):
        vs.add_texts(["a"], metadatas=[{"when": dt.date(2024, 1, 1)}])
    with pytest.raises(InvalidRecordError, match="keys must be str"):
        vs.add_texts(["a"], metadatas=[{1: "x"}])  # type: ignore[dict-item]
    with pytest.raises(InvalidRecordError, match="would not come back as given"):
        vs.add_texts(["a"], metadatas=[{"span": (1, 2)}])  # a tuple would come back as a list
    with pytest.raises(TypeError, match="unexpected arguments"):
        vs.similarity_search("a", k=1, filtre={"x": 1})
    assert store.version() == before
    for bad_filter in ({"topic": {"$regex": ".*"}}, {"$where": "1=1"}, {"": 1}, ["not", "a", "dict"]):
        with pytest.raises(InvalidFilterError):
            vs.similarity_search("a", filter=bad_filter)  # type: ignore[arg-type]


@pytest.mark.parametrize("collection", ["", "a/b", "../up", "x y", "c" * 129, "ünï"])
def test_invalid_collection_names(store: ContextStore, collection: str) -> None:
    with pytest.raises(ValueError, match="invalid collection"):
        LanceVectorStore(store=store, collection=collection)


def test_hostile_document_ids_and_metadata_values_are_stored_safely(store: ContextStore) -> None:
    vs = LanceVectorStore(store=store)
    ids = ["it's", "100%", "x' OR '1'='1", "🦜", "a/b/c", "\\'"]
    vs.add_texts([f"doc {n}" for n in range(len(ids))], metadatas=[{"v": i} for i in ids], ids=ids)
    assert [d.id for d in vs.get_by_ids(ids)] == ids
    assert [d.metadata for d in vs.similarity_search("doc", k=10, filter={"v": "x' OR '1'='1"})] == [
        {"v": "x' OR '1'='1"}
    ]
    vs.delete(["x' OR '1'='1"])
    assert sorted(d.id or "" for d in vs.get_by_ids(ids)) == sorted(i for i in ids if i != "x' OR '1'='1")


def test_history_without_embedder_store(store_path: str) -> None:
    ContextStore.open(store_path, embedder=HashingEmbedder(16))
    h = LanceChatMessageHistory("s", uri=store_path)  # reopens with the recorded embedder
    h.add_messages([HumanMessage("hello")])
    assert h.store.embedder is not None and h.search("hello", k=1) == [HumanMessage("hello")]
