"""The langchain-tests retriever suite, unmodified, on LanceRetriever: similarity, MMR and hybrid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests

from lance_context import ContextStore, HashingEmbedder
from lance_context.langchain import LanceRetriever, LanceVectorStore

TEXTS = [
    "Lance stores versions of a dataset",
    "a retriever returns documents for a query",
    "hybrid search fuses vector and full-text ranks",
    "maximal marginal relevance picks diverse documents",
    "the store keeps every document of a collection",
    "Porto is a city in Portugal",
]


class _LanceRetrieverSuite(RetrieversIntegrationTests):
    search_type = "similarity"

    @pytest.fixture(autouse=True)
    def _vectorstore(self, tmp_path: Path) -> None:
        store = ContextStore.open(str(tmp_path / "retriever.lance"), embedder=HashingEmbedder(64))
        self.vectorstore = LanceVectorStore(store=store, collection="docs")
        self.vectorstore.add_texts(TEXTS)

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return LanceRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"vectorstore": self.vectorstore, "search_type": self.search_type}

    @property
    def retriever_query_example(self) -> str:
        return "which document does a retriever return for a query?"


class TestLanceRetrieverSimilarity(_LanceRetrieverSuite):
    search_type = "similarity"


class TestLanceRetrieverMMR(_LanceRetrieverSuite):
    search_type = "mmr"


class TestLanceRetrieverHybrid(_LanceRetrieverSuite):
    search_type = "hybrid"
