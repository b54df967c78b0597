"""The langchain-tests standard suite for LanceVectorStore, unmodified (sync and async twins)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from lance_context.langchain import LanceVectorStore


class TestLanceVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:  # type: ignore[override]
        """An empty store on a fresh dataset for every test."""
        yield LanceVectorStore(self.get_embeddings(), uri=str(tmp_path / "standard.lance"))
