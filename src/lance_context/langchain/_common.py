"""Helpers shared by the LangChain adapters: opening (or sharing) a store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._store import DEFAULT_EMBEDDER, ContextStore

__all__ = ["resolve_store"]


def resolve_store(
    store: ContextStore | None,
    uri: str | None,
    storage_options: Mapping[str, str] | None,
    embedder: Any,
    who: str,
) -> ContextStore:
    """The store an adapter works on: the one given, or one opened at ``uri``.

    Raises:
        ValueError: Neither or both of ``store`` and ``uri`` given, or an embedder given
            together with an already-open store (it was chosen when that store opened).
    """
    if store is not None and uri is not None:
        raise ValueError(f"{who}: pass either store= or uri=, not both")
    if store is not None:
        if not isinstance(store, ContextStore):
            raise TypeError(f"{who}: store must be a ContextStore, got {type(store).__name__}")
        if storage_options is not None or embedder is not DEFAULT_EMBEDDER:
            raise ValueError(
                f"{who}: storage_options and embedder apply when opening a store by uri; "
                "the store you passed is already open with its own"
            )
        return store
    if uri is None:
        raise ValueError(f"{who}: pass store= (a shared ContextStore) or uri= (where to open one)")
    return ContextStore.open(str(uri), storage_options=storage_options, embedder=embedder)
