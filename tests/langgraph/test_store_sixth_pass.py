"""LanceStore against InMemoryStore and SqliteStore: paging, repeated index paths, TTL while paging.

Differential where the reference stores agree; where they page oddly (``InMemoryStore``
restarts its unindexed items on every page past the ranked ones), the pages of a query
must walk one sequence: every item once, then empty pages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import BaseStore, GetOp, ListNamespacesOp, Op, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore
from langgraph.store.sqlite import SqliteStore

from lance_context import HashingEmbedder
from lance_context.langgraph import LanceStore
from lance_context.langgraph import _store as store_module

EMBEDDER = HashingEmbedder(64)
INDEX: Any = {"dims": 64, "embed": None, "fields": ["text"]}


def embed(texts: Sequence[str]) -> list[list[float]]:
    """A LangGraph embedding function (deterministic, offline)."""
    return [[float(x) for x in row] for row in EMBEDDER.embed_texts(list(texts))]


def _index(**extra: Any) -> Any:
    return {**INDEX, "embed": embed, **extra}


def _ours(tmp_path: Path, name: str, **index: Any) -> LanceStore:
    return LanceStore(uri=str(tmp_path / f"{name}.lance"), index=_index(**index))


def _hits(items: Sequence[Any]) -> list[tuple[str, float | None]]:
    return [(i.key, None if i.score is None else round(i.score, 4)) for i in items]


#: Items a memory node keeps: most indexed, some put with ``index=False`` or without the field.
MEMORIES: list[tuple[str, dict[str, Any], Any]] = [
    ("tea", {"text": "green tea in the morning"}, None),
    ("coffee", {"text": "black coffee at noon"}, None),
    ("chess", {"text": "plays chess on sundays"}, None),
    ("secret", {"text": "tea with the neighbours"}, False),
    ("note", {"other": "no text field"}, None),
    ("wine", {"text": "red wine with dinner"}, None),
    ("draft", {"text": "unindexed draft"}, False),
]


def _remember(store: BaseStore) -> None:
    for key, value, index in MEMORIES:
        store.put(("u1", "mem"), key, value, index=index)


def _walk(store: BaseStore, limit: int, **search: Any) -> list[list[str]]:
    """Page through a search until an empty page (at most a few pages past the items)."""
    pages: list[list[str]] = []
    for offset in range(0, 3 * len(MEMORIES), limit):
        page = [i.key for i in store.search(("u1",), limit=limit, offset=offset, **search)]
        if not page:
            break
        pages.append(page)
    return pages


@pytest.mark.parametrize("limit", [1, 2, 3, 4])
def test_query_pages_list_every_item_once_then_end(tmp_path: Path, limit: int) -> None:
    ours, oracle = _ours(tmp_path, "pages"), InMemoryStore(index=_index())
    for store in (ours, oracle):
        _remember(store)
    whole = ours.search(("u1",), query="tea", limit=100)
    # one page holding everything: as InMemoryStore ranks and fills it
    assert _hits(whole) == _hits(oracle.search(("u1",), query="tea", limit=100))
    pages = _walk(ours, limit, query="tea")
    assert [key for page in pages for key in page] == [i.key for i in whole]
    assert all(len(page) == limit for page in pages[:-1])
    # the first pages, while ranked items remain, are InMemoryStore's too
    ranked = sum(i.score is not None for i in whole)
    for offset in range(0, ranked - limit + 1, limit):
        page = ours.search(("u1",), query="tea", limit=limit, offset=offset)
        assert _hits(page) == _hits(oracle.search(("u1",), query="tea", limit=limit, offset=offset))


def test_query_pages_with_a_filter_walk_one_sequence(tmp_path: Path) -> None:
    ours = _ours(tmp_path, "filtered")
    _remember(ours)
    ours.put(("u1", "mem"), "flag", {"text": "tea flagged", "kept": True}, index=False)
    spec = {"text": {"$ne": "black coffee at noon"}}
    whole = [i.key for i in ours.search(("u1",), query="tea", filter=spec, limit=100)]
    assert "coffee" not in whole and {"secret", "draft", "flag"} <= set(whole)  # unindexed ones too
    assert [key for page in _walk(ours, 2, query="tea", filter=spec) for key in page] == whole


def test_a_repeated_index_path_is_indexed_once(tmp_path: Path) -> None:
    ours = _ours(tmp_path, "repeat", fields=["text", "text"])
    oracle = InMemoryStore(index=_index())
    ours.put(("n",), "a", {"text": "green tea", "b": "chess club"}, index=["b", "b", "b"])
    ours.put(("n",), "c", {"text": "black coffee", "b": "wine bar"}, index=["text", "b", "text"])
    ours.put(("n",), "d", {"text": "tea ceremony"})  # the config's fields, repeated
    oracle.put(("n",), "a", {"text": "green tea", "b": "chess club"}, index=["b"])
    oracle.put(("n",), "c", {"text": "black coffee", "b": "wine bar"}, index=["text", "b"])
    oracle.put(("n",), "d", {"text": "tea ceremony"})
    for query in ("chess", "coffee", "wine", "tea"):
        assert _hits(ours.search(("n",), query=query)) == _hits(oracle.search(("n",), query=query))
    assert ours.store.count() == 4  # a: one text; c: two; d: one
    ours.put(("n",), "a", {"b": "chess club"}, index=["b", "b"])  # put again: still one text
    assert ours.store.count() == 4


def test_a_mixed_batch_with_index_overrides_answers_like_the_in_memory_store(tmp_path: Path) -> None:
    def run(store: BaseStore) -> list[Any]:
        _remember(store)
        ops: list[Op] = [
            SearchOp(("u1",), query="tea", limit=3),
            PutOp(
                ("u1", "mem"), "tea", {"text": "now herbal", "tags": ["mint tea", "sage"]}, index=["tags[*]"]
            ),
            PutOp(("u1", "mem"), "fresh", {"text": "green tea lover"}, index=False),
            PutOp(("u1", "mem"), "wine", {"text": "wine"}),
            PutOp(("u1", "mem"), "wine", None),  # put then delete: the delete wins
            GetOp(("u1", "mem"), "wine"),
            SearchOp(("u1",), query="tea", limit=3, offset=1),
            ListNamespacesOp(),
        ]
        seen = store.batch(ops)
        after = [_hits(store.search(("u1",), query=q, limit=10)) for q in ("tea", "mint tea", "sage")]
        return [
            _hits(seen[0]),  # type: ignore[arg-type]
            getattr(seen[5], "value", None),
            _hits(seen[6]),  # type: ignore[arg-type]
            seen[7],
            after,
            store.get(("u1", "mem"), "wine"),
        ]

    assert run(_ours(tmp_path, "mixed")) == run(InMemoryStore(index=_index()))


def _sqlite() -> SqliteStore:
    store = SqliteStore(sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None))
    store.setup()
    return store


def test_pages_without_a_query_cover_every_item_once_like_sqlite(tmp_path: Path) -> None:
    def run(store: BaseStore) -> list[Any]:
        store.batch([PutOp(("p", str(i % 2)), f"k{i}", {"i": i, "l": [i % 3, True]}) for i in range(9)])
        store.put(("p", "0"), "k2", {"i": 20, "l": [2, True]})
        store.delete(("p", "1"), "k1")
        out = []
        for spec in (None, {"i": {"$gte": 3}}, {"l": [1, True]}):
            pages = [store.search(("p",), filter=spec, limit=2, offset=o) for o in range(0, 12, 2)]
            keys = [i.key for page in pages for i in page]
            out.append((len(keys), sorted(keys)))
        return out

    assert run(LanceStore(uri=str(tmp_path / "plain.lance"), embedder=None)) == run(_sqlite())


def test_paging_while_items_expire_and_reads_refresh_only_their_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [datetime(2031, 5, 1, tzinfo=timezone.utc)]
    monkeypatch.setattr(store_module, "_now", lambda: clock[0])
    ttl: Any = {"default_ttl": 10, "refresh_on_read": True, "omit_expired": True, "sweep_interval_minutes": 1}
    memory = LanceStore(uri=str(tmp_path / "ttl.lance"), embedder=None, ttl=ttl)
    memory.batch([PutOp(("s",), f"k{i}", {"i": i}, ttl=10) for i in range(4)])
    memory.put(("s",), "keep", {"i": 9}, ttl=None)
    order = [i.key for i in memory.search(("s",), refresh_ttl=False)]
    clock[0] += timedelta(minutes=6)
    first = [i.key for i in memory.search(("s",), limit=2, offset=1)]  # refreshes these two only
    assert first == order[1:3]
    assert [i.key for i in memory.search(("s",), refresh_ttl=False)] == order  # a refresh keeps the order
    clock[0] += timedelta(minutes=6)  # the unread ones have expired between the calls
    alive = [i.key for i in memory.search(("s",), refresh_ttl=False)]
    assert alive == [k for k in order if k in first or k == "keep"]
    assert [i.key for i in memory.search(("s",), limit=2, offset=2, refresh_ttl=False)] == alive[2:4]
    assert memory.list_namespaces() == [("s",)]
    assert memory.sweep_ttl() == len(order) - len(set(first) | {"keep"})
