"""The langchain-tests key-value suites, unmodified, on LanceByteStore and LanceDocumentStore."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import BaseStoreAsyncTests, BaseStoreSyncTests

from lance_context import ContextStore, HashingEmbedder
from lance_context.langchain import LanceByteStore, LanceDocumentStore


def _store(tmp_path: Path) -> ContextStore:
    return ContextStore.open(str(tmp_path / "kv.lance"), embedder=HashingEmbedder(16))


BYTES = (b"foo", b"\x00\xffbar", b"")
DOCUMENTS = (
    Document(page_content="foo", metadata={"n": 1}),
    Document(page_content="bar", metadata={"nested": {"a": [1, 2]}}, id="doc-bar"),
    Document(page_content="buzz ☃"),
)


class TestLanceByteStoreSync(BaseStoreSyncTests[bytes]):
    @pytest.fixture
    def kv_store(self, tmp_path: Path) -> LanceByteStore:
        return LanceByteStore(store=_store(tmp_path))

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return BYTES


class TestLanceByteStoreAsync(BaseStoreAsyncTests[bytes]):
    @pytest.fixture
    async def kv_store(self, tmp_path: Path) -> LanceByteStore:
        return LanceByteStore(store=_store(tmp_path))

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return BYTES


class TestLanceDocumentStoreSync(BaseStoreSyncTests[Document]):
    @pytest.fixture
    def kv_store(self, tmp_path: Path) -> LanceDocumentStore:
        return LanceDocumentStore(store=_store(tmp_path))

    @pytest.fixture
    def three_values(self) -> tuple[Document, Document, Document]:
        return DOCUMENTS


class TestLanceDocumentStoreAsync(BaseStoreAsyncTests[Document]):
    @pytest.fixture
    async def kv_store(self, tmp_path: Path) -> LanceDocumentStore:
        return LanceDocumentStore(store=_store(tmp_path))

    @pytest.fixture
    def three_values(self) -> tuple[Document, Document, Document]:
        return DOCUMENTS
