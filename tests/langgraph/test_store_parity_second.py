"""LanceStore against LangGraph's InMemoryStore: filter equality, nested filters, indexing paths."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import GetOp, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

from lance_context import HashingEmbedder
from lance_context.langgraph import LanceStore

EMBEDDER = HashingEmbedder(64)

#: Values a user stores: flags as bools or as 0/1, whole numbers as ints or floats, nested objects.
ROWS: dict[str, dict[str, Any]] = {
    "true": {"flag": True, "n": 1},
    "false": {"flag": False, "n": 0},
    "one": {"flag": 1, "n": 1.0},
    "zero": {"flag": 0, "n": 0.0},
    "two": {"flag": 2, "n": 2.5},
    "text": {"flag": "1", "n": "5"},
    "object": {"n": {"a": 1, "b": {"c": True}}},
    "empty": {"n": {}},
    "list": {"n": [1, True, {"a": 1, "b": 2}]},
    "null": {"n": None, "flag": None},
    "missing": {"other": 1},
}


def embed(texts: Sequence[str]) -> list[list[float]]:
    """A LangGraph embedding function (deterministic, offline)."""
    return [[float(x) for x in row] for row in EMBEDDER.embed_texts(list(texts))]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[LanceStore, InMemoryStore]:
    """``ROWS`` in a LanceStore and in InMemoryStore (read-only tests)."""
    ours = LanceStore(uri=str(tmp_path_factory.mktemp("parity") / "s.lance"), embedder=None)
    oracle = InMemoryStore()
    for store in (ours, oracle):
        for key, value in ROWS.items():
            store.put(("x",), key, value, index=False)
    return ours, oracle


def found(store: Any, filter: dict[str, Any]) -> list[str]:
    return sorted(item.key for item in store.search(("x",), filter=filter, limit=100))


@pytest.mark.parametrize(
    "filter",
    [
        {"flag": 1},
        {"flag": True},
        {"flag": 0},
        {"flag": False},
        {"flag": 1.0},
        {"n": True},
        {"flag": {"$eq": True}},
        {"flag": {"$eq": 1}},
        {"flag": {"$ne": 1}},
        {"flag": {"$ne": True}},
        {"flag": {"$ne": False}},
    ],
)
def test_bools_equal_the_numbers_python_holds_equal(
    both: tuple[LanceStore, InMemoryStore], filter: dict[str, Any]
) -> None:
    # InMemoryStore compares with ==, so True matches 1 and 1.0, and False matches 0
    ours, oracle = both
    assert found(ours, filter) == found(oracle, filter)


@pytest.mark.parametrize(
    "filter",
    [
        {"n": {}},
        {"n": {"a": 1}},
        {"n": {"a": True}},
        {"n": {"a": None}},
        {"n": {"zz": None}},
        {"n": {"b": {}}},
        {"n": {"b": {"c": 1}}},
        {"n": {"a": {"$ne": 1}}},
        {"n": {"$eq": {}}},
        {"n": {"$eq": {"a": 1, "b": {"c": True}}}},
    ],
)
def test_a_dict_filter_matches_objects_holding_those_members(
    both: tuple[LanceStore, InMemoryStore], filter: dict[str, Any]
) -> None:
    ours, oracle = both
    assert found(ours, filter) == found(oracle, filter)


def test_an_empty_dict_filter_matches_any_object(both: tuple[LanceStore, InMemoryStore]) -> None:
    ours, _ = both
    assert found(ours, {"n": {}}) == ["empty", "object"]
    assert found(ours, {"n": {"$eq": {}}}) == ["empty"]  # an operator keeps exact equality


@pytest.mark.parametrize(
    ("op", "value"),
    list(itertools.product(["$gt", "$gte", "$lt", "$lte"], [0, 1, True, False, 0.5, -3, 2])),
)
def test_comparisons_count_a_bool_as_zero_or_one(tmp_path: Path, op: str, value: object) -> None:
    ours = LanceStore(uri=str(tmp_path / "cmp.lance"), embedder=None)
    oracle = InMemoryStore()  # compares float(stored) with float(value)
    for store in (ours, oracle):
        for key, v in {"t": True, "f": False, "one": 1, "zero": 0.0, "half": 0.5, "neg": -3}.items():
            store.put(("y",), key, {"v": v}, index=False)

    def keys(store: Any) -> list[str]:
        return sorted(i.key for i in store.search(("y",), filter={"v": {op: value}}, limit=100))

    assert keys(ours) == keys(oracle)


def test_index_paths_rank_like_the_in_memory_store(tmp_path: Path) -> None:
    index: Any = {"dims": 64, "embed": embed, "fields": ["text", "sub.t", "list[*]"]}
    ours = LanceStore(uri=str(tmp_path / "idx.lance"), index=index)
    oracle = InMemoryStore(index=index)
    for store in (ours, oracle):
        store.put(("a",), "1", {"text": "green tea", "sub": {"t": "red wine"}, "list": ["coffee", "milk"]})
        store.put(("a",), "2", {"text": "black coffee"}, index=False)
        store.put(("a",), "3", {"other": "nothing indexed"})
        store.put(("a", "b"), "4", {"text": "tea ceremony"}, index=["text"])
        store.put(("a", "b"), "5", {"list": ["tea", "wine"]}, index=["list[1]"])
        store.put(("a", "b"), "6", {"sub": {"t": "tea"}}, index=["sub"])

    def ranked(store: Any, query: str, limit: int, offset: int) -> list[tuple[str, float | None]]:
        hits = store.search(("a",), query=query, limit=limit, offset=offset)
        return [(h.key, None if h.score is None else round(h.score, 5)) for h in hits]

    for query, (limit, offset) in itertools.product(["tea", "wine", "milk"], [(10, 0), (2, 1), (3, 2)]):
        assert ranked(ours, query, limit, offset) == ranked(oracle, query, limit, offset)


def test_async_twins_answer_like_the_in_memory_store(tmp_path: Path) -> None:
    async def scenario(store: Any) -> list[object]:
        await store.aput(("q",), "k", {"v": 1})
        got = await store.aget(("q",), "k")
        hits = await store.asearch(("q",), filter={"v": True})
        spaces = await store.alist_namespaces(prefix=("q",))
        batch = await store.abatch([PutOp(("q",), "j", {"v": 2}), GetOp(("q",), "j"), SearchOp(("q",))])
        await store.adelete(("q",), "k")
        return [
            (got.namespace, got.key, got.value),
            [(h.key, h.score) for h in hits],
            spaces,
            batch[:2],
            [h.key for h in batch[2]],
            await store.aget(("q",), "k"),
            await store.aget(("q",), "j") is not None,
        ]

    ours = LanceStore(uri=str(tmp_path / "async.lance"), embedder=None)
    assert asyncio.run(scenario(ours)) == asyncio.run(scenario(InMemoryStore()))
