"""Pluggable reranking: a callable, a cross-encoder, a LangChain compressor, a LlamaIndex postprocessor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle

from lance_context import ContextStore, RecallOptions, SearchError


@pytest.fixture
def store(turns_store: ContextStore) -> ContextStore:
    """The five chat turns of ``conftest.TURNS``."""
    return turns_store


def _year_first(query: str, texts: Sequence[str]) -> list[float | None]:
    """Puts turns naming a year first and drops turns about the weather."""
    return [None if "weather" in t else float(any(c.isdigit() for c in t)) for t in texts]


class YearFirst(BaseDocumentCompressor):
    """A LangChain document compressor: keeps documents not about the weather, years first."""

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        kept = [d for d in documents if "weather" not in d.page_content]
        return sorted(kept, key=lambda d: not any(c.isdigit() for c in d.page_content))


class YearFirstNodes(BaseNodePostprocessor):
    """A LlamaIndex node postprocessor doing the same."""

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        kept = [n for n in nodes if "weather" not in n.node.get_content()]
        return sorted(kept, key=lambda n: not any(c.isdigit() for c in n.node.get_content()))


class PairScorer:
    """Anything with ``predict(pairs)``, as a sentence-transformers CrossEncoder."""

    def predict(self, pairs: list[tuple[str, str]]) -> list[float]:
        return [-100.0 if "weather" in t else float(any(c.isdigit() for c in t)) for _, t in pairs]


@pytest.mark.parametrize("reranker", [_year_first, YearFirst(), YearFirstNodes(), PairScorer()], ids=type)
def test_any_reranker_reorders_and_drops(store: ContextStore, reranker: Any) -> None:
    plain = store.recall("weather Oslo", run_id="chat", k=5, before=0, after=0)
    assert plain[0].match.text_payload is not None and "weather" in plain[0].match.text_payload
    options = RecallOptions(reranker=reranker, before=0, after=0)
    found = store.recall("weather Oslo", run_id="chat", k=2, options=options)
    texts = [r.match.text_payload or "" for r in found]
    assert texts[0] == "she moved to Oslo in 2019"  # the year first, the weather dropped
    if not isinstance(reranker, PairScorer):  # a score of -100 still ranks; None and dropping do not
        assert all("weather" not in t for t in texts)
    assert [r.score for r in found] == sorted((r.score for r in found), reverse=True)


def test_rerank_depth_bounds_what_is_reranked(store: ContextStore) -> None:
    seen: list[int] = []

    def count(query: str, texts: Sequence[str]) -> list[float]:
        seen.append(len(texts))
        return [0.0] * len(texts)

    store.recall("Oslo", run_id="chat", k=1, options=RecallOptions(reranker=count, rerank_depth=2))
    assert seen == [2]


def test_bad_rerankers_are_refused(store: ContextStore) -> None:
    with pytest.raises(TypeError, match="a reranker must be"):
        store.recall("Oslo", run_id="chat", options=RecallOptions(reranker=42))
    with pytest.raises(SearchError, match="returned 1 scores for"):
        store.recall("Oslo", run_id="chat", options=RecallOptions(reranker=lambda q, t: [1.0]))
    with pytest.raises(ValueError, match="rerank_depth"):
        RecallOptions(rerank_depth=0)
