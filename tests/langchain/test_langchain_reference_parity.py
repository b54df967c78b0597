"""The LangChain adapters side by side with LangChain's own in-memory backends.

Each test runs the same calls on an adapter and on the reference LangChain ships
(``InMemoryVectorStore``, ``InMemoryChatMessageHistory``, ``InMemoryByteStore``,
``InMemoryRecordManager``) and compares what a user sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.indexing import InMemoryRecordManager, index
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.stores import InMemoryByteStore
from langchain_core.vectorstores import InMemoryVectorStore, VectorStore

from lance_context import ContextStore, InvalidFilterError
from lance_context.langchain import (
    LanceByteStore,
    LanceChatMessageHistory,
    LanceRecordManager,
    LanceVectorStore,
)

EMBEDDING = DeterministicFakeEmbedding(size=8)
TEXTS = ["apple", "banana", "cherry", "date", "elder"]
IDS = [f"i{n}" for n in range(len(TEXTS))]


def _seeded(vs: VectorStore) -> VectorStore:
    vs.add_texts(TEXTS, metadatas=[{"n": n} for n in range(len(TEXTS))], ids=IDS)
    return vs


@pytest.fixture
def pair(tmp_path: Path) -> tuple[VectorStore, LanceVectorStore]:
    """The reference and ours, holding the same five documents."""
    ours = LanceVectorStore(EMBEDDING, uri=str(tmp_path / "vs.lance"), collection="parity")
    _seeded(ours)
    return _seeded(InMemoryVectorStore(EMBEDDING)), ours


def _ids(docs: list[Document]) -> list[str | None]:
    return [d.id for d in docs]


def test_get_by_ids_returns_one_document_per_id_asked(pair: tuple[VectorStore, LanceVectorStore]) -> None:
    reference, ours = pair
    asked = ["i1", "missing", "i1", "i0", "i1"]
    assert ours.get_by_ids(asked) == reference.get_by_ids(asked)
    assert _ids(ours.get_by_ids(asked)) == ["i1", "i1", "i0", "i1"]
    first, second = ours.get_by_ids(["i2", "i2"])
    first.metadata["n"] = "edited"  # each repeat is its own document
    assert second.metadata == {"n": 2}


async def test_aget_by_ids_repeats_too(pair: tuple[VectorStore, LanceVectorStore]) -> None:
    reference, ours = pair
    assert await ours.aget_by_ids(["i3", "i3"]) == await reference.aget_by_ids(["i3", "i3"])


@pytest.mark.parametrize("fetch_k", [0, 1, 2, 3])
def test_mmr_chooses_among_fetch_k_documents_even_when_fetch_k_is_below_k(
    pair: tuple[VectorStore, LanceVectorStore], fetch_k: int
) -> None:
    reference, ours = pair
    expected = _ids(reference.max_marginal_relevance_search("zebra", k=4, fetch_k=fetch_k))
    assert len(expected) == fetch_k
    assert _ids(ours.max_marginal_relevance_search("zebra", k=4, fetch_k=fetch_k)) == expected
    vector = EMBEDDING.embed_query("zebra")
    assert (
        _ids(ours.max_marginal_relevance_search_by_vector(vector, k=4, fetch_k=fetch_k))
        == _ids(reference.max_marginal_relevance_search_by_vector(vector, k=4, fetch_k=fetch_k))
        == expected
    )
    kwargs: dict[str, Any] = {"k": 4, "fetch_k": fetch_k}
    retrieved = ours.as_retriever(search_type="mmr", search_kwargs=kwargs).invoke("zebra")
    assert _ids(retrieved) == _ids(
        reference.as_retriever(search_type="mmr", search_kwargs=kwargs).invoke("zebra")
    )


@pytest.mark.parametrize("lambda_mult", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_mmr_picks_the_same_documents(pair: tuple[VectorStore, LanceVectorStore], lambda_mult: float) -> None:
    reference, ours = pair
    for query in ("zebra", "kiwi"):
        args: dict[str, Any] = {"k": 3, "fetch_k": 5, "lambda_mult": lambda_mult}
        assert _ids(ours.max_marginal_relevance_search(query, **args)) == _ids(
            reference.max_marginal_relevance_search(query, **args)
        )


def test_writes_reads_and_similarity_match_the_reference(tmp_path: Path) -> None:
    reference = InMemoryVectorStore(EMBEDDING)
    ours = LanceVectorStore(EMBEDDING, uri=str(tmp_path / "vs.lance"))
    for vs in (reference, ours):
        vs.add_texts(["a", "b", "c"], ids=["x", "y", "x"])  # the last one of a batch wins
        vs.add_documents([Document("re-added", metadata={"m": 1}, id="y"), Document("kept", id="z")])
        vs.delete(["unknown", "z", "z"])
    asked = ["x", "y", "z"]
    assert ours.get_by_ids(asked) == reference.get_by_ids(asked)
    for k in (0, 1, 5):
        got = ours.similarity_search_with_score("c", k=k)
        want = reference.similarity_search_with_score("c", k=k)
        assert [d for d, _ in got] == [d for d, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)


def test_a_callable_filter_is_refused_with_the_dict_form_named(
    pair: tuple[VectorStore, LanceVectorStore],
) -> None:
    _, ours = pair
    with pytest.raises(InvalidFilterError, match=r"dict on metadata keys, such as \{'topic': 'x'\}"):
        ours.similarity_search("apple", filter=lambda doc: True)  # type: ignore[arg-type]
    assert _ids(ours.similarity_search("apple", k=5, filter={"n": {"$gt": 2}})) == ["i3", "i4"]


def test_a_string_given_for_a_list_is_refused_and_writes_nothing(store: ContextStore) -> None:
    vs = LanceVectorStore(store=store)
    vs.add_texts(["one", "two"], ids=["a", "b"])
    kv = LanceByteStore(store=store)
    kv.mset([("a", b"1"), ("b", b"2")])
    records = LanceRecordManager("ns", store=store)
    records.update(["a", "b"])
    before = store.version()
    refusals: list[Any] = [
        lambda: vs.add_texts("ab"),  # would add one document per character
        lambda: vs.add_texts(["x", "y"], ids="ab"),  # type: ignore[arg-type]  # would overwrite documents "a" and "b"
        lambda: vs.delete("ab"),  # type: ignore[arg-type]  # would delete documents "a" and "b"
        lambda: vs.get_by_ids("ab"),
        lambda: kv.mget("ab"),
        lambda: kv.mdelete("ab"),
        lambda: records.update("ab"),
        lambda: records.exists("ab"),
        lambda: records.delete_keys("ab"),
    ]
    for call in refusals:
        with pytest.raises(TypeError, match="got the string 'ab'"):
            call()
    with pytest.raises(ValueError, match="group_ids must be a list"):
        records.update(["a", "b"], group_ids="gg")  # type: ignore[arg-type]
    assert store.version() == before
    assert _ids(vs.get_by_ids(["a", "b"])) == ["a", "b"]
    assert kv.mget(["a", "b"]) == [b"1", b"2"]
    assert records.exists(["a", "b"]) == [True, True]


MESSAGES: list[BaseMessage] = [
    SystemMessage("be brief", id="s"),
    HumanMessage("hi", id="h1", name="bob", additional_kwargs={"x": [1]}),
    AIMessage(
        "",
        id="a1",
        tool_calls=[{"name": "f", "args": {"a": 1}, "id": "c1", "type": "tool_call"}],
        response_metadata={"model": "m"},
        usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
    ),
    ToolMessage("result", tool_call_id="c1", artifact={"k": [1]}, status="error"),
    AIMessage(
        [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    ),
    ChatMessage(content="hmm", role="critic"),
]


async def test_chat_history_reads_back_what_the_reference_holds(store: ContextStore) -> None:
    reference = InMemoryChatMessageHistory()
    ours = LanceChatMessageHistory("parity", store=store)
    for history in (reference, ours):
        history.add_messages(MESSAGES[:3])
        history.add_message(MESSAGES[3])
        await history.aadd_messages(MESSAGES[4:])
    assert ours.messages == reference.messages == MESSAGES
    assert await ours.aget_messages() == await reference.aget_messages()
    for history in (reference, ours):
        await history.aclear()
        history.add_user_message("again")
    assert ours.messages == reference.messages


def test_byte_store_matches_the_reference(store: ContextStore) -> None:
    reference, ours = InMemoryByteStore(), LanceByteStore(store=store)
    for kv in (reference, ours):
        kv.mset([("ab", b"1"), ("ac", b""), ("b", b"3"), ("a%", b"4")])
        kv.mdelete(["missing", "b", "b"])
    assert ours.mget(["ac", "b", "ab", "ab"]) == reference.mget(["ac", "b", "ab", "ab"])
    for prefix in (None, "", "a", "a%", "zz"):
        assert list(ours.yield_keys(prefix=prefix)) == list(reference.yield_keys(prefix=prefix))


def test_index_with_the_record_manager_matches_the_reference(tmp_path: Path) -> None:
    ours_vs = LanceVectorStore(EMBEDDING, uri=str(tmp_path / "vs.lance"))
    ours = (LanceRecordManager("ns", store=ours_vs.store), ours_vs)
    reference = (InMemoryRecordManager("ns"), InMemoryVectorStore(EMBEDDING))
    first = [Document(t, metadata={"source": s}) for t, s in [("a", "1"), ("b", "1"), ("c", "2"), ("a", "1")]]
    second = [Document("a2", metadata={"source": "1"}), Document("c", metadata={"source": "2"})]
    results = []
    for records, vs in (reference, ours):
        results.append(
            [
                index(
                    first, records, vs, cleanup="incremental", source_id_key="source", key_encoder="sha256"
                ),
                index(
                    second, records, vs, cleanup="incremental", source_id_key="source", key_encoder="sha256"
                ),
                index(second[:1], records, vs, cleanup="full", key_encoder="sha256"),
                sorted(d.page_content for d in vs.similarity_search("a", k=10)),
            ]
        )
    assert results[0] == results[1]
    assert results[1][-1] == ["a2"]
