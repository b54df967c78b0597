"""Hostile input, property-based: quotes, backslashes, ``%``, ``_``, SQL fragments, NULs,
arbitrary unicode, empty and very long strings, in session ids, roles, ids, text,
metadata keys and values and filter values.

Three properties:

1. a query scoped to one session never returns another session's record;
2. every value comes back exactly (text byte for byte, metadata with its key order);
3. ``where`` filters match exactly the records a Python evaluation of the same filter
   matches (the proof of the escaping module, ``lance_context._filters``).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lance_context import ContextRecord, ContextStore, HashingEmbedder, InvalidRecordError, LanceContextError

from . import scale
from .report import TALLY

pytestmark = pytest.mark.reliability

SETTINGS = settings(
    max_examples=scale.current().examples,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

NASTY = [
    "",
    " ",
    "'",
    "''",
    '"',
    "\\",
    "\\'",
    "'\\",
    "%",
    "_",
    "%_",
    "a%",
    "_a",
    "\\%",
    "\\_",
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE records; --",
    "run_id = 'x'",
    ") OR (true",
    "NULL",
    "null",
    "None",
    "true",
    "1",
    "-0",
    "1e999",
    "\x00",
    "a\x00b",
    "\n",
    "\r\n",
    "\t",
    "\x1f",
    "\x7f",
    "\b\f",
    "é",
    "ß",
    "İ",
    "🙂",
    "👩‍👩‍👧",
    "\u202e",
    "\ufeff",
    "\u2028",
    "a\\nb",
    "u00",
    "\\u0000",
    "${x}",
    "{{x}}",
    "*",
    "?",
    ":p",
    "$eq",
    "$or",
    "metadata.x",
    ".",
    "..",
    "json_get(metadata_index, 'a')",
    "/*",
    "*/",
    "--",
]

nasty_text = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=24),
    st.text(alphabet=st.sampled_from(list("'\"\\%_ ;-*/()=.$\x00\nab")), max_size=12),
    st.builds(lambda a, b: a + b, st.sampled_from(NASTY), st.text(max_size=6)),
)
nonempty_text = nasty_text.filter(bool)

safe_int = st.integers(min_value=-(2**53), max_value=2**53)
json_scalar = st.one_of(
    st.none(), st.booleans(), safe_int, st.floats(allow_nan=False, allow_infinity=False), nasty_text
)
json_value = st.recursive(
    st.one_of(json_scalar, st.integers(min_value=-(2**80), max_value=2**80)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(nasty_text, children, max_size=3)
    ),
    max_leaves=8,
)
metadata_strategy = st.dictionaries(nasty_text, json_value, max_size=4)


def _new_store() -> tuple[tempfile.TemporaryDirectory[str], ContextStore]:
    folder = tempfile.TemporaryDirectory()
    return folder, ContextStore.open(folder.name + "/store", embedder=HashingEmbedder(8))


def _exact(value: Any) -> str:
    """JSON text that tells apart key order, 1 / 1.0 / True."""
    return json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------- sessions and round trips
@st.composite
def sessions_and_records(draw: st.DrawFn) -> tuple[list[str], list[ContextRecord]]:
    sessions = draw(st.lists(nonempty_text, min_size=2, max_size=4, unique=True))
    ids = draw(st.lists(nonempty_text, min_size=1, max_size=8, unique=True))
    records = [
        ContextRecord(
            id=record_id,
            run_id=draw(st.sampled_from(sessions)),
            role=draw(nonempty_text),
            text_payload=draw(nasty_text),
            metadata=draw(metadata_strategy),
        )
        for record_id in ids
    ]
    return sessions, records


def _same(found: ContextRecord, given: ContextRecord) -> bool:
    return (
        found.id == given.id
        and found.run_id == given.run_id
        and found.role == given.role
        and found.text_payload == given.text_payload
        and _exact(found.metadata) == _exact(given.metadata)
        and found.created_at == given.created_at
    )


@SETTINGS
@given(case=sessions_and_records(), query=nasty_text)
def test_sessions_never_leak_and_values_round_trip(
    case: tuple[list[str], list[ContextRecord]], query: str
) -> None:
    sessions, records = case
    folder, store = _new_store()
    with folder:
        store.add(records)
        TALLY.add(inputs_tried=1)
        for session in sessions:
            mine = [r for r in records if r.run_id == session]
            views: list[list[ContextRecord]] = [
                store.records(session),
                store.records(where={"run_id": session}),
                store.records(session, roles=sorted({r.role for r in mine}) or ["nobody"]),
                [hit.record for hit in store.search(query or "x", k=20, run_id=session)],
                [hit.record for hit in store.search(query or "x", k=20, run_id=session, mode="text")],
                [hit.record for hit in store.search(query or "x", k=20, run_id=session, mode="hybrid")],
            ]
            foreign = sum(1 for view in views for r in view if r.run_id != session)
            TALLY.add(leak_checks=len(views), leaks_found=foreign)
            assert foreign == 0
            assert len(views[0]) == len(mine) and all(_same(f, g) for f, g in zip(views[0], mine))
            assert [r.id for r in views[1]] == [r.id for r in mine]
            assert [r.id for r in views[2]] == [r.id for r in mine]
            assert store.count(session) == len(mine)
        assert store.run_ids() == sorted({r.run_id for r in records})
        for given_record, found in zip(records, store.get_many([r.id for r in records])):
            assert _same(found, given_record)


def test_very_long_values_round_trip(tmp_path: Any) -> None:
    store = ContextStore.open(str(tmp_path / "store"), embedder=HashingEmbedder(8))
    session = "s'" + "\\%_" * 30_000
    record = ContextRecord(
        run_id=session,
        role="r" * 10_000,
        text_payload="🙂'\\\x00" * 250_000,
        metadata={"k" * 20_000: "v'" * 100_000, "nested": {"'": ["\\" * 50_000]}},
    )
    neighbour = ContextRecord(run_id=session[:-1], text_payload="neighbour")
    store.add([record, neighbour])
    TALLY.add(inputs_tried=2, leak_checks=2)
    found = store.records(session)
    assert len(found) == 1 and _same(found[0], record)
    assert [r.id for r in store.records(where={"metadata.nested": {"$exists": True}})] == [record.id]
    assert [r.id for r in store.records(session[:-1])] == [neighbour.id]


def test_empty_and_unencodable_values_are_refused_before_writing(tmp_path: Any) -> None:
    store = ContextStore.open(str(tmp_path / "store"), embedder=None)
    version = store.version()
    bad = [
        ContextRecord(run_id="", text_payload="x"),
        ContextRecord(run_id="s", role="", text_payload="x"),
        ContextRecord(id="", run_id="s", text_payload="x"),
        ContextRecord(run_id="\ud800", text_payload="x"),
        ContextRecord(run_id="s", text_payload="lone surrogate \udfff"),
        ContextRecord(run_id="s", text_payload="x", metadata={"k": "\ud83d"}),
        ContextRecord(run_id="s", text_payload="x", metadata={"k": float("nan")}),
        ContextRecord(run_id="s", text_payload="x", metadata={1: "not a str key"}),  # type: ignore[dict-item]
    ]
    for record in bad:
        good = ContextRecord(run_id="s", text_payload="fine")
        with pytest.raises(InvalidRecordError):
            store.add([good, record])
        TALLY.add(inputs_tried=1)
    assert store.version() == version
    assert store.count() == 0


# ---------------------------------------------------------------- filters against Python
MISSING = object()
FIELDS = {"id": "id", "run_id": "run_id", "role": "role", "text": "text_payload"}


def _lookup(metadata: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = metadata
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return MISSING
        node = node[key]
    return node


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _equals(stored: Any, value: Any) -> bool:
    if value is None:
        return stored is MISSING or stored is None
    if stored is MISSING:
        return False
    if _is_number(value):
        return _is_number(stored) and float(stored) == float(value)
    if isinstance(value, (str, bool)):
        return type(stored) is type(value) and stored == value
    return isinstance(stored, (list, dict)) and _canonical(stored) == _canonical(value)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def _metadata_matches(stored: Any, op: str, value: Any) -> bool:
    if op == "$eq":
        return _equals(stored, value)
    if op == "$ne":
        return not _equals(stored, value)
    if op == "$in":
        return any(_equals(stored, v) for v in value)
    if op == "$nin":
        return not any(_equals(stored, v) for v in value)
    if op in _ORDER:
        if _is_number(value):
            return _is_number(stored) and _ORDER[op](float(stored), float(value))
        return isinstance(stored, str) and _ORDER[op](stored, value)
    if op == "$contains":
        if isinstance(stored, list) and any(_equals(e, value) and e is not MISSING for e in stored):
            return True
        return isinstance(value, str) and isinstance(stored, str) and value in stored
    if op == "$prefix":
        return isinstance(stored, str) and stored.startswith(value)
    if op == "$exists":
        return (stored is not MISSING) == bool(value)
    raise AssertionError(op)


def _field_matches(stored: str, op: str, value: Any) -> bool:
    if op == "$eq":
        return stored == value
    if op == "$ne":
        return stored != value
    if op == "$in":
        return stored in value
    if op == "$nin":
        return stored not in value
    if op in _ORDER:
        return _ORDER[op](stored, value)
    if op == "$contains":
        return value in stored
    if op == "$prefix":
        return stored.startswith(value)
    raise AssertionError(op)


def matches(record: ContextRecord, where: Mapping[Any, Any]) -> bool:
    """The Python meaning of a ``where`` dict: what the store must return."""
    for key, spec in where.items():
        if key == "$and":
            ok = all(matches(record, sub) for sub in spec)
        elif key == "$or":
            ok = any(matches(record, sub) for sub in spec)
        elif key == "$not":
            ok = not matches(record, spec)
        else:
            conditions = spec.items() if isinstance(spec, dict) else [("$eq", spec)]
            if isinstance(key, tuple):
                stored = _lookup(record.metadata, key[1:])
                ok = all(_metadata_matches(stored, op, v) for op, v in conditions)
            elif key.startswith("metadata."):
                stored = _lookup(record.metadata, (key[len("metadata.") :],))
                ok = all(_metadata_matches(stored, op, v) for op, v in conditions)
            else:
                stored = getattr(record, FIELDS[key])
                ok = all(_field_matches(stored, op, v) for op, v in conditions)
        if not ok:
            return False
    return True


# Filter values: numbers stay within 2**53 and floats stay out of lists and objects, where
# numbers compare by their JSON text (documented in _filters); everything else is hostile.
filter_scalar = st.one_of(
    st.none(), st.booleans(), safe_int, st.floats(allow_nan=False, allow_infinity=False, width=32), nasty_text
)
container_scalar = st.one_of(st.none(), st.booleans(), safe_int, nasty_text)
filter_value = st.one_of(
    filter_scalar,
    st.lists(container_scalar, max_size=3),
    st.dictionaries(nasty_text, container_scalar, max_size=3),
)


@st.composite
def filter_case(draw: st.DrawFn) -> tuple[list[ContextRecord], list[dict[Any, Any]]]:
    keys = draw(st.lists(nasty_text, min_size=2, max_size=3, unique=True))
    inner = draw(nasty_text)
    values = draw(st.lists(filter_value, min_size=3, max_size=6))
    texts = draw(st.lists(nasty_text, min_size=2, max_size=4))
    roles = draw(st.lists(nonempty_text, min_size=1, max_size=3, unique=True))
    records = []
    for n in range(draw(st.integers(4, 9))):
        metadata: dict[str, Any] = {}
        for key in draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys))):
            if draw(st.integers(0, 5)) == 0:
                metadata[key] = {inner: draw(st.sampled_from(values))}
            else:
                metadata[key] = draw(st.one_of(st.sampled_from(values), filter_value))
        records.append(
            ContextRecord(
                id=f"r{n}",
                run_id=draw(st.sampled_from(roles)),
                role=draw(st.sampled_from(roles)),
                text_payload=draw(st.sampled_from(texts)),
                metadata=metadata,
            )
        )

    def clause(depth: int) -> dict[Any, Any]:
        kind = draw(st.integers(0, 9 if depth < 2 else 6))
        if kind <= 4:
            key: Any = "metadata." + draw(st.sampled_from(keys))
            if kind == 4:
                key = ("metadata", draw(st.sampled_from(keys)), inner)
            op = draw(
                st.sampled_from(
                    [
                        "$eq",
                        "$ne",
                        "$in",
                        "$nin",
                        "$gt",
                        "$gte",
                        "$lt",
                        "$lte",
                        "$contains",
                        "$prefix",
                        "$exists",
                        "bare",
                    ]
                )
            )
            known = st.sampled_from(values)
            if op in ("$in", "$nin"):
                value: Any = draw(st.lists(st.one_of(known, filter_value), max_size=3))
            elif op in _ORDER:
                value = draw(
                    st.one_of(
                        nasty_text, safe_int, st.floats(allow_nan=False, allow_infinity=False, width=32)
                    )
                )
            elif op == "$contains":
                value = draw(st.one_of(nasty_text, container_scalar))
            elif op == "$prefix":
                value = draw(nasty_text)
            elif op == "$exists":
                value = draw(st.booleans())
            else:
                value = draw(st.one_of(known, filter_value))
            return (
                {key: value}
                if op == "bare" and not isinstance(value, dict)
                else {key: {op if op != "bare" else "$eq": value}}
            )
        if kind <= 6:
            field = draw(st.sampled_from(sorted(FIELDS)))
            op = draw(st.sampled_from(["$eq", "$ne", "$in", "$nin", "$gt", "$lte", "$contains", "$prefix"]))
            pool = texts + roles
            value = (
                draw(st.lists(st.one_of(st.sampled_from(pool), nasty_text), max_size=3))
                if op in ("$in", "$nin")
                else draw(st.one_of(st.sampled_from(pool), nasty_text))
            )
            return {field: {op: value}}
        if kind == 7:
            return {"$not": clause(depth + 1)}
        return {
            draw(st.sampled_from(["$and", "$or"])): [
                clause(depth + 1) for _ in range(draw(st.integers(1, 2)))
            ]
        }

    return records, [clause(0) for _ in range(6)]


@SETTINGS
@given(case=filter_case())
def test_where_filters_match_what_python_matches(
    case: tuple[list[ContextRecord], list[dict[Any, Any]]],
) -> None:
    records, filters = case
    folder, store = _new_store()
    with folder:
        store.add(records)
        for where in filters:
            TALLY.add(inputs_tried=1)
            expected = [r.id for r in records if matches(r, where)]
            try:
                found = [r.id for r in store.records(where=where)]
            except LanceContextError as exc:
                raise AssertionError(f"filter {where!r} failed: {exc}") from exc
            assert found == expected, f"filter {where!r}"
