"""What adapter authors build on: the public pieces every lance-context adapter uses.

The LangChain, LangGraph and LlamaIndex adapters import only from ``lance_context``
and this module; a new adapter should do the same (a test fails if a packaged adapter
imports a private module).

- **Namespaces.** Each adapter keeps its sessions under a registered run-id prefix
  (:class:`Namespace`), so no id chosen through one adapter can reach another's data.
  A third-party adapter makes its own ``Namespace("myframework.kind", "label")``.
- **Opening.** :func:`open_store` resolves an adapter's ``store=`` / ``uri=`` pair the
  same way everywhere, with one error type for misuse; :func:`check_arguments` refuses
  an option of the wrong type before anything is opened.
- **Read, then write.** :func:`session_lock` is one lock per session of a store location,
  shared by the whole process, for calls that read a session and then write it.
- **Async.** :func:`async_twin` makes an adapter's async method from its sync twin
  (same signature, run in a worker thread); ``store.aio`` is the async store.
- **Reading less.** ``store.records(..., last=, with_vectors=False)`` and
  ``store.outline(run_id)`` (an :class:`Outline` to pick rows from), and
  ``store.changes_between(v1, v2)`` (:class:`RecordChanges`) and :class:`SessionCache`
  (version-checked, bounded) for in-memory views that survive commits to other sessions;
  :func:`derived_values` (what an adapter derives from a record read, a rebuilt message,
  kept for every later read of the same cached record) and :func:`copy_model` /
  :func:`copy_tree` (fast deep copies of pydantic messages and JSON-like values, to hand
  each read its own); :func:`shared_records` (a session's records without copying what
  the cache holds, for reads that only rebuild an adapter's own objects from them) and
  :func:`shared_ends` (a session's first and newest records after one version check);
  :func:`kept_built` / :func:`keep_built` (what an adapter built from one such read, a
  window of messages, kept until a read returns other records; worth keeping only where
  :func:`shares_records` says later reads return the same records);
  :func:`row_changes` (the rows two snapshots differ by, on one branch or across two);
  :func:`write_group` (which rows of an outline were committed at once, from ``seq``).
- **Conversations.** :func:`fit_window` and :func:`group_exchanges` keep tool calls and
  their results together in token windows; :func:`newest_window` reads only as much of
  a conversation as its window needs.
- **Messages.** :func:`sniff_mime`, :func:`canonical_base64` (lifting inline images out
  of messages into binary payloads) and :func:`monotonic_times` (ordered timestamps).
- **Indexing conversation.** :class:`ChatIndexing` builds, once per appended turn, the
  text the full-text index holds (speaker, time, earlier turns) and the text embedded
  (``Speaker: text``), set on records as ``search_text`` / ``embed_text``.
- **Retrieval.** :func:`as_reranker` (any reranker object as ``(query, texts) ->
  scores``), :data:`SearchMode`, :func:`rrf_fuse`, :func:`weighted_fuse`,
  :func:`mmr_select`, :func:`embed_query` and :func:`to_matrix` (checks an embedder's output).
- **Distributed writes.** ``store.bulk()`` gives a :class:`BulkWriter` (plans and the one
  commit, on the driver); :class:`BulkWorker` writes fragments anywhere from a
  :class:`BulkPlan` or :class:`RewritePlan`, returning :class:`BulkPart` results.
  ``lance_context.ray`` is built on them; another engine (Dask, Spark) would be too.

Example:
    >>> from lance_context.adapters import LANGCHAIN_HISTORY, namespace_of
    >>> LANGCHAIN_HISTORY.run_id("chat-1")
    'langchain.history:chat-1'
    >>> namespace_of("langchain.history:chat-1")[1]
    'chat-1'
"""

from __future__ import annotations

from ._async import async_twin
from ._bulk import BulkPart, BulkPlan, BulkWorker, BulkWriter, RewritePlan, Slice
from ._cache import SessionCache
from ._copies import copy_model, copy_tree
from ._derived import keep_built, kept_built
from ._embedders import embed_query, to_matrix
from ._encryption import read_marker
from ._fingerprints import row_changes
from ._handouts import derived_values
from ._index_text import ChatIndexing, ChatTurn, IndexTextOptions, index_texts
from ._jsonvalues import json_problem
from ._locks import session_lock
from ._media import canonical_base64, monotonic_times, sniff_mime
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
from ._opening import RECORDED_EMBEDDER, check_arguments, open_store
from ._reader import Outline
from ._records import check_unicode, new_id, plain_json, utc_now
from ._rerank import Reranker, as_reranker
from ._search import SearchMode, mmr_select, rrf_fuse, weighted_fuse
from ._tailcache import shared_ends, shared_records, shares_records
from ._versions import RecordChanges
from ._window import fit_window, group_exchanges, newest_window
from ._writer import write_group

__all__ = [
    "BulkPart",
    "BulkPlan",
    "BulkWorker",
    "BulkWriter",
    "CONTEXT",
    "ChatIndexing",
    "ChatTurn",
    "IndexTextOptions",
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
    "Outline",
    "Reranker",
    "RECORDED_EMBEDDER",
    "RecordChanges",
    "RewritePlan",
    "SearchMode",
    "SessionCache",
    "Slice",
    "as_reranker",
    "async_twin",
    "canonical_base64",
    "check_arguments",
    "check_unicode",
    "copy_model",
    "copy_tree",
    "derived_values",
    "json_problem",
    "keep_built",
    "kept_built",
    "embed_query",
    "fit_window",
    "group_exchanges",
    "index_texts",
    "mmr_select",
    "monotonic_times",
    "namespace_of",
    "new_id",
    "newest_window",
    "open_store",
    "plain_json",
    "read_marker",
    "row_changes",
    "rrf_fuse",
    "session_lock",
    "shared_ends",
    "shared_records",
    "shares_records",
    "sniff_mime",
    "to_matrix",
    "utc_now",
    "weighted_fuse",
    "write_group",
]
