"""Searches through every adapter can be recorded, and replay exactly; recording changes nothing they read."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

from lance_context import ContextStore, HashingEmbedder
from lance_context.langchain import LanceVectorStore as LCVectorStore
from lance_context.langgraph import LanceStore
from lance_context.llama_index import LanceEmbedding
from lance_context.llama_index import LanceVectorStore as LIVectorStore

pytestmark = pytest.mark.filterwarnings("ignore:`langchain-community` is being sunset:DeprecationWarning")

TEXTS = {
    "returns": "Returns are accepted within 30 days",
    "shipping": "Shipping to Europe takes 3 days",
    "payment": "We accept cards and bank transfers",
}


@pytest.fixture
def store(tmp_path: Path) -> ContextStore:
    return ContextStore.open(str(tmp_path / "memory.lance"), embedder=HashingEmbedder(64))


def replayed_exactly(store: ContextStore, query: str, count: int) -> None:
    log = store.search_log()
    assert len(log) == count and log[0].query == query and log[0].query_vector is not None
    assert store.replay(log[0].id).identical


def test_langchain_vector_store_and_retriever_record_when_asked(store: ContextStore) -> None:
    docs = LCVectorStore(store=store, collection="faq")
    docs.add_texts(list(TEXTS.values()), ids=list(TEXTS))
    version = store.version()

    plain = docs.similarity_search("how long is shipping", k=1)
    assert store.search_log() == []
    recorded = docs.similarity_search("how long is shipping", k=1, record=True)
    assert recorded == plain and recorded[0].metadata == {}  # nothing injected
    replayed_exactly(store, "how long is shipping", 1)
    assert store.search_log()[0].filters["run_id"] == "langchain.vectors:faq"

    docs.as_retriever(record=True, k=2).invoke("card payment")
    replayed_exactly(store, "card payment", 2)
    docs.as_retriever(search_type="hybrid", search_kwargs={"k": 1, "record": True}).invoke("returns 30 days")
    assert store.search_log()[0].mode == "hybrid"
    replayed_exactly(store, "returns 30 days", 3)
    docs.max_marginal_relevance_search("Europe", k=2, fetch_k=3, record=True)
    assert store.search_log()[0].options["mmr"] is True
    replayed_exactly(store, "Europe", 4)
    docs.as_retriever(search_type="similarity_score_threshold",
                      search_kwargs={"score_threshold": 0.0, "record": True}).invoke("bank")  # fmt: skip
    replayed_exactly(store, "bank", 5)
    assert store.version() == version  # recording wrote no store version


def test_llama_index_query_and_retriever_record_when_asked(store: ContextStore) -> None:
    embed = LanceEmbedding(HashingEmbedder(64))
    nodes = LIVectorStore(store=store, collection="docs")
    nodes.add([TextNode(id_=k, text=t, embedding=embed.get_text_embedding(t)) for k, t in TEXTS.items()])
    index = VectorStoreIndex.from_vector_store(nodes, embed_model=embed)

    index.as_retriever(similarity_top_k=1).retrieve("shipping to Europe")
    assert store.search_log() == []
    hits = index.as_retriever(similarity_top_k=2, vector_store_kwargs={"record": True}).retrieve("shipping")
    replayed_exactly(store, "shipping", 1)
    assert store.search_log()[0].ids == [nodes._record_id(h.node.node_id) for h in hits]

    text_query = VectorStoreQuery(
        query_str="cards", similarity_top_k=1, mode=VectorStoreQueryMode.TEXT_SEARCH
    )
    nodes.query(text_query, record=True)
    assert store.search_log()[0].mode == "text" and store.replay(store.search_log()[0].id).identical


async def test_langgraph_store_search_records_when_asked(store: ContextStore) -> None:
    memory = LanceStore(store=store)
    memory.put(("users", "u1"), "drink", {"text": "likes green tea"})
    memory.put(("users", "u1"), "city", {"text": "lives in Lisbon"})

    memory.search(("users", "u1"), query="green tea", limit=1)
    assert store.search_log() == []
    found = memory.search(("users", "u1"), query="green tea", limit=1, record=True)
    assert found[0].key == "drink"
    replayed_exactly(store, "green tea", 1)
    found = await memory.asearch(("users", "u1"), query="lives in Lisbon", limit=1, record=True)
    assert found[0].key == "city"
    replayed_exactly(store, "lives in Lisbon", 2)
    for n in range(6):  # items of many texts each: the search fetches more than once, and is logged once
        memory.put(("notes",), f"n{n}", {"tags": ["tea"] * 8}, index=["tags[*]"])
    assert len(memory.search(("notes",), query="tea", limit=5, record=True)) == 5
    assert [e.query for e in store.search_log()][:2] == ["tea", "lives in Lisbon"]
    replayed_exactly(store, "tea", 3)


def test_the_store_switch_records_every_adapters_search(store: ContextStore) -> None:
    docs = LCVectorStore(store=store, collection="faq")
    docs.add_texts(list(TEXTS.values()), ids=list(TEXTS))
    memory = LanceStore(store=store)
    memory.put(("users", "u1"), "drink", {"text": "likes green tea"})
    store.record_searches = True
    docs.similarity_search("returns", k=1)
    memory.search(("users", "u1"), query="tea", limit=1)
    assert [e.query for e in store.search_log()] == ["tea", "returns"]
    docs.similarity_search("returns", k=1, record=False)
    assert len(store.search_log()) == 2
