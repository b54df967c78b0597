"""LanceStore and LanceCheckpointSaver filters against LangGraph's own: lists, equality, numeric strings.

``InMemoryStore`` (the reference) compares a list filter element by element (each element
as a filter of its own, so an object element matches an object holding its members, and
``True`` matches ``1``), ``$eq``/``$ne`` with Python's ``==``, and ranges with ``float()``
on both sides, so ``"10"`` is greater than ``6``. ``SqliteStore`` agrees on a numeric
string against a number; where the two disagree, ``LanceStore`` follows ``InMemoryStore``.
Filters the context store cannot run exactly are finished in Python, so paging and
semantic search must still return full pages. ``InMemorySaver`` filters checkpoint
metadata with ``==`` on whole values, so ``[1, 2]`` finds ``[True, 2]`` there too.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore
from langgraph.store.sqlite import SqliteStore

from lance_context import ContextStore
from lance_context.langgraph import LanceCheckpointSaver, LanceStore

from .test_langgraph_store_third_pass import DIMS, _embed

#: Values a user stores: lists of numbers, flags and objects, numbers and numeric strings.
ROWS: dict[str, dict[str, Any]] = {
    "ints": {"v": [1, 2]},
    "floats": {"v": [1.0, 2]},
    "flag": {"v": [True, 2]},
    "one": {"v": [1]},
    "object": {"v": [{"a": 1, "b": 2}]},
    "small": {"v": [{"a": 1}]},
    "nested": {"v": [[1, 2], 3]},
    "words": {"v": ["x", "y"]},
    "empty": {"v": []},
    "holder": {"v": {"a": [1, 2], "b": {"c": 1}}},
    "null": {"v": None},
    "missing": {"w": 1},
}

#: Only numbers and numeric strings (``InMemoryStore`` raises on anything else in a range).
NUMBERS: dict[str, dict[str, Any]] = {
    "n10": {"v": 10},
    "n5": {"v": 5},
    "s10": {"v": "10"},
    "s5": {"v": "5"},
    "f": {"v": 7.5},
    "s75": {"v": "7.5"},
    "flag": {"v": True},
    "exp": {"v": "1e3"},
    "neg": {"v": "-2"},
}


def _filled(store: BaseStore, rows: dict[str, dict[str, Any]]) -> BaseStore:
    store.batch([PutOp(("x",), key, value, index=False) for key, value in rows.items()])
    return store


def _found(store: BaseStore, filter: dict[str, Any]) -> list[str]:
    return sorted(item.key for item in store.search(("x",), filter=filter, limit=100))


@pytest.fixture(scope="module")
def lists(tmp_path_factory: pytest.TempPathFactory) -> tuple[BaseStore, BaseStore]:
    """``ROWS`` in a LanceStore and in InMemoryStore (read-only tests)."""
    path = tmp_path_factory.mktemp("lists") / "s.lance"
    ours = LanceStore(store=ContextStore.open(str(path), embedder=None))
    return _filled(ours, ROWS), _filled(InMemoryStore(), ROWS)


@pytest.fixture(scope="module")
def numbers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BaseStore, BaseStore, BaseStore]]:
    """``NUMBERS`` in a LanceStore, InMemoryStore and SqliteStore (read-only tests)."""
    path = tmp_path_factory.mktemp("numbers") / "s.lance"
    connection = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    sql = SqliteStore(connection)
    sql.setup()
    ours = LanceStore(store=ContextStore.open(str(path), embedder=None))
    yield _filled(ours, NUMBERS), _filled(InMemoryStore(), NUMBERS), _filled(sql, NUMBERS)
    connection.close()


@pytest.mark.parametrize(
    "filter",
    [
        {"v": [1, 2]},
        {"v": [1.0, 2.0]},
        {"v": [True, 2]},
        {"v": (1, 2)},
        {"v": [{"a": 1}]},
        {"v": [{"a": 1, "b": 2}]},
        {"v": [[1, 2], 3]},
        {"v": [[True, 2], 3]},
        {"v": ["x", "y"]},
        {"v": []},
        {"v": {"a": [1, 2]}},
        {"v": {"a": [True, 2.0], "b": {"c": True}}},
    ],
)
def test_a_list_filter_matches_element_by_element(
    lists: tuple[BaseStore, BaseStore], filter: dict[str, Any]
) -> None:
    # [True, 2] finds [1, 2], and [{"a": 1}] finds [{"a": 1, "b": 2}], as in InMemoryStore
    ours, memory = lists
    assert _found(ours, filter) == _found(memory, filter)


@pytest.mark.parametrize(
    "filter",
    [
        {"v": {"$eq": [1, 2]}},
        {"v": {"$eq": [True, 2.0]}},
        {"v": {"$ne": [1, 2]}},
        {"v": {"$eq": [{"a": 1}]}},
        {"v": {"$ne": [{"a": 1}]}},
        {"v": {"$eq": {"a": [1.0, True], "b": {"c": 1}}}},
        {"v": {"$ne": {"a": [1, 2], "b": {"c": True}}}},
        {"v": {"$eq": ["x", "y"]}},
        {"v": {"$ne": []}},
    ],
)
def test_eq_and_ne_compare_lists_and_objects_as_python_does(
    lists: tuple[BaseStore, BaseStore], filter: dict[str, Any]
) -> None:
    # whole-value ==: True == 1 inside a list too, an object element must be equal (not a subset)
    ours, memory = lists
    assert _found(ours, filter) == _found(memory, filter)


@pytest.mark.parametrize(
    "filter",
    [
        {"v": {"$gt": 6}},
        {"v": {"$lte": 7.5}},
        {"v": {"$gte": True}},
        {"v": {"$gt": "6"}},
        {"v": {"$lt": "6"}},
        {"v": {"$gte": "10"}},
        {"v": {"$gt": 0, "$lt": "9"}},
    ],
)
def test_ranges_read_numeric_strings_as_numbers(
    numbers: tuple[BaseStore, BaseStore, BaseStore], filter: dict[str, Any]
) -> None:
    ours, memory, sql = numbers
    assert _found(ours, filter) == _found(memory, filter)
    if all(not isinstance(v, str) for v in filter["v"].values()):
        # SqliteStore casts the stored text for a number (it compares text with text otherwise)
        assert _found(ours, filter) == _found(sql, filter)


def test_strings_that_are_not_numbers_still_compare_as_strings(tmp_path: Path) -> None:
    # InMemoryStore raises here (float("2024-05-01")); ISO dates keep their order, as in SqliteStore
    days = {"a": {"day": "2024-04-30"}, "b": {"day": "2024-05-01"}, "c": {"day": "2024-05-02"}}
    ours = _filled(LanceStore(uri=str(tmp_path / "s.lance"), embedder=None), {**days, "d": {"day": 3}})
    connection = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    sql = SqliteStore(connection)
    sql.setup()
    _filled(sql, days)
    for spec in ({"$gte": "2024-05-01"}, {"$lt": "2024-05-01"}, {"$gt": "2024-04-30", "$lte": "2024-05-02"}):
        assert _found(ours, {"day": spec}) == _found(sql, {"day": spec})
    # a number is not before a date (SqliteStore orders every number before every string)
    assert _found(ours, {"day": {"$lt": "2024-05-01"}}) == ["a"]
    connection.close()


def test_pages_of_a_filter_finished_in_python_are_full(tmp_path: Path) -> None:
    # half the values are numeric strings: every page is full and the pages cover the matches once
    rows = {f"k{i:02}": {"v": str(i) if i % 2 else i} for i in range(30)}
    ours = _filled(LanceStore(uri=str(tmp_path / "s.lance"), embedder=None), rows)
    memory = _filled(InMemoryStore(), rows)
    spec = {"v": {"$gte": 10}}
    pages = [[i.key for i in ours.search(("x",), filter=spec, limit=6, offset=o)] for o in range(0, 24, 6)]
    assert [len(page) for page in pages] == [6, 6, 6, 2]
    assert sorted(key for page in pages for key in page) == _found(memory, spec)
    assert pages[0] == [f"k{i}" for i in range(29, 23, -1)]  # newest first
    assert ours.search(("x",), filter=spec, limit=0) == []


def _ranked(items: list[Any]) -> list[tuple[str, float | None]]:
    return [(i.key, None if i.score is None else round(i.score, 3)) for i in items]


WORDS = [
    "green tea",
    "black coffee",
    "chess club",
    "garden roses",
    "tea ceremony",
    "coffee beans",
    "rose tea",
]


def _semantic(store: BaseStore) -> BaseStore:
    for i, word in enumerate(WORDS):
        value = {"text": word, "tags": [i % 2 == 0, i], "n": str(i) if i % 3 else i}
        store.put(("u",), f"k{i}", value)
    store.put(("u",), "plain", {"text": "tea", "tags": [True, 7], "n": 7}, index=False)
    store.put(
        ("u",),
        "deep",
        {"a": {"b": [{"c": "tea garden"}, {"c": "coffee"}]}, "tags": [1, 9], "n": "9"},
        index=["a.b[*].c"],
    )
    return store


@pytest.mark.parametrize(
    ("query", "options"),
    [
        ("tea", {"filter": {"tags": [1, 0]}}),
        ("tea", {"filter": {"tags": [1, 9]}, "limit": 1}),
        ("tea", {"filter": {"tags": [1, 9]}, "limit": 1, "offset": 1}),
        ("coffee", {"filter": {"n": {"$gte": 3}}, "limit": 2, "offset": 1}),
        ("garden", {"filter": {"n": {"$lt": "5"}}, "limit": 20}),
        ("tea", {"filter": {"tags": {"$eq": [True, 7]}}}),
    ],
)
def test_semantic_search_with_a_filter_finished_in_python_matches(
    tmp_path: Path, query: str, options: dict[str, Any]
) -> None:
    index: Any = {"dims": DIMS, "embed": _embed, "fields": ["text"]}
    ours = _semantic(LanceStore(uri=str(tmp_path / "s.lance"), index=index))
    memory = _semantic(InMemoryStore(index=index))
    assert _ranked(ours.search(("u",), query=query, **options)) == _ranked(
        memory.search(("u",), query=query, **options)
    )


def test_async_searches_use_the_same_filters(tmp_path: Path) -> None:
    index: Any = {"dims": DIMS, "embed": _embed, "fields": ["text"]}
    ours = _semantic(LanceStore(uri=str(tmp_path / "s.lance"), index=index))
    memory = _semantic(InMemoryStore(index=index))

    async def run(store: BaseStore) -> Any:
        hits = await store.asearch(("u",), query="tea", filter={"tags": [1, 4.0]})
        batch = await store.abatch([SearchOp(("u",), filter={"n": {"$gt": 3}}, limit=20)])
        return _ranked(hits), sorted(i.key for i in batch[0] or [])

    assert asyncio.run(run(ours)) == asyncio.run(run(memory))


#: Checkpoint metadata a graph's caller may attach (flags and numbers inside lists and objects).
METADATA: list[dict[str, Any]] = [
    {"tags": [True, 2]},
    {"tags": [1, 2.0]},
    {"tags": [{"a": 1, "b": 2}]},
    {"o": {"a": 1, "b": [1]}},
    {"o": {"a": True}},
    {"tags": ["x", None]},
    {"s": "10"},
    {"s": 10},
]


@pytest.mark.parametrize(
    "filter",
    [
        {"tags": [1, 2]},
        {"tags": [True, 2.0]},
        {"tags": [{"a": 1}]},
        {"o": {"a": 1}},
        {"o": {"a": 1.0, "b": [True]}},
        {"tags": ["x", None]},
        {"s": 10},
        {"tags": {"$gt": 1}},
    ],
)
def test_checkpoint_metadata_filters_compare_whole_values_as_python_does(
    tmp_path: Path, filter: dict[str, Any]
) -> None:
    # InMemorySaver keeps a checkpoint when filter_value == metadata.get(key)
    def steps(saver: Any) -> list[Any]:
        config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        for step, metadata in enumerate(METADATA):
            config = saver.put(config, empty_checkpoint(), {**metadata, "step": step}, {})
        everywhere = [t.metadata["step"] for t in saver.list(None, filter=filter)]
        newest = [
            t.metadata["step"]
            for t in saver.list({"configurable": {"thread_id": "t"}}, filter=filter, limit=1)
        ]
        return [everywhere, newest]

    ours = LanceCheckpointSaver(store=ContextStore.open(str(tmp_path / "c.lance")))
    assert steps(ours) == steps(InMemorySaver())
