"""LangChain adapters on one store: chat history, vector store, retriever, key-value stores, caches, records.

Install with ``pip install 'lance-context[langchain]'``.

Example:
    >>> from lance_context import ContextStore
    >>> from lance_context.langchain import LanceChatMessageHistory, LanceVectorStore
    >>> store = ContextStore.open("memory.lance")                        # doctest: +SKIP
    >>> history = LanceChatMessageHistory("chat-1", store=store)          # doctest: +SKIP
    >>> docs = LanceVectorStore(store=store, collection="docs")           # doctest: +SKIP
    >>> parents = LanceDocumentStore("parents", store=store)              # doctest: +SKIP
    >>> cache = LanceCache(store=store)                                   # doctest: +SKIP
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "lance_context.langchain needs LangChain: pip install 'lance-context[langchain]'"
    ) from exc

from ._cache import LanceCache, LanceSemanticCache
from ._history import LanceChatMessageHistory
from ._kvstore import LanceByteStore, LanceDocumentStore
from ._record_manager import LanceRecordManager
from ._retriever import LanceRetriever
from ._vectorstore import LanceVectorStore

__all__ = [
    "LanceByteStore",
    "LanceCache",
    "LanceChatMessageHistory",
    "LanceDocumentStore",
    "LanceRecordManager",
    "LanceRetriever",
    "LanceSemanticCache",
    "LanceVectorStore",
]
