from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from lance_context import ContextStore, HashingEmbedder


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return str(tmp_path / "store.lance")


@pytest.fixture
def store(store_path: str) -> ContextStore:
    return ContextStore.open(store_path, embedder=HashingEmbedder(64))


class TableEmbeddings(Embeddings):
    """LangChain embeddings with hand-picked vectors: exact, predictable scores."""

    def __init__(self, table: dict[str, Sequence[float]]) -> None:
        self.table = {k: list(map(float, v)) for k, v in table.items()}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.table[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        if text not in self.table:  # the dimension probe
            width = len(next(iter(self.table.values())))
            return [0.0] * (width - 1) + [1.0]
        return self.table[text]
