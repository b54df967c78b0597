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


#: Five turns of one chat ("chat", ids t0-t4): three about the weather, two about a sister in Oslo.
TURNS = [
    "we talked about the weather",
    "the weather in Oslo was grey",
    "my sister lives in Oslo",
    "she moved to Oslo in 2019",
    "the weather was fine later",
]


@pytest.fixture
def turns_store(tmp_path: Path) -> ContextStore:
    """A store holding :data:`TURNS` as the session ``chat``, with ids ``t0`` to ``t4``."""
    store = ContextStore.open(str(tmp_path / "r.lance"), embedder=HashingEmbedder(64))
    store.add([ContextRecord.from_content(t, run_id="chat", id=f"t{i}") for i, t in enumerate(TURNS)])
    return store
