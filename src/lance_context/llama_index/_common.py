"""Helpers shared by the LlamaIndex adapters: opening the store, checking keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lance_context import DEFAULT_EMBEDDER, ContextStore, InvalidFilterError
from lance_context.adapters import open_store

from ._embedding import store_embedder

__all__ = ["FRAMEWORK", "FRAMEWORK_KEY", "check_key", "resolve_store"]

#: Metadata marker set on every record an adapter of this package writes.
FRAMEWORK_KEY = "lance_context.framework"
FRAMEWORK = "llama_index"


def check_key(value: object, what: str) -> str:
    """A session id, chat-store key or collection name: any non-empty string.

    The value reaches the store only as a filter literal escaped by the core, so no
    character is forbidden; an empty or non-string value is refused here.
    """
    if not isinstance(value, str) or not value:
        raise InvalidFilterError(f"{what} must be a non-empty string, got {value!r}")
    return value


def resolve_store(
    store: ContextStore | None,
    uri: str | None,
    *,
    who: str,
    embedder: Any = DEFAULT_EMBEDDER,
    storage_options: Mapping[str, str] | None = None,
    open_options: Mapping[str, Any] | None = None,
) -> ContextStore:
    """The store to use (see ``lance_context.adapters.open_store``); a LanceEmbedding is unwrapped."""
    return open_store(
        store, uri, who=who, storage_options=storage_options, embedder=store_embedder(embedder),
        **dict(open_options or {}),
    )  # fmt: skip
