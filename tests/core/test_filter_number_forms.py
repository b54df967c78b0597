"""Lists and dicts of whole numbers match however their ints and floats were mixed.

Metadata keeps ``[1, 2.0]`` as the JSON text ``[1,2.0]``; Python holds it equal to
``[1, 2]``, ``[1.0, 2.0]`` and ``[1.0, 2]``, and so does every filter operator.
"""

from __future__ import annotations

import time

import pytest

from lance_context import ContextStore
from lance_context._filters import compile_where

from .conftest import text

FORMS = ([1, 2], [1.0, 2.0], [1, 2.0], [1.0, 2])


def _store(store: ContextStore, stored: dict[str, object]) -> ContextStore:
    store.add([text(name, metadata={"a": value}) for name, value in stored.items()])
    return store


def _names(store: ContextStore, where: dict[object, object]) -> list[str]:
    return sorted(r.text_payload or "" for r in store.records("s1", where=where))


@pytest.mark.parametrize("stored", FORMS, ids=str)
@pytest.mark.parametrize("query", FORMS, ids=str)
def test_every_int_float_mix_matches_every_other(
    store: ContextStore, stored: list[float], query: list[float]
) -> None:
    _store(store, {"hit": stored, "miss": [1, 2.5]})
    assert _names(store, {"metadata.a": query}) == ["hit"]
    assert _names(store, {"metadata.a": {"$in": [query, "x"]}}) == ["hit"]
    assert _names(store, {"metadata.a": {"$ne": query}}) == ["miss"]
    assert _names(store, {"metadata.a": {"$nin": [query]}}) == ["miss"]
    assert _names(store, {"$not": {"metadata.a": query}}) == ["miss"]


@pytest.mark.parametrize(
    "other",
    [
        [1, 2.5],
        [2, 1],
        [2.0, 1.0],
        [1, 2, 3],
        [1],
        [],
        ["1", 2],
        [1, "2.0"],
        [[1, 2]],
        [True, 2],
        1,
        "[1,2]",
        {"1": 2},
    ],
    ids=repr,
)
def test_only_equal_lists_match(store: ContextStore, other: object) -> None:
    _store(store, {"other": other, "same": [1.0, 2]})
    assert _names(store, {"metadata.a": [1, 2]}) == ["same"]
    assert _names(store, {"metadata.a": {"$ne": [1, 2.0]}}) == ["other"]


def test_nested_lists_and_dicts_inside_a_list(store: ContextStore) -> None:
    _store(
        store,
        {
            "nested": [{"k": [1.0, 2], "j": 3}, [4, 5.0]],
            "off": [{"k": [1.0, 2], "j": 3.5}, [4, 5.0]],
            "dict": {"n": [0.0, 7], "s": "x"},
        },
    )
    assert _names(store, {"metadata.a": [{"j": 3.0, "k": [1, 2.0]}, [4.0, 5]]}) == ["nested"]
    assert _names(store, {"metadata.a": {"$eq": {"n": [0, 7.0], "s": "x"}}}) == ["dict"]
    assert _names(store, {"metadata.a": {"$eq": {"n": [-0.0, 7.0], "s": "x"}}}) == ["dict"]  # -0.0 == 0
    assert _names(store, {"metadata.a": {"$eq": {"n": [0, 7], "s": "y"}}}) == []


def test_strings_beside_numbers_are_matched_literally(store: ContextStore) -> None:
    _store(
        store,
        {
            "dot": ["a.b", 1.0, 2],
            "nodot": ["axb", 1, 2],
            "special": ["(x)*[y]|^$\\", 2.0, "it's", 3],
            "numeric text": ["1.0", 2],
        },
    )
    assert _names(store, {"metadata.a": ["a.b", 1, 2.0]}) == ["dot"]
    assert _names(store, {"metadata.a": ["(x)*[y]|^$\\", 2, "it's", 3.0]}) == ["special"]
    assert _names(store, {"metadata.a": [1, 2]}) == []
    assert _names(store, {"metadata.a": ["1.0", 2.0]}) == ["numeric text"]


def test_contains_finds_a_list_element_in_any_mix(store: ContextStore) -> None:
    _store(
        store,
        {
            "first": [[1, 2.0], [3]],
            "later": [["x", [1, {"k": "]"}]], {"k": 0}, [1.0, 2]],
            "deeper": [[[1, 2]]],
            "longer": [[1, 2, 3]],
            "flat": [1, 2],
        },
    )
    assert _names(store, {"metadata.a": {"$contains": [1, 2]}}) == ["first", "later"]
    assert _names(store, {"metadata.a": {"$contains": [1.0, 2]}}) == ["first", "later"]
    assert _names(store, {"metadata.a": {"$contains": [[1.0, 2]]}}) == ["deeper"]
    assert _names(store, {"metadata.a": {"$contains": {"k": 0.0}}}) == ["later"]


def test_contains_reaches_past_a_deeply_nested_element(store: ContextStore) -> None:
    deep: object = [1]
    for _ in range(12):  # deeper than the pattern can skip: the value's own, all-int and all-float
        deep = [deep]  # forms still find what follows it (a mix of forms there is the known limit)
    _store(store, {"ints": [deep, [1, 2]], "floats": [deep, [1.0, 2.0]], "as given": [deep, [1.0, 2]]})
    assert _names(store, {"metadata.a": {"$contains": [1.0, 2]}}) == ["as given", "floats", "ints"]
    assert {"floats", "ints"} <= set(_names(store, {"metadata.a": {"$contains": [1, 2]}}))


def test_nested_metadata_path(store: ContextStore) -> None:
    store.add([text("deep", metadata={"d": {"e": [3.0, 4]}}), text("flat", metadata={"e": [3, 4]})])
    assert _names(store, {("metadata", "d", "e"): [3, 4.0]}) == ["deep"]


def test_a_long_list_compiles_small_and_runs_fast(store: ContextStore) -> None:
    stored = [float(i) if i % 3 else i for i in range(20)]
    _store(store, {"long": stored, "nested": [stored], "other": list(range(21))})
    query = list(range(20))
    eq, contains = compile_where({"metadata.a": query}), compile_where({"metadata.a": {"$contains": query}})
    assert eq is not None and contains is not None
    assert len(eq) < 400 and len(contains) < 1500  # 2**20 forms would not fit in any filter
    longer = compile_where({"metadata.a": list(range(40))})
    assert longer is not None and len(longer) - len(eq) < 300  # linear in the list's length
    started = time.perf_counter()
    assert _names(store, {"metadata.a": query}) == ["long"]
    assert _names(store, {"metadata.a": {"$in": [query, list(range(21))]}}) == ["long", "other"]
    assert _names(store, {"metadata.a": {"$contains": query}}) == ["nested"]
    assert time.perf_counter() - started < 5
