from __future__ import annotations

from pathlib import Path

import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return str(tmp_path / "store.lance")


@pytest.fixture
def store(store_path: str) -> ContextStore:
    return ContextStore.open(store_path, embedder=HashingEmbedder(32))


def text(content: str, run_id: str = "s1", role: str = "user", **fields: object) -> ContextRecord:
    return ContextRecord.from_content(content, role=role, run_id=run_id, **fields)  # type: ignore[arg-type]
