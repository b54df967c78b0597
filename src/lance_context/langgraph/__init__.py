"""LangGraph persistence on lance-context: a checkpointer and a long-term memory store.

Install with ``pip install 'lance-context[langgraph]'``. Only this subpackage imports
LangGraph.

Example:
    >>> from lance_context import ContextStore, HashingEmbedder
    >>> from lance_context.langgraph import LanceCheckpointSaver, LanceStore
    >>> store = ContextStore.open("agent.lance", embedder=HashingEmbedder())  # doctest: +SKIP
    >>> checkpointer = LanceCheckpointSaver(store=store)                      # doctest: +SKIP
    >>> memory = LanceStore(store=store)                                      # doctest: +SKIP
"""

from __future__ import annotations

try:
    import langgraph.checkpoint.base
    import langgraph.store.base  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "lance_context.langgraph needs LangGraph: pip install 'lance-context[langgraph]'"
    ) from exc

from ._checkpoint import LanceCheckpointSaver
from ._store import LanceStore

__all__ = ["LanceCheckpointSaver", "LanceStore"]
