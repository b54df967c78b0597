"""Adapter namespaces: which sessions of a store belong to which adapter.

Every adapter, and the seed-compatible ``Context``, keeps its sessions under a run-id
prefix of its own, ``<namespace>:<key>``. Namespace names hold no ``:``, so a run id
starts with at most one registered prefix: a key chosen through one adapter (a chat
session id, a collection name, a thread id) can never name another adapter's session,
whatever characters it holds. Records written through the core API
(``ContextStore.add``) keep the run ids their caller gives.

The layout is recorded in each store's schema metadata (:data:`LAYOUT_VERSION`) so a
later change of the encoding can recognise, and migrate, stores written with this one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ._errors import InvalidFilterError

__all__ = [
    "CONTEXT",
    "LANGCHAIN_CACHE",
    "LANGCHAIN_HISTORY",
    "LANGCHAIN_KV",
    "LANGCHAIN_RECORD_MANAGER",
    "LANGCHAIN_VECTORS",
    "LANGGRAPH_CHECKPOINTS",
    "LANGGRAPH_STORE",
    "LAYOUT_KEY",
    "LAYOUT_VERSION",
    "LLAMA_INDEX_CHAT",
    "LLAMA_INDEX_MEMORY",
    "LLAMA_INDEX_VECTORS",
    "NAMESPACES",
    "Namespace",
    "namespace_of",
]

#: Schema-metadata key recording how adapters lay out their sessions.
LAYOUT_KEY = "lance_context.layout"
#: 1: adapters used their callers' ids or loose prefixes; 2: registered namespaces.
LAYOUT_VERSION = 2

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


@dataclass(frozen=True)
class Namespace:
    """The sessions one adapter owns: run ids ``<name>:<key>``.

    Attributes:
        name: Dotted lower-case name, such as ``langchain.history``; never holds ``:``.
        label: What a person calls one of its sessions, such as ``LangChain chat history``.

    Example:
        >>> ns = Namespace("myframework.notes", "note book")
        >>> ns.run_id("alice"), ns.key("myframework.notes:alice")
        ('myframework.notes:alice', 'alice')
    """

    name: str
    label: str

    def __post_init__(self) -> None:
        """Refuse names that could overlap another namespace's prefix."""
        if not _NAME.match(self.name):
            raise ValueError(f"invalid namespace name {self.name!r}: dotted lower-case words, no ':'")

    @property
    def prefix(self) -> str:
        """What every run id of the namespace starts with."""
        return self.name + ":"

    def run_id(self, key: str, scope: str | None = None) -> str:
        """The run id of ``key`` (any non-empty string) in this namespace.

        Adapters that let their users split the namespace further (a ``namespace=``
        option) pass it as ``scope``; it is escaped so no (scope, key) pair can name
        another pair's session: ``<name>:<escaped scope>:<key>``.
        """
        if not isinstance(key, str) or not key:
            raise InvalidFilterError(f"a {self.label} id must be a non-empty string, got {key!r}")
        return self.scope_prefix(scope) + key

    def scope_prefix(self, scope: str | None = None) -> str:
        """What every run id of ``scope`` (or of the whole namespace, for None) starts with."""
        if scope is None:
            return self.prefix
        if not isinstance(scope, str):
            raise InvalidFilterError(f"a {self.label} scope must be a string, got {scope!r}")
        return self.prefix + scope.replace("%", "%25").replace(":", "%3A") + ":"

    def key(self, run_id: str, scope: str | None = None) -> str | None:
        """The key ``run_id`` names in this namespace (and scope); None for other sessions."""
        prefix = self.scope_prefix(scope)
        if run_id.startswith(prefix) and len(run_id) > len(prefix):
            return run_id[len(prefix) :]
        return None

    def where(self, scope: str | None = None) -> dict[str, Any]:
        """A ``where`` clause matching every session of the namespace (or of one scope)."""
        return {"run_id": {"$prefix": self.scope_prefix(scope)}}


CONTEXT = Namespace("context", "Context session")
LANGCHAIN_HISTORY = Namespace("langchain.history", "LangChain chat history")
LANGCHAIN_VECTORS = Namespace("langchain.vectors", "LangChain vector collection")
LANGCHAIN_KV = Namespace("langchain.kv", "LangChain key-value store")
LANGCHAIN_CACHE = Namespace("langchain.cache", "LangChain LLM cache")
LANGCHAIN_RECORD_MANAGER = Namespace("langchain.records", "LangChain record manager")
LANGGRAPH_CHECKPOINTS = Namespace("langgraph.checkpoints", "LangGraph thread")
LANGGRAPH_STORE = Namespace("langgraph.store", "LangGraph store namespace")
LLAMA_INDEX_MEMORY = Namespace("llama_index.memory", "LlamaIndex memory")
LLAMA_INDEX_CHAT = Namespace("llama_index.chat", "LlamaIndex chat store key")
LLAMA_INDEX_VECTORS = Namespace("llama_index.vectors", "LlamaIndex vector collection")

#: Every namespace the package's adapters use, by name.
NAMESPACES: dict[str, Namespace] = {
    ns.name: ns
    for ns in (
        CONTEXT,
        LANGCHAIN_HISTORY,
        LANGCHAIN_VECTORS,
        LANGCHAIN_KV,
        LANGCHAIN_CACHE,
        LANGCHAIN_RECORD_MANAGER,
        LANGGRAPH_CHECKPOINTS,
        LANGGRAPH_STORE,
        LLAMA_INDEX_MEMORY,
        LLAMA_INDEX_CHAT,
        LLAMA_INDEX_VECTORS,
    )
}


def namespace_of(run_id: str) -> tuple[Namespace | None, str]:
    """Which registered namespace a run id belongs to, and its key there.

    Returns ``(None, run_id)`` for a session written through the core API.
    """
    name, sep, key = run_id.partition(":")
    found = NAMESPACES.get(name) if sep and key else None
    return (found, key) if found is not None else (None, run_id)
