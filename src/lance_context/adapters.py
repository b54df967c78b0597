"""What adapter authors build on: the public pieces every lance-context adapter uses.

The LangChain, LangGraph and LlamaIndex adapters import only from ``lance_context``
and this module; a new adapter should do the same.

- **Namespaces.** Each adapter keeps its sessions under a registered run-id prefix
  (:class:`Namespace`), so no id chosen through one adapter can reach another's data.
  A third-party adapter makes its own ``Namespace("myframework.kind", "label")``.

Example:
    >>> from lance_context.adapters import LANGCHAIN_HISTORY, namespace_of
    >>> LANGCHAIN_HISTORY.run_id("chat-1")
    'langchain.history:chat-1'
    >>> namespace_of("langchain.history:chat-1")[1]
    'chat-1'
"""

from __future__ import annotations

from ._namespaces import (
    CONTEXT,
    LANGCHAIN_CACHE,
    LANGCHAIN_HISTORY,
    LANGCHAIN_KV,
    LANGCHAIN_RECORD_MANAGER,
    LANGCHAIN_VECTORS,
    LANGGRAPH_CHECKPOINTS,
    LANGGRAPH_STORE,
    LAYOUT_VERSION,
    LLAMA_INDEX_CHAT,
    LLAMA_INDEX_MEMORY,
    LLAMA_INDEX_VECTORS,
    NAMESPACES,
    Namespace,
    namespace_of,
)

__all__ = [
    "CONTEXT",
    "LANGCHAIN_CACHE",
    "LANGCHAIN_HISTORY",
    "LANGCHAIN_KV",
    "LANGCHAIN_RECORD_MANAGER",
    "LANGCHAIN_VECTORS",
    "LANGGRAPH_CHECKPOINTS",
    "LANGGRAPH_STORE",
    "LAYOUT_VERSION",
    "LLAMA_INDEX_CHAT",
    "LLAMA_INDEX_MEMORY",
    "LLAMA_INDEX_VECTORS",
    "NAMESPACES",
    "Namespace",
    "namespace_of",
]
