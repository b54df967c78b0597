from __future__ import annotations

from pathlib import Path

import pytest

from lance_context import ContextStore, HashingEmbedder
from lance_context.langgraph import LanceCheckpointSaver


@pytest.fixture
def store(tmp_path: Path) -> ContextStore:
    return ContextStore.open(str(tmp_path / "agent.lance"), embedder=HashingEmbedder(32))


@pytest.fixture
def saver(store: ContextStore) -> LanceCheckpointSaver:
    return LanceCheckpointSaver(store=store)
