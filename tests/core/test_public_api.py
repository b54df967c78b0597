"""The public API is pinned: names are added on purpose, never by accident."""

from __future__ import annotations

import subprocess
import sys

import lance_context
import lance_context.api

EXPECTED = {
    "DEFAULT_EMBEDDER",
    "CommitConflictError",
    "CompactionPolicy",
    "ContextRecord",
    "ContextStore",
    "Embedder",
    "EmbedderMismatchError",
    "EmbedderUnavailableError",
    "EmbeddingError",
    "ForkSafetyError",
    "HashingEmbedder",
    "IndexPolicy",
    "InvalidFilterError",
    "InvalidRecordError",
    "LanceContextError",
    "LangChainEmbedder",
    "LlamaIndexEmbedder",
    "NotAContextStoreError",
    "PayloadTooLargeError",
    "ReadOnlyError",
    "ReadOnlyVersionError",
    "Relationship",
    "SchemaVersionError",
    "SearchError",
    "SearchHit",
    "SentenceTransformerEmbedder",
    "StateMetadata",
    "StorageUnavailableError",
    "StoreError",
    "StoreLimits",
    "UnsupportedContentError",
    "VersionDiff",
    "VersionInfo",
    "VersionNotFoundError",
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
    assert issubclass(lance_context.UnsupportedContentError, lance_context.InvalidRecordError)


def test_import_is_light() -> None:
    """`import lance_context` pulls in no framework, torch or sentence-transformers."""
    code = (
        "import sys, lance_context, lance_context.api\n"
        "heavy = ['torch', 'sentence_transformers', 'langchain_core', 'langgraph', 'llama_index', 'transformers']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_adapters_module_is_pinned() -> None:
    import lance_context.adapters

    assert set(lance_context.adapters.__all__) >= {"Namespace", "NAMESPACES", "namespace_of", "LAYOUT_VERSION"}
    for name in lance_context.adapters.__all__:
        assert hasattr(lance_context.adapters, name), name
