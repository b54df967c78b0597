"""LlamaIndex adapters: chat memory, chat stores, a vector store and an embedding model.

Install with ``pip install 'lance-context[llama-index]'``.

Example:
    >>> from lance_context import HashingEmbedder
    >>> from lance_context.llama_index import LanceMemory
    >>> memory = LanceMemory.from_defaults(                      # doctest: +SKIP
    ...     session_id="user-42", uri="memory.lance", embedder=HashingEmbedder())
    >>> memory.put(ChatMessage(role="user", content="hello"))   # doctest: +SKIP
"""

from __future__ import annotations

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "lance_context.llama_index needs LlamaIndex: pip install 'lance-context[llama-index]'"
    ) from exc

from ._chat_store import DEFAULT_CHAT_NAMESPACE, LanceAsyncChatStore, LanceChatStore
from ._embedding import LanceEmbedding
from ._memory import LanceMemory
from ._messages import message_to_record, record_to_message
from ._vector_store import DEFAULT_NODE_NAMESPACE, LanceVectorStore

__all__ = [
    "DEFAULT_CHAT_NAMESPACE",
    "DEFAULT_NODE_NAMESPACE",
    "LanceAsyncChatStore",
    "LanceChatStore",
    "LanceEmbedding",
    "LanceMemory",
    "LanceVectorStore",
    "message_to_record",
    "record_to_message",
]
