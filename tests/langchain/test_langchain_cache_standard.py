"""The langchain-tests LLM cache suites, unmodified, on LanceCache and LanceSemanticCache."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.caches import BaseCache
from langchain_tests.integration_tests import AsyncCacheTestSuite, SyncCacheTestSuite

from lance_context import ContextStore, HashingEmbedder
from lance_context.langchain import LanceCache, LanceSemanticCache


def _store(tmp_path: Path) -> ContextStore:
    return ContextStore.open(str(tmp_path / "cache.lance"), embedder=HashingEmbedder(32))


class TestLanceCacheSync(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self, tmp_path: Path) -> BaseCache:
        return LanceCache(store=_store(tmp_path))


class TestLanceCacheAsync(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(self, tmp_path: Path) -> BaseCache:
        return LanceCache(store=_store(tmp_path))


class TestLanceSemanticCacheSync(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self, tmp_path: Path) -> BaseCache:
        return LanceSemanticCache(store=_store(tmp_path))


class TestLanceSemanticCacheAsync(AsyncCacheTestSuite):
    @pytest.fixture
    async def cache(self, tmp_path: Path) -> BaseCache:
        return LanceSemanticCache(store=_store(tmp_path))
