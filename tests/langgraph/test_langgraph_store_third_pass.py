"""LangGraph stores run on the reference backends and on ours, outcomes compared.

``LanceStore`` against ``InMemoryStore`` (and ``SqliteStore``): namespaces under every
condition, filters and paging, semantic search with index fields, a mixed batch and TTL.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import BaseStore, GetOp, ListNamespacesOp, MatchCondition, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore
from langgraph.store.sqlite import SqliteStore

import lance_context.langgraph._store as store_module
from lance_context import ContextStore
from lance_context.langgraph import LanceStore

DIMS = 32


def _embed(texts: list[str]) -> list[list[float]]:
    """A deterministic character-trigram embedding (normalized)."""
    vectors = []
    for text in texts:
        padded, vector = f" {text.lower()} ", [0.0] * DIMS
        for i in range(len(padded) - 2):
            digest = hashlib.sha256(padded[i : i + 3].encode()).digest()
            vector[digest[0] % DIMS] += 1.0 + digest[1] / 255
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        vectors.append([x / norm for x in vector])
    return vectors


DOCS: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
    (
        ("users", "u1", "mem"),
        "a",
        {"text": "likes green tea", "n": 1, "tags": ["drink", "tea"], "obj": {"k": 1}},
    ),
    (("users", "u1", "mem"), "b", {"text": "hates coffee", "n": 2, "tags": ["beverage"]}),
    (("users", "u2", "mem"), "a", {"text": "plays chess", "n": 3, "flag": True}),
    (("users", "u2", "prefs"), "c", {"text": "green garden", "n": 4.5, "obj": {"k": 2}}),
    (("docs",), "d", {"title": "manual", "n": 0}),
    (("docs", "v1"), "e", {"text": "tea ceremony guide", "n": -1}),
]


def _stores(tmp_path: Path, index: Any = None, *, sqlite: bool = True) -> Iterator[BaseStore]:
    yield InMemoryStore(index=index)
    if sqlite:
        reference = SqliteStore(sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None))
        reference.setup()
        yield reference
    if index:
        yield LanceStore(uri=str(tmp_path / "memory.lance"), index=index)
    else:
        yield LanceStore(store=ContextStore.open(str(tmp_path / "memory.lance"), embedder=None))


def _loaded(store: BaseStore) -> BaseStore:
    store.batch([PutOp(ns, key, value) for ns, key, value in DOCS])
    return store


def test_list_namespaces_matches_for_every_condition(tmp_path: Path) -> None:
    cases: list[dict[str, Any]] = [
        {},
        {"prefix": ("users",)},
        {"suffix": ("mem",)},
        {"prefix": ("users", "*", "mem")},
        {"prefix": ("users",), "suffix": ("prefs",)},
        {"suffix": ("*", "mem")},
        {"prefix": ("*",), "max_depth": 1},
        {"max_depth": 2},
        {"max_depth": 2, "prefix": ("users",)},
        {"limit": 2, "offset": 1},
        {"offset": 10},
        {"prefix": ("docs", "v1", "deeper")},
    ]
    outcomes = [[_loaded(s).list_namespaces(**kw) for kw in cases] for s in _stores(tmp_path)]
    assert outcomes[2] == outcomes[0] == outcomes[1]


def test_search_filters_and_pages_match(tmp_path: Path) -> None:
    filters: list[dict[str, Any] | None] = [
        None,
        {"n": 1},
        {"n": {"$gt": 1}},
        {"n": {"$gte": 1, "$lt": 4.5}},
        {"n": {"$ne": 2}},
        {"tags": ["beverage"]},
        {"obj": {"k": 1}},
        {"flag": True},
        {"flag": 1},
        {"missing": None},
        {"text": {"$ne": "plays chess"}},
    ]
    prefixes: list[tuple[str, ...]] = [(), ("users",), ("users", "u1"), ("docs",)]

    def run(store: BaseStore, specs: list[dict[str, Any] | None]) -> Any:
        _loaded(store)
        found = [
            sorted((i.namespace, i.key) for i in store.search(prefix, filter=spec))
            for spec in specs
            for prefix in prefixes
        ]
        pages = [store.search((), limit=2, offset=offset) for offset in (0, 2, 4, 6)]
        return found, [len(p) for p in pages], sorted((i.namespace, i.key) for p in pages for i in p)

    memory, sqlite, ours = _stores(tmp_path)
    assert run(ours, filters) == run(memory, filters)
    # SqliteStore refuses a nested-object filter, and its $ne skips items missing the field
    # (SQL NULL); InMemoryStore's reading is the one kept. The others agree with SQLite too.
    shared = [f for f in filters if not (f and ("obj" in f or f.get("text")))]
    ours_again = LanceStore(store=ContextStore.open(str(tmp_path / "again.lance"), embedder=None))
    assert run(ours_again, shared) == run(sqlite, shared)


def _ranked(items: list[Any]) -> tuple[list[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """Scored hits in order (scores to 3 places) and the unscored fill as a set (its order is free)."""
    scored = [(i.namespace, i.key, round(i.score, 3)) for i in items if i.score is not None]
    return scored, {(i.namespace, i.key) for i in items if i.score is None}


@pytest.mark.parametrize("fields", [None, ["text"], ["text", "tags[*]"], ["$"]])
def test_semantic_search_with_index_fields_matches(tmp_path: Path, fields: list[str] | None) -> None:
    index: dict[str, Any] = {"dims": DIMS, "embed": _embed}
    if fields:
        index["fields"] = fields

    def run(store: BaseStore) -> Any:
        _loaded(store)
        store.put(("users", "u3"), "x", {"text": "tea tea", "tags": ["tea"], "n": 5}, index=False)
        store.put(
            ("users", "u3"), "y", {"text": "black coffee", "tags": ["garden"], "n": 6}, index=["tags[*]"]
        )
        queries: list[tuple[str, dict[str, Any]]] = [
            ("green tea", {}),
            ("tea", {"limit": 2}),
            ("tea", {"limit": 2, "offset": 1}),
            ("chess", {"filter": {"n": {"$gt": 1}}}),
            ("garden", {"limit": 20}),
            ("coffee drink", {"filter": {"tags": ["beverage"]}}),
        ]
        return [
            _ranked(store.search(prefix, query=q, **kw)) for q, kw in queries for prefix in [(), ("users",)]
        ]

    memory, ours = (run(s) for s in _stores(tmp_path, index, sqlite=False))
    assert ours == memory


def _item(found: Any) -> Any:
    """An item as namespace, key and value (timestamps are backend-specific); anything else as is."""
    return (found.namespace, found.key, found.value) if hasattr(found, "key") else found


def test_a_mixed_batch_reads_before_its_puts_like_the_sql_store(tmp_path: Path) -> None:
    def run(store: BaseStore) -> Any:
        _loaded(store)
        ops = [
            GetOp(("users", "u1", "mem"), "a"),
            PutOp(("users", "u1", "mem"), "a", {"text": "new"}),
            GetOp(("users", "u1", "mem"), "a"),
            SearchOp(("users",), filter={"text": "new"}),
            PutOp(("users", "u1", "mem"), "b", None),
            ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("users",)),)),
            PutOp(("new", "ns"), "x", {"text": "x"}),
            PutOp(("new", "ns"), "x", {"text": "y"}),  # the last put of a key wins
            GetOp(("new", "ns"), "x"),
            PutOp(("users", "u2", "prefs"), "c", None),
        ]
        results = store.batch(ops)
        seen = [_item(r) if not isinstance(r, list) else [_item(i) for i in r] for r in results]
        after = [store.get(("users", "u1", "mem"), "a"), store.get(("users", "u1", "mem"), "b")]
        final = store.get(("new", "ns"), "x")
        # InMemoryStore still lists a namespace whose last item was deleted; the SQL store does not
        return (
            seen,
            [None if i is None else i.value for i in after],
            final and final.value,
            store.list_namespaces(),
        )

    outcomes = [run(s) for s in _stores(tmp_path)]
    assert outcomes[2] == outcomes[1]
    assert outcomes[2][:3] == outcomes[0][:3]


def test_a_semantic_search_restarts_the_ttl_of_every_text_of_an_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    monkeypatch.setattr(store_module, "_now", lambda: clock[0])

    def later(seconds: int) -> None:
        clock[0] += timedelta(seconds=seconds)

    memory = LanceStore(
        uri=str(tmp_path / "ttl.lance"),
        index={"dims": DIMS, "embed": _embed, "fields": ["a", "b"]},
        ttl={"default_ttl": 1, "omit_expired": True},
    )
    memory.put(("n",), "k", {"a": "green tea", "b": "black coffee"})  # two texts, one item
    memory.put(("n",), "p", {"a": "forever"}, ttl=None)
    later(50)
    assert [i.key for i in memory.search(("n",), query="coffee", limit=1)] == ["k"]  # refreshed
    later(50)
    assert memory.sweep_ttl() == 0
    assert memory.get(("n",), "k", refresh_ttl=False) is not None
    later(15)  # 65 s after the refresh
    assert memory.get(("n",), "k") is None
    assert [i.key for i in memory.search(("n",), query="coffee")] == ["p"]
    assert memory.sweep_ttl() == 1
    assert memory.store.count() == 1  # the item's text records went with it
