"""LanceVectorStore and its retriever side by side with LangChain's ``InMemoryVectorStore``: second pass.

Each test runs the same calls on ours and on the reference, with the same deterministic
fake embeddings, and compares what a user sees: ids, documents, scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore, VectorStore

from lance_context.langchain import LanceVectorStore

EMBEDDING = DeterministicFakeEmbedding(size=8)
TEXTS = ["apple", "banana", "cherry", "date", "elder"]
IDS = [f"i{n}" for n in range(len(TEXTS))]


@pytest.fixture
def pair(tmp_path: Path) -> tuple[InMemoryVectorStore, LanceVectorStore]:
    """The reference and ours, both empty."""
    return InMemoryVectorStore(EMBEDDING), LanceVectorStore(EMBEDDING, uri=str(tmp_path / "vs.lance"))


def _seeded(
    pair: tuple[InMemoryVectorStore, LanceVectorStore],
) -> tuple[InMemoryVectorStore, LanceVectorStore]:
    for vs in pair:
        vs.add_texts(TEXTS, metadatas=[{"n": n} for n in range(len(TEXTS))], ids=IDS)
    return pair


def _count(vs: VectorStore) -> int:
    return len(vs.similarity_search("anything", k=100))


@pytest.mark.parametrize("ids", [None, []])
async def test_add_documents_with_no_ids_given_keeps_the_documents_own_ids(
    pair: tuple[InMemoryVectorStore, LanceVectorStore], ids: list[str] | None
) -> None:
    reference, ours = pair
    docs = [Document("a", id="x", metadata={"m": 1}), Document("b", id="y")]
    assert ours.add_documents(docs, ids=ids) == reference.add_documents(docs, ids=ids) == ["x", "y"]
    more = [Document("c", id="z")]
    assert await ours.aadd_documents(more, ids=ids) == await reference.aadd_documents(more, ids=ids) == ["z"]
    docs[0].metadata["m"] = 2  # stored copies do not change with the caller's documents
    assert [d.metadata for d in ours.get_by_ids(["x", "y", "z"])] == [{"m": 1}, {}, {}]
    assert _count(ours) == _count(reference) == 3


def test_empty_metadatas_and_ids_lists_mean_none_given(
    pair: tuple[InMemoryVectorStore, LanceVectorStore],
) -> None:
    reference, ours = pair
    got = [vs.add_texts(["a", "b"], metadatas=[], ids=[]) for vs in pair]
    assert all(len(ids) == 2 for ids in got)
    for vs, ids in zip(pair, got, strict=True):
        assert [(d.page_content, d.metadata) for d in vs.get_by_ids(ids)] == [("a", {}), ("b", {})]
    with pytest.raises(ValueError, match="got 1 ids for 2 texts"):
        ours.add_texts(["c", "d"], ids=["only-one"])
    assert _count(ours) == _count(reference) == 2


async def test_from_texts_and_from_documents_take_batch_size_as_the_reference_does(tmp_path: Path) -> None:
    docs = [Document("a", id="x"), Document("b", id="y")]
    reference = InMemoryVectorStore.from_documents(docs, EMBEDDING, batch_size=1)
    ours = LanceVectorStore.from_documents(docs, EMBEDDING, batch_size=1, uri=str(tmp_path / "a.lance"))
    assert ours.get_by_ids(["y", "x"]) == reference.get_by_ids(["y", "x"])
    ours = await LanceVectorStore.afrom_texts(
        ["a"], EMBEDDING, ids=["x"], batch_size=1, uri=str(tmp_path / "b.lance")
    )
    assert ours.get_by_ids(["x"]) == [Document("a", id="x")]
    with pytest.raises(TypeError, match="batch_sise"):  # a misspelt argument is still refused
        LanceVectorStore.from_texts(["a"], EMBEDDING, batch_sise=1, uri=str(tmp_path / "c.lance"))


async def test_similarity_search_with_score_by_vector_matches_the_reference(
    pair: tuple[InMemoryVectorStore, LanceVectorStore],
) -> None:
    reference, ours = _seeded(pair)
    vector = EMBEDDING.embed_query("cherry")
    want = reference.similarity_search_with_score_by_vector(vector, k=3)
    for got in (
        ours.similarity_search_with_score_by_vector(vector, k=3),
        await ours.asimilarity_search_with_score_by_vector(vector, k=3),
    ):
        assert [d for d, _ in got] == [d for d, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
    only_even = ours.similarity_search_with_score_by_vector(vector, k=5, filter={"n": {"$in": [0, 2, 4]}})
    assert [d.id for d, _ in only_even] == [
        d.id
        for d, _ in reference.similarity_search_with_score_by_vector(vector, k=5)
        if d.metadata["n"] % 2 == 0
    ]


SHARED_KWARGS: dict[str, Any] = {"k": 2, "fetch_k": 4, "lambda_mult": 0.3, "score_threshold": 0.0}


@pytest.mark.parametrize("search_type", ["similarity", "mmr"])
async def test_switching_search_type_alone_keeps_working_with_the_same_search_kwargs(
    pair: tuple[InMemoryVectorStore, LanceVectorStore], search_type: str
) -> None:
    reference, ours = _seeded(pair)
    want = [
        d.id
        for d in reference.as_retriever(search_type=search_type, search_kwargs=SHARED_KWARGS).invoke("kiwi")
    ]
    retriever = ours.as_retriever(search_type=search_type, search_kwargs=SHARED_KWARGS)
    assert [d.id for d in retriever.invoke("kiwi")] == want
    assert [d.id for d in await retriever.ainvoke("kiwi")] == want


@pytest.mark.parametrize("search_type", ["similarity_score_threshold", "hybrid"])
def test_the_other_search_types_ignore_the_arguments_they_do_not_take(
    pair: tuple[InMemoryVectorStore, LanceVectorStore], search_type: str
) -> None:
    _, ours = _seeded(pair)
    retriever = ours.as_retriever(search_type=search_type, search_kwargs=SHARED_KWARGS)
    assert len(retriever.invoke("kiwi")) == 2
    with pytest.raises(TypeError, match="lambda_mul"):  # a misspelt argument still fails loudly
        ours.as_retriever(search_kwargs={"k": 2, "lambda_mul": 0.3}).invoke("kiwi")


def test_an_empty_id_gets_a_new_one_as_in_the_reference(
    pair: tuple[InMemoryVectorStore, LanceVectorStore],
) -> None:
    for vs in pair:
        ids = vs.add_texts(["a", "b"], ids=["", "kept"])
        assert ids[0] and ids[0] != "" and ids[1] == "kept"
        assert vs.get_by_ids([""]) == []
        docs = vs.add_documents([Document("c", id=""), Document("d", id="")])
        assert len(set(docs)) == 2 and "" not in docs
        assert [d.page_content for d in vs.get_by_ids([ids[0], *docs])] == ["a", "c", "d"]
