"""Adapters use the doors users do: public imports, one opener, async twins that match."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

import lance_context
from lance_context import AsyncContextStore, ContextStore, HashingEmbedder
from lance_context.langchain import (
    LanceByteStore,
    LanceCache,
    LanceChatMessageHistory,
    LanceDocumentStore,
    LanceRecordManager,
    LanceSemanticCache,
)
from lance_context.langchain import LanceVectorStore as LCVectorStore
from lance_context.langgraph import LanceCheckpointSaver, LanceStore
from lance_context.llama_index import LanceAsyncChatStore, LanceChatStore, LanceEmbedding, LanceMemory
from lance_context.llama_index import LanceVectorStore as LIVectorStore

PACKAGE = Path(lance_context.__file__).parent
ADAPTERS = ("langchain", "langgraph", "llama_index", "ray")  # ray: the bulk-job integration


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def _private_imports(path: Path) -> list[str]:
    return [m for m in _imports(path) if m.startswith("..") or m.startswith("lance_context._")]


def test_adapters_import_no_private_core_module(tmp_path: Path) -> None:
    offenders = [
        f"{adapter}/{path.name}: {module}"
        for adapter in ADAPTERS
        for path in sorted((PACKAGE / adapter).glob("*.py"))
        for module in _private_imports(path)
    ]
    assert offenders == [], "adapters must import lance_context or lance_context.adapters only"
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from .._store import ContextStore\nimport lance_context._records\nfrom ._local import x\n"
    )
    assert _private_imports(sample) == [".._store", "lance_context._records"]  # the check can fail


SYNC_ASYNC = [
    (ContextStore, AsyncContextStore, lambda name: name),
    (LanceChatMessageHistory, None, lambda name: "a" + name),
    (LCVectorStore, None, lambda name: "a" + name),
    (LanceByteStore, None, lambda name: "a" + name),
    (LanceDocumentStore, None, lambda name: "a" + name),
    (LanceCache, None, lambda name: "a" + name),
    (LanceSemanticCache, None, lambda name: "a" + name),
    (LanceRecordManager, None, lambda name: "a" + name),
    (LanceCheckpointSaver, None, lambda name: "a" + name),
    (LIVectorStore, None, lambda name: "async_" + name if name == "add" else "a" + name),
    (LanceEmbedding, None, lambda name: "_a" + name[1:] if name.startswith("_get") else "a" + name),
]


def _parameters(function: Any, drop_self: bool) -> list[tuple[str, Any, Any]]:
    params = list(inspect.signature(function).parameters.values())
    if drop_self and params and params[0].name == "self":
        params = params[1:]
    return [(p.name, p.kind, p.default) for p in params]


@pytest.mark.parametrize(
    ("sync_class", "async_class", "twin_name"), SYNC_ASYNC, ids=lambda c: getattr(c, "__name__", "")
)
def test_every_async_twin_takes_its_sync_methods_parameters(
    sync_class: type, async_class: type | None, twin_name: Any
) -> None:
    target = async_class or sync_class
    pairs = 0
    own = [c for c in reversed(sync_class.__mro__) if c.__module__.startswith("lance_context")]
    methods = {name: method for cls in own for name, method in vars(cls).items()}
    for name, method in methods.items():
        if not callable(method) or (name.startswith("_") and not name.startswith("_get_")):
            continue
        twin = getattr(target, twin_name(name), None)
        if twin is None or not inspect.iscoroutinefunction(twin):
            continue
        pairs += 1
        assert _parameters(twin, True) == _parameters(method, True), f"{target.__name__}.{twin_name(name)}"
    assert pairs >= 1, f"no async twins found on {target.__name__}"


def test_async_context_store_covers_every_read_and_write(tmp_path: Path) -> None:
    expected = {"add", "upsert", "replace", "delete", "records", "count", "get", "get_many", "search", "diff"}
    assert expected <= {name for name in vars(AsyncContextStore) if not name.startswith("_")}


async def test_async_context_store_runs_the_sync_methods(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16))
    version = await store.aio.add(lance_context.ContextRecord.from_content("hello there", run_id="s"))
    assert version == store.version()
    assert [r.text for r in await store.aio.records("s", last=5)] == ["hello there"]
    hits = await store.aio.search("hello", k=1, run_id="s")
    assert hits[0].record.text == "hello there"


OPENERS = [
    lambda **kw: LanceChatMessageHistory("s", **kw),
    lambda **kw: LCVectorStore(**kw),
    lambda **kw: LanceByteStore(**kw),
    lambda **kw: LanceCache(**kw),
    lambda **kw: LanceRecordManager("ns", **kw),
    lambda **kw: LanceCheckpointSaver(**kw),
    lambda **kw: LanceStore(**kw),
    lambda **kw: LanceMemory.from_defaults(session_id="s", **kw),
    lambda **kw: LanceChatStore(**kw),
    lambda **kw: LanceAsyncChatStore(**kw),
    lambda **kw: LIVectorStore(**kw),
]


@pytest.mark.parametrize("open_adapter", OPENERS)
def test_every_adapter_refuses_store_and_uri_misuse_the_same_way(open_adapter: Any, tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16))
    with pytest.raises(TypeError, match="exactly one of store= .* or uri="):
        open_adapter()
    with pytest.raises(TypeError, match="exactly one of store= .* or uri="):
        open_adapter(store=store, uri=str(tmp_path / "other.lance"))
    with pytest.raises(TypeError, match="must be a lance_context.ContextStore"):
        open_adapter(store="not a store")
    with pytest.raises(TypeError, match="already open with its own"):
        open_adapter(store=store, storage_options={"timeout": "5s"})
