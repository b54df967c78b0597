"""LanceRetriever's k: from the constructor, from search_kwargs, or per call."""

from __future__ import annotations

import pytest

from lance_context import ContextStore
from lance_context.langchain import LanceRetriever, LanceVectorStore


@pytest.fixture
def vs(store: ContextStore) -> LanceVectorStore:
    vs = LanceVectorStore(store=store, collection="docs")
    vs.add_texts(
        [f"document number {n} about versions" for n in range(6)], metadatas=[{"n": n} for n in range(6)]
    )
    return vs


@pytest.mark.parametrize("search_type", ["similarity", "mmr", "hybrid"])
def test_constructor_k_is_honoured_for_every_search_type(vs: LanceVectorStore, search_type: str) -> None:
    retriever = LanceRetriever(vectorstore=vs, search_type=search_type, k=2)
    assert len(retriever.invoke("versions")) == 2
    assert len(retriever.invoke("versions", k=5)) == 5  # a call's own k wins


def test_k_joins_the_other_search_arguments(vs: LanceVectorStore) -> None:
    retriever = vs.as_retriever(k=3, search_kwargs={"filter": {"n": {"$gte": 4}}})
    assert retriever.search_kwargs == {"filter": {"n": {"$gte": 4}}, "k": 3}
    assert sorted(d.metadata["n"] for d in retriever.invoke("versions")) == [4, 5]
    assert LanceRetriever(vectorstore=vs, k=1, search_kwargs={"k": 1}).k == 1


def test_bad_or_conflicting_k_is_refused(vs: LanceVectorStore) -> None:
    with pytest.raises(ValueError, match="disagree"):
        LanceRetriever(vectorstore=vs, k=2, search_kwargs={"k": 3})
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            LanceRetriever(vectorstore=vs, k=bad)
