from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from llama_index.core.llms import ChatMessage

from lance_context import ContextStore, HashingEmbedder
from lance_context.llama_index import LanceEmbedding

DIM = 256


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return str(tmp_path / "store.lance")


@pytest.fixture
def store(store_path: str) -> ContextStore:
    return ContextStore.open(store_path, embedder=HashingEmbedder(DIM))


@pytest.fixture
def embed_model() -> LanceEmbedding:
    return LanceEmbedding(HashingEmbedder(DIM))


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def assistant(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)


def words(tokens: str) -> list[str]:
    """A whitespace tokenizer: one token per word, easy to reason about in tests."""
    return tokens.split()


def answer(value: Any) -> Any:
    """A chat store's answer as plain values: messages as (role, content), lists item by item."""
    if isinstance(value, ChatMessage):
        return (value.role.value, value.content)
    if isinstance(value, list):
        return [answer(v) for v in value]
    return value
