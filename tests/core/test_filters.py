"""The escaping module: filters are built from values and match exactly what they say."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from lance_context import ContextRecord, ContextStore, InvalidFilterError
from lance_context._filters import compile_where, eq, in_, sql_string

from .conftest import text


def test_sql_string_doubles_quotes() -> None:
    assert sql_string("x' OR '1'='1") == "'x'' OR ''1''=''1'"
    assert eq("run_id", "it's") == "run_id = 'it''s'"
    assert in_("role", []) == "false"
    with pytest.raises(InvalidFilterError):
        sql_string(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "where",
    [
        {"role": {"$bogus": 1}},
        {"role": 3},
        {"created_at": "2024-01-01"},
        {"created_at": datetime(2024, 1, 1)},
        {"metadata.n": {"$gt": [1]}},
        {"metadata.n": {"$in": "abc"}},
        {"metadata.n": {"$gt": float("nan")}},
        {"$and": "x"},
        {"$not": 3},
        {"": 1},
        {("meta", "x"): 1},
        {"role": {}},
        ["not", "a", "dict"],
    ],
)
def test_bad_filters_are_rejected(where: object) -> None:
    with pytest.raises(InvalidFilterError):
        compile_where(where)  # type: ignore[arg-type]


BIG = 1234567890123456789  # a 64-bit id: a double cannot tell it from its neighbours


@pytest.fixture
def filled(store: ContextStore) -> ContextStore:
    docs = [
        (
            "a",
            {"topic": "travel", "n": 1, "tags": ["x", "y"], "flag": True, "deep": {"k": "v'1"}, "big": BIG}
            | {"nums": [1, 2], "edge": 2**53},
        ),
        (
            "b",
            {"topic": "food", "n": 2.5, "tags": ["y"], "flag": False, "note": "50%_off", "big": BIG - 1}
            | {"nums": [1.0, 2.5], "edge": 2**53 + 1},
        ),
        ("c", {"topic": "travel", "n": 10, "name": "it's", "big": 1.5}),
        ("d", {"n": "10", "nothing": None}),
        ("e", {}),
    ]
    store.add([text(f"doc {i}", id=i, metadata=m, role="tool" if i == "e" else "user") for i, m in docs])
    return store


def ids(store: ContextStore, where: dict) -> list[str]:
    return [r.id for r in store.records(where=where)]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"topic": "travel"}, ["a", "c"]),
        ({"metadata.topic": {"$ne": "travel"}}, ["b", "d", "e"]),
        ({"topic": {"$in": ["food", "nope"]}}, ["b"]),
        ({"topic": {"$nin": ["travel"]}}, ["b", "d", "e"]),
        ({"n": 1}, ["a"]),
        ({"n": 10}, ["c"]),  # the string "10" is not the number 10
        ({"n": "10"}, ["d"]),
        ({"n": {"$gt": 1}}, ["b", "c"]),
        ({"n": {"$gte": 1, "$lt": 10}}, ["a", "b"]),
        ({"flag": True}, ["a"]),
        ({"flag": False}, ["b"]),
        ({"nothing": None}, ["a", "b", "c", "d", "e"]),  # None matches null or missing, like dict.get
        ({"tags": {"$contains": "y"}}, ["a", "b"]),
        ({"note": {"$contains": "%_"}}, ["b"]),
        ({"name": "it's"}, ["c"]),
        ({("metadata", "deep", "k"): "v'1"}, ["a"]),
        ({"topic": {"$exists": True}}, ["a", "b", "c"]),
        ({"topic": {"$exists": False}}, ["d", "e"]),
        ({"topic": {"$prefix": "tra"}}, ["a", "c"]),
        ({"$or": [{"topic": "food"}, {"n": 10}]}, ["b", "c"]),
        ({"$and": [{"topic": "travel"}, {"n": {"$gt": 5}}]}, ["c"]),
        ({"$not": {"topic": "travel"}}, ["b", "d", "e"]),
        ({"role": "tool"}, ["e"]),
        ({"id": {"$in": ["a", "e"]}}, ["a", "e"]),
        ({"text": {"$contains": "doc c"}}, ["c"]),
        ({"text": {"$icontains": "DOC C"}}, ["c"]),
        ({"topic": {"$icontains": "TRAV"}}, ["a", "c"]),
        ({"note": {"$icontains": "50%_OFF"}}, ["b"]),
        ({"run_id": {"$prefix": "s"}}, ["a", "b", "c", "d", "e"]),
        ({"topic": "x' OR '1'='1"}, []),
        ({"big": BIG}, ["a"]),
        ({"big": {"$in": [BIG - 1, 1.5, "x", None]}}, ["b", "c", "d", "e"]),
        ({"big": {"$ne": BIG}}, ["b", "c", "d", "e"]),
        ({"big": {"$gt": BIG - 1}}, ["a"]),
        ({"big": {"$lte": BIG - 1}}, ["b", "c"]),
        ({"n": {"$in": [1, 10, "10"]}}, ["a", "c", "d"]),
        # whole numbers match as ints or floats inside lists too, as Python compares them
        ({"nums": {"$contains": 2.0}}, ["a"]),
        ({"nums": {"$contains": 1}}, ["a", "b"]),
        ({"nums": [1.0, 2.0]}, ["a"]),
        ({"nums": {"$in": [[1, 2.5], [7]]}}, ["b"]),
        # 2**53 is the first integer a double shares with its neighbour: compared exactly
        ({"edge": 2**53}, ["a"]),
        ({"edge": {"$gt": 2**53}}, ["b"]),
    ],
)
def test_where_matches_exactly(filled: ContextStore, where: dict, expected: list[str]) -> None:
    assert sorted(ids(filled, where)) == sorted(expected)


def test_long_in_and_nin_lists(filled: ContextStore) -> None:
    excluded = list(range(100, 5100))  # "everything but the ids already seen"
    assert sorted(ids(filled, {"n": {"$nin": [*excluded, 10]}})) == ["a", "b", "d", "e"]
    assert sorted(ids(filled, {"topic": {"$nin": [f"t{i}" for i in excluded] + ["food"]}})) == [
        "a",
        "c",
        "d",
        "e",
    ]
    assert sorted(ids(filled, {"n": {"$in": [*excluded, 2.5]}})) == ["b"]


def test_created_at_filters(store: ContextStore) -> None:
    store.add(text("old", id="old", created_at=datetime(2020, 1, 1, tzinfo=timezone.utc)))
    store.add(text("new", id="new"))
    assert ids(store, {"created_at": {"$lt": datetime(2021, 1, 1, tzinfo=timezone.utc)}}) == ["old"]


def test_text_no_store_can_hold_is_a_filter_error_on_every_read(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s"), embedder=None)
    lone = "a\ud800"  # a lone surrogate: a valid Python str, not UTF-8
    for read in (
        lambda: store.records(lone),
        lambda: store.records("s", where={"metadata.g": {"$in": [lone]}}),
        lambda: store.get(lone),
        lambda: store.delete(run_id=lone),
    ):
        with pytest.raises(InvalidFilterError, match="not valid unicode: lone surrogate"):
            read()
    assert store.version() == 1


def test_metadata_type_filters_name_json_types(tmp_path: Path) -> None:
    """``$type`` names a metadata value's JSON type (LangGraph's nested filters rely on it)."""
    store = ContextStore.open(str(tmp_path / "types.lance"), embedder=None)
    values = {"o": {"a": 1}, "eo": {}, "arr": [1], "s": "x", "num": -1.5, "t": True, "nul": None}
    now = datetime.now(timezone.utc)
    store.add(
        [
            ContextRecord(id=k, run_id="r", role="user", created_at=now, metadata={"w": {"v": v}})
            for k, v in values.items()
        ]
        + [ContextRecord(id="missing", run_id="r", role="user", created_at=now, metadata={})]
    )

    def ids(kind: object) -> list[str]:
        return sorted(r.id for r in store.records(where={("metadata", "w", "v"): {"$type": kind}}))

    assert ids("object") == ["eo", "o"]
    assert ids("array") == ["arr"]
    assert ids("string") == ["s"]
    assert ids("number") == ["num"]
    assert ids("boolean") == ["t"]
    assert ids("null") == ["nul"]  # a missing key has no type
    assert ids(["object", "null"]) == ["eo", "nul", "o"]
    with pytest.raises(InvalidFilterError, match=r"\$type takes one of"):
        ids("dict")
    with pytest.raises(InvalidFilterError, match=r"\$type takes one of"):
        ids("string'; DROP")
    with pytest.raises(InvalidFilterError, match="metadata values"):
        store.records(where={"role": {"$type": "string"}})


@pytest.mark.parametrize("where", [{"$bogus": 1}, {"$AND": [{"role": "user"}]}, {"$or": [{"$nope": 1}]}])
def test_an_unknown_combinator_is_refused_not_read_as_a_metadata_key(where: dict[str, object]) -> None:
    with pytest.raises(InvalidFilterError, match="unknown combinator"):
        compile_where(where)


def test_a_metadata_key_starting_with_a_dollar_is_named_with_its_prefix(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "d.lance"), embedder=None)
    store.add([text("a", metadata={"$ref": "x"}), text("b", metadata={"$ref": "y"})])
    assert [r.text for r in store.records(where={"metadata.$ref": "x"})] == ["a"]
    assert [r.text for r in store.records(where={("metadata", "$ref"): "y"})] == ["b"]
