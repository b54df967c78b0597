"""LanceVectorStore beyond the standard suite: ids, collections, filters, scores, MMR, hybrid."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import HumanMessage
from langchain_core.vectorstores import VectorStoreRetriever

from lance_context import ContextRecord, ContextStore, HashingEmbedder
from lance_context.langchain import LanceChatMessageHistory, LanceRetriever, LanceVectorStore

from .conftest import TableEmbeddings

# Unit vectors with known cosine similarities to the query "q" = (1, 0, 0).
ANGLES = {"same": 0.0, "close": 30.0, "near-dup": 31.0, "side": 90.0, "opposite": 180.0, "far": 120.0}
TABLE = {name: (math.cos(math.radians(a)), math.sin(math.radians(a)), 0.0) for name, a in ANGLES.items()}
TABLE["q"] = (1.0, 0.0, 0.0)
TABLE["diverse"] = (math.cos(math.radians(40)), 0.0, math.sin(math.radians(40)))


@pytest.fixture
def table_store(store_path: str) -> LanceVectorStore:
    return LanceVectorStore(TableEmbeddings(TABLE), uri=store_path)


def test_metadata_comes_back_exactly_and_documents_carry_ids(store: ContextStore) -> None:
    vs = LanceVectorStore(store=store)
    metadata = {"z": 1, "a": {"nested": [1, 2.5, None, True]}, "big": 2**80, "id": "user-meta-id", "é": "ü"}
    docs = [Document("a document about lances", metadata=metadata, id="doc-1"), Document("no metadata")]
    originals = [d.model_copy(deep=True) for d in docs]
    ids = vs.add_documents(docs)
    assert ids[0] == "doc-1" and ids[1] and ids[1] != "doc-1"
    assert docs == originals  # inputs are not mutated
    [found] = vs.get_by_ids(["doc-1"])
    assert found == Document("a document about lances", metadata=metadata, id="doc-1")
    assert list(found.metadata) == list(metadata)  # key order kept, nothing injected
    assert vs.get_by_ids([ids[1]])[0].metadata == {}


def test_existing_ids_upsert_and_missing_ids_are_ignored(store: ContextStore) -> None:
    vs = LanceVectorStore(store=store)
    vs.add_texts(["first text", "second text"], ids=["1", "2"])
    vs.add_texts(["first text, edited"], metadatas=[{"rev": 2}], ids=["1"])
    assert vs.get_by_ids(["2", "missing", "1"]) == [
        Document("second text", id="2"),
        Document("first text, edited", metadata={"rev": 2}, id="1"),
    ]
    assert store.count("langchain.vectors:default") == 2
    assert vs.delete(["missing", "also-missing"]) is True
    vs.add_texts(["dup a", "dup b"], ids=["3", "3"])  # the last one of a batch wins
    assert vs.get_by_ids(["3"]) == [Document("dup b", id="3")]


def test_collections_are_isolated_with_the_same_ids(store: ContextStore) -> None:
    docs = LanceVectorStore(store=store, collection="docs")
    notes = LanceVectorStore(store=store, collection="notes")
    docs.add_texts(["the docs version of x"], ids=["x"])
    notes.add_texts(["the notes version of x"], ids=["x"])
    assert docs.get_by_ids(["x"]) == [Document("the docs version of x", id="x")]
    assert notes.similarity_search("version of x", k=5) == [Document("the notes version of x", id="x")]
    notes.delete(["x"])
    assert notes.get_by_ids(["x"]) == []
    assert docs.get_by_ids(["x"]) == [Document("the docs version of x", id="x")]
    docs.add_texts(["another"], ids=["y"])
    docs.delete()  # ids=None empties only this collection
    assert docs.similarity_search("x", k=5) == []
    notes.add_texts(["kept"], ids=["z"])
    assert notes.get_by_ids(["z"]) == [Document("kept", id="z")]


def test_vector_store_and_chat_history_share_a_store_without_leaks(store: ContextStore) -> None:
    vs = LanceVectorStore(store=store)
    history = LanceChatMessageHistory("langchain.vectors:default", store=store)  # the collection's run id
    vs.add_texts(["a document about the moon"], ids=["moon"])
    history.add_messages([HumanMessage("a message about the moon")])
    assert history.messages == [HumanMessage("a message about the moon")]
    assert vs.similarity_search("moon", k=5) == [Document("a document about the moon", id="moon")]
    assert history.search("moon", k=5) == [HumanMessage("a message about the moon")]
    assert history.search("moon", k=5, mode="vector") == [HumanMessage("a message about the moon")]


def test_filters_apply_to_metadata_before_top_k(table_store: LanceVectorStore) -> None:
    names = ["same", "close", "near-dup", "side", "far", "opposite"]
    metadatas = [
        {"lang": "en", "year": 2020, "id": 1, "tags": ["a"], "info": {"level": 1}},
        {"lang": "en", "year": 2021, "id": 2, "tags": ["b"], "info": {"level": 2}},
        {"lang": "fr", "year": 2022, "id": 3, "tags": ["a", "b"], "info": {"level": 3}},
        {"lang": "fr", "year": 2023, "id": 4, "tags": [], "info": {"level": 4}},
        {"lang": "de", "year": 2024, "id": 5, "tags": ["c"], "info": {"level": 5}},
        {"lang": "en", "year": 2025, "id": 6, "tags": ["a"], "info": {"level": 6}},
    ]
    table_store.add_texts(names, metadatas=metadatas, ids=names)

    def ids(filter: dict[object, object], k: int = 1) -> list[str | None]:
        return [d.id for d in table_store.similarity_search("q", k=k, filter=filter)]

    assert ids({"lang": "de"}) == ["far"]  # the only match is far from the query: still found with k=1
    assert ids({"id": 4}) == ["side"]  # "id" is the document's metadata key, not the record id
    assert ids({"year": {"$gte": 2023}}, k=3) == ["side", "far", "opposite"]
    assert ids({"lang": {"$in": ["fr", "de"]}}, k=2) == ["near-dup", "side"]
    assert ids({"$or": [{"lang": "de"}, {"year": 2025}]}, k=5) == ["far", "opposite"]
    assert ids({"$not": {"lang": "en"}}, k=1) == ["near-dup"]
    assert ids({"$and": [{"lang": "en"}, {"tags": {"$contains": "a"}}]}, k=5) == ["same", "opposite"]
    assert ids({("info", "level"): {"$lt": 3}}, k=5) == ["same", "close"]
    assert ids({"missing": {"$exists": True}}) == []
    assert ids({}, k=1) == ["same"]
    mmr = table_store.max_marginal_relevance_search("q", k=2, fetch_k=6, filter={"lang": "fr"})
    assert {d.id for d in mmr} == {"near-dup", "side"}


def test_scores_are_cosine_similarity_and_relevance_is_in_0_1(table_store: LanceVectorStore) -> None:
    names = ["same", "close", "side", "far", "opposite"]
    table_store.add_texts(names, ids=names)
    scored = table_store.similarity_search_with_score("q", k=5)
    assert [d.id for d, _ in scored] == names
    for (doc, score), name in zip(scored, names, strict=True):
        assert doc.id == name
        assert score == pytest.approx(math.cos(math.radians(ANGLES[name])), abs=1e-5)
    relevance = table_store.similarity_search_with_relevance_scores("q", k=5)
    expected = [1.0, math.cos(math.radians(30)), 0.0, 0.0, 0.0]
    assert [r for _, r in relevance] == pytest.approx(expected, abs=1e-5)
    assert all(0.0 <= r <= 1.0 for _, r in relevance)
    fn = table_store._select_relevance_score_fn()
    assert (fn(1.0000001), fn(0.42), fn(-0.3)) == (1.0, 0.42, 0.0)
    above = table_store.similarity_search_with_relevance_scores("q", k=5, score_threshold=0.5)
    assert [d.id for d, _ in above] == ["same", "close"]


def test_search_by_vector(table_store: LanceVectorStore) -> None:
    table_store.add_texts(["same", "side"], ids=["same", "side"])
    assert [d.id for d in table_store.similarity_search_by_vector([0.0, 1.0, 0.0], k=1)] == ["side"]


def test_mmr_prefers_diverse_documents(table_store: LanceVectorStore) -> None:
    names = ["close", "near-dup", "diverse"]
    table_store.add_texts(names, ids=names)
    assert [d.id for d in table_store.similarity_search("q", k=2)] == ["close", "near-dup"]
    mmr = table_store.max_marginal_relevance_search("q", k=2, fetch_k=3, lambda_mult=0.3)
    assert [d.id for d in mmr] == ["close", "diverse"]
    by_vector = table_store.max_marginal_relevance_search_by_vector([1.0, 0.0, 0.0], k=2, lambda_mult=0.3)
    assert [d.id for d in by_vector] == ["close", "diverse"]
    assert [d.id for d in table_store.max_marginal_relevance_search("q", k=2, lambda_mult=1.0)] == [
        "close",
        "near-dup",
    ]


def test_retriever_search_types(store: ContextStore) -> None:
    vs = LanceVectorStore(store=store)
    texts = {
        "rollback": "restore an older version of the dataset after a bad write",
        "branch": "create a branch to experiment without touching main",
        "code": "error code LX-4242 means the commit conflicted",
        "index": "build a vector index when the table grows large",
    }
    vs.add_texts(list(texts.values()), ids=list(texts))
    similarity = vs.as_retriever(search_kwargs={"k": 1})
    assert isinstance(similarity, LanceRetriever) and isinstance(similarity, VectorStoreRetriever)
    assert [d.id for d in similarity.invoke("restore an older version")] == ["rollback"]
    mmr = vs.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 4})
    assert len(mmr.invoke("version dataset")) == 2
    threshold = vs.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.5}
    )
    assert [d.id for d in threshold.invoke("error code LX-4242 means the commit conflicted")] == ["code"]
    hybrid = vs.as_retriever(search_type="hybrid", search_kwargs={"k": 2, "filter": {"$not": {"x": 1}}})
    assert hybrid.invoke("LX-4242")[0].id == "code"
    assert vs.search("LX-4242", "hybrid", k=1)[0].id == "code"
    assert vs.search("restore an older version", "similarity", k=1)[0].id == "rollback"
    with pytest.raises(ValueError, match="not allowed"):
        vs.as_retriever(search_type="semantic")


async def test_async_retriever_and_twins(store: ContextStore) -> None:
    vs = LanceVectorStore(store=store)
    ids = await vs.aadd_texts(
        ["alpha document", "beta document"], metadatas=[{"n": 1}, {"n": 2}], ids=["a", "b"]
    )
    assert ids == ["a", "b"]
    assert await vs.aadd_documents([Document("gamma document", id="c")]) == ["c"]
    assert [d.id for d in await vs.aget_by_ids(["c", "a"])] == ["c", "a"]
    assert (await vs.asimilarity_search("alpha document", k=1))[0].id == "a"
    scored = await vs.asimilarity_search_with_score("beta document", k=1)
    assert scored[0][0].id == "b" and scored[0][1] == pytest.approx(1.0, abs=1e-5)
    relevance = await vs.asimilarity_search_with_relevance_scores("beta document", k=1)
    assert relevance[0][1] == pytest.approx(1.0, abs=1e-5)
    vector = HashingEmbedder(64).embed_texts(["gamma document"])[0].tolist()
    assert (await vs.asimilarity_search_by_vector(vector, k=1))[0].id == "c"
    assert len(await vs.amax_marginal_relevance_search("document", k=2, fetch_k=3)) == 2
    assert len(await vs.amax_marginal_relevance_search_by_vector(vector, k=2)) == 2
    assert (await vs.ahybrid_search("gamma", k=1))[0].id == "c"
    hybrid = vs.as_retriever(search_type="hybrid", search_kwargs={"k": 1, "filter": {"n": 2}})
    assert [d.id for d in await hybrid.ainvoke("document")] == ["b"]
    assert [d.id for d in await vs.as_retriever(search_kwargs={"k": 1}).ainvoke("alpha document")] == ["a"]
    assert await vs.adelete(["a", "missing"]) is True
    assert await vs.aget_by_ids(["a"]) == []


def test_from_texts_and_from_documents(store_path: str) -> None:
    embedding = DeterministicFakeEmbedding(size=8)
    vs = LanceVectorStore.from_texts(
        ["one", "two"],
        embedding,
        metadatas=[{"n": 1}, {"n": 2}],
        ids=["1", "2"],
        uri=store_path,
        collection="c",
    )
    assert vs.get_by_ids(["2"]) == [Document("two", metadata={"n": 2}, id="2")]
    again = LanceVectorStore.from_documents(
        [Document("three", id="3")], embedding, uri=store_path, collection="c"
    )
    assert [d.id for d in again.get_by_ids(["1", "2", "3"])] == ["1", "2", "3"]
    assert again.embeddings is embedding
    assert again.similarity_search("three", k=1) == [Document("three", id="3")]
    with pytest.raises(TypeError, match="unexpected"):
        LanceVectorStore.from_texts(["x"], embedding, uri=store_path, nonsense=True)


async def test_afrom_texts_and_afrom_documents(store_path: str) -> None:
    embedding = DeterministicFakeEmbedding(size=8)
    vs = await LanceVectorStore.afrom_texts(["one"], embedding, ids=["1"], uri=store_path)
    await LanceVectorStore.afrom_documents([Document("two", id="2")], embedding, store=vs.store)
    assert [d.id for d in vs.get_by_ids(["1", "2"])] == ["1", "2"]


def test_store_embedder_is_used_when_no_embedding_given(store: ContextStore) -> None:
    vs = LanceVectorStore(store=store)
    assert vs.embeddings is None
    vs.add_texts(["lance columnar format"], ids=["x"])
    record = store.get("langchain.vectors:default/x")
    assert record is not None and record.embedding is not None
    assert record.embedding.tolist() == pytest.approx(
        HashingEmbedder(64).embed_texts(["lance columnar format"])[0]
    )


def test_shared_store_without_embedder_embeds_here(store_path: str) -> None:
    plain = ContextStore.open(store_path, embedder=None, dimension=8)
    embedding = DeterministicFakeEmbedding(size=8)
    vs = LanceVectorStore(embedding, store=plain)
    vs.add_texts(["alpha", "beta"], ids=["a", "b"])
    assert [d.id for d in vs.similarity_search("beta", k=1)] == ["b"]
    assert [d.id for d in vs.max_marginal_relevance_search("alpha", k=1)] == ["a"]
    assert [d.id for d in vs.hybrid_search("alpha", k=1)] == ["a"]  # the query is embedded here too
    with pytest.raises(ValueError, match="has no embedder"):
        LanceVectorStore(store=plain)


def test_documents_persist_across_processes_worth_of_reopening(store_path: str) -> None:
    embedding = DeterministicFakeEmbedding(size=8)
    LanceVectorStore(embedding, uri=store_path).add_texts(["persisted"], ids=["p"])
    reopened = LanceVectorStore(embedding, uri=store_path)
    assert reopened.get_by_ids(["p"]) == [Document("persisted", id="p")]
    assert reopened.similarity_search("persisted", k=1) == [Document("persisted", id="p")]


def test_each_add_is_one_version(store: ContextStore) -> None:
    vs = LanceVectorStore(store=store)
    before = store.version()
    vs.add_texts([f"text {n}" for n in range(20)])
    vs.add_texts(["a", "b"], ids=["a", "b"])
    assert store.version() == before + 2


@pytest.mark.parametrize("own_embedding", [False, True])
def test_empty_page_content_is_still_a_searchable_document(store_path: str, own_embedding: bool) -> None:
    if own_embedding:
        plain = ContextStore.open(store_path, embedder=None, dimension=8)
        vs = LanceVectorStore(DeterministicFakeEmbedding(size=8), store=plain)
    else:
        vs = LanceVectorStore(store=ContextStore.open(store_path, embedder=HashingEmbedder(16)))
    vs.add_texts(["", "something"], ids=["empty", "full"])
    assert [d.id for d in vs.similarity_search("", k=1)] == ["empty"]
    assert vs.get_by_ids(["empty"]) == [Document("", id="empty")]


def test_langchain_embeddings_on_a_shared_store_that_has_no_vectors_yet(tmp_path: Path) -> None:
    shared = ContextStore.open(str(tmp_path / "plain.lance"), embedder=None)  # a checkpointer's store, say
    shared.add(ContextRecord.from_content("a note without a vector", run_id="notes"))
    vs = LanceVectorStore(DeterministicFakeEmbedding(size=16), store=shared, collection="c")

    vs.add_texts(["lisbon tiles", "kyoto temples"], ids=["l", "k"])

    assert shared.dimension == 16 and [d.id for d in vs.similarity_search("kyoto temples", k=1)] == ["k"]


def test_k_zero_returns_nothing_as_langchains_own_stores_do(tmp_path: Path) -> None:
    vs = LanceVectorStore(DeterministicFakeEmbedding(size=8), uri=str(tmp_path / "k.lance"))
    vs.add_texts(["one", "two"])
    assert vs.similarity_search("one", k=0) == [] and vs.similarity_search_with_score("one", k=0) == []
    assert vs.max_marginal_relevance_search("one", k=0) == []
    assert len(vs.similarity_search("one", k=1)) == 1
