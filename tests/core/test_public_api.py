"""The public API is pinned: names are added on purpose, never by accident."""

from __future__ import annotations

import subprocess
import sys

import lance_context
import lance_context.api

EXPECTED = {
    "DEFAULT_EMBEDDER",
    "AsyncContextStore",
    "CachePolicy",
    "UnsafePayloadError",
    "CommitConflictError",
    "CompactionPolicy",
    "ContextRecord",
    "ContextStore",
    "Embedder",
    "EmbedderMismatchError",
    "EmbedderUnavailableError",
    "EmbeddingError",
    "EncryptionError",
    "EncryptionPolicy",
    "ForgetReport",
    "ForgetVerification",
    "ForkSafetyError",
    "FusionOptions",
    "HashingEmbedder",
    "HitSummary",
    "IndexPolicy",
    "InvalidFilterError",
    "InvalidRecordError",
    "KeyMissingError",
    "LanceContextError",
    "LangChainEmbedder",
    "LlamaIndexEmbedder",
    "LoggedSearch",
    "MergeConflict",
    "MergeConflictError",
    "MergePlan",
    "MergeResult",
    "NotAContextStoreError",
    "PayloadTooLargeError",
    "QueryReview",
    "ReadOnlyError",
    "ReadOnlyVersionError",
    "Recall",
    "RecallOptions",
    "RecordChange",
    "Relationship",
    "Replay",
    "ReplayChange",
    "RetentionPolicy",
    "RetentionReport",
    "Review",
    "SchemaVersionError",
    "SearchError",
    "SearchHit",
    "SearchNotFoundError",
    "SearchResults",
    "SentenceTransformerEmbedder",
    "SessionChanges",
    "SnapshotReport",
    "StateMetadata",
    "StorageAccessError",
    "StorageUnavailableError",
    "StoreError",
    "StoreLimits",
    "UnsupportedContentError",
    "VersionDiff",
    "VersionInfo",
    "VersionNotFoundError",
    "WrongKeyError",
    "__version__",
    "as_embedder",
}


def test_public_names_are_pinned() -> None:
    assert set(lance_context.__all__) == EXPECTED
    for name in EXPECTED:
        assert hasattr(lance_context, name), name


def test_api_module_exports_context() -> None:
    assert lance_context.api.__all__ == ["Context"]


def test_errors_share_one_base_and_builtin_bases() -> None:
    errors = [getattr(lance_context, n) for n in EXPECTED if n.endswith("Error")]
    assert all(issubclass(e, lance_context.LanceContextError) for e in errors)
    assert issubclass(lance_context.InvalidRecordError, ValueError)
    assert issubclass(lance_context.VersionNotFoundError, KeyError)
    assert issubclass(lance_context.EmbedderUnavailableError, ImportError)
    assert issubclass(lance_context.SearchNotFoundError, KeyError)
    assert issubclass(lance_context.UnsupportedContentError, lance_context.InvalidRecordError)
    assert issubclass(lance_context.KeyMissingError, lance_context.EncryptionError)
    assert issubclass(lance_context.WrongKeyError, lance_context.EncryptionError)


def test_import_is_light() -> None:
    """`import lance_context` pulls in no framework, torch or sentence-transformers."""
    code = (
        "import sys, lance_context, lance_context.api\n"
        "heavy = ['torch', 'sentence_transformers', 'langchain_core', 'langgraph', 'llama_index', 'transformers',"
        " 'ray']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


ADAPTER_KIT = {
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
}


def test_adapters_module_is_pinned() -> None:
    import lance_context.adapters

    assert set(lance_context.adapters.__all__) == ADAPTER_KIT
    for name in ADAPTER_KIT:
        assert hasattr(lance_context.adapters, name), name


def test_public_classes_report_the_public_path() -> None:
    assert repr(lance_context.ContextStore) == "<class 'lance_context.ContextStore'>"
    for name in lance_context.__all__:
        obj = getattr(lance_context, name)
        if isinstance(obj, type):
            assert obj.__module__ == "lance_context", name
