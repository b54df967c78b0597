"""The escaping module: every filter sent to Lance is built here, from values, never pasted.

User values (run ids, roles, ids, metadata keys and values) only ever enter SQL as
literals produced by :func:`sql_string` (single quotes doubled; Lance's SQL takes
backslashes literally) or as numbers checked to be finite. Column names come from a
fixed list, never from the caller.

The ``where`` dict form (shared by the store and every adapter):

```python
{"role": "user"}                                  # equality on a record field
{"metadata.topic": {"$in": ["travel", "food"]}}   # metadata key (top level)
{("metadata", "a", "b"): {"$gte": 3}}             # nested metadata path
{"$or": [{"role": "user"}, {"metadata.pinned": True}], "$not": {"role": "tool"}}
```

Operators: ``$eq $ne $in $nin $gt $gte $lt $lte $contains $icontains $prefix $exists $type``
(``$icontains``: a substring of a string, ignoring case; ``$type``: the JSON type of a
metadata value, one of ``object array string number boolean null``, or a list of
them); combinators ``$and $or $not``. A key that is not a record field is read as a metadata key.
Whole numbers match however they were stored: ``2`` finds ``2.0``, and ``[1, 2]``
finds ``[1.0, 2]`` (one regular expression per value, see ``_filter_json``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ._errors import InvalidFilterError
from ._filter_json import (
    element_pattern,
    equals_pattern,
    found_pattern,
    has_whole_numbers,
    json_forms,
    json_text,
    type_condition,
)

__all__ = [
    "RECORD_FIELDS",
    "and_",
    "compile_where",
    "eq",
    "in_",
    "json_text",
    "sql_string",
    "time_range",
]

#: Record fields a filter may name, mapped to their column.
RECORD_FIELDS: dict[str, str] = {
    "id": "id",
    "run_id": "run_id",
    "role": "role",
    "content_type": "content_type",
    "created_at": "created_at",
    "text": "text_payload",
    "text_payload": "text_payload",
}

_COMPARISONS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_OPERATORS = frozenset(
    {"$eq", "$ne", "$in", "$nin", "$contains", "$icontains", "$prefix", "$exists", "$type", *_COMPARISONS}
)


def sql_string(value: str) -> str:
    """A SQL string literal for ``value``: the only way a user string enters a filter."""
    if not isinstance(value, str):
        raise InvalidFilterError(f"expected a string filter value, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # no stored text can hold it, and Lance's SQL cannot take it
        raise InvalidFilterError(
            f"filter value {value!r} is not valid unicode: lone surrogate at position {exc.start}"
        ) from None
    return "'" + value.replace("'", "''") + "'"


def _sql_number(value: float) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidFilterError(f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise InvalidFilterError("filter numbers must be finite")
    if isinstance(value, int) and abs(value) < 2**63:
        return str(value)
    return repr(float(value))


def _exact_int(value: object) -> bool:
    """An integer a double cannot hold exactly (a 64-bit id): compared as BIGINT first."""
    return isinstance(value, int) and not isinstance(value, bool) and 2**53 <= abs(value) < 2**63


def _numeric(text: str, op: str, values: Sequence[float]) -> str:
    """JSON text ``text`` against numbers: ``op`` is a comparison, or ``IN`` for a list.

    A stored integer is compared exactly when the query holds one beyond 2**53 (as
    BIGINT); every other number, and any stored text BIGINT cannot read, as DOUBLE.
    """

    def listed(numbers: Sequence[float]) -> str:
        return f"({', '.join(_sql_number(v) for v in numbers)})" if op == "IN" else _sql_number(numbers[0])

    double = f"try_cast({text} AS DOUBLE) {op} {listed(values)}"
    if not any(_exact_int(v) for v in values):
        return double
    # BIGINT reads only integer text; the integers among the values, exactly (no double in the list)
    integers = [int(v) for v in values if (isinstance(v, int) or v.is_integer()) and abs(v) < 2**63]
    return f"coalesce(try_cast({text} AS BIGINT) {op} {listed(integers)}, {double})"


def _sql_timestamp(value: datetime) -> str:
    if not isinstance(value, datetime):
        raise InvalidFilterError(f"since/until take timezone-aware datetimes, got {value!r}")
    if value.tzinfo is None:
        raise InvalidFilterError("datetime filter values must be timezone-aware")
    iso = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"TIMESTAMP {sql_string(iso)}"


def _literal(column: str, value: object) -> str:
    if column == "created_at":
        if not isinstance(value, datetime):
            raise InvalidFilterError("created_at filters take timezone-aware datetimes")
        return _sql_timestamp(value)
    if isinstance(value, str):
        return sql_string(value)
    raise InvalidFilterError(f"field {column!r} takes string values, got {value!r}")


def eq(column: str, value: str) -> str:
    """``column = 'value'`` with the value escaped."""
    return f"{column} = {sql_string(value)}"


def in_(column: str, values: Iterable[str]) -> str:
    """``column IN (...)`` with every value escaped; an empty set matches nothing."""
    items = [sql_string(v) for v in values]
    if not items:
        return "false"
    return f"{column} IN ({', '.join(items)})"


def and_(*clauses: str | None) -> str | None:
    """Join clauses with AND, skipping empty ones; None when nothing remains."""
    parts = [c for c in clauses if c]
    if not parts:
        return None
    return " AND ".join(f"({c})" for c in parts)


def time_range(since: datetime | None, until: datetime | None) -> str | None:
    """``created_at`` bounds: since inclusive, until exclusive."""
    parts = []
    if since is not None:
        parts.append(f"created_at >= {_sql_timestamp(since)}")
    if until is not None:
        parts.append(f"created_at < {_sql_timestamp(until)}")
    return and_(*parts)


def _metadata_node(path: Sequence[str]) -> str:
    """The JSONB node at a path of object keys.

    Lance's ``json_get`` also reads array elements by position (``'0'`` is the first
    element), so every step below the top level first checks that its parent is an
    object: a key addresses object members only.
    """
    node = "metadata_index"  # always an object
    for depth, key in enumerate(path):
        if not isinstance(key, str):
            raise InvalidFilterError(f"metadata keys must be strings, got {key!r}")
        if depth:
            node = f"coalesce(CASE WHEN starts_with({_text(node)}, '{{') THEN {node} END)"
        node = f"json_get({node}, {sql_string(key)})"
    return node


def _text(node: str) -> str:
    """The JSON text of a metadata node (NULL when the key is missing)."""
    return f"json_extract({node}, '$')"


def _string(node: str) -> str:
    """A string node's raw, unescaped value; NULL when the node is not a string.

    Substring and order tests must run on the raw value: on the JSON text, ``"n"`` would
    be found inside the escape of a newline, and the closing quote would sort ``"a"``
    after ``"a!"``. ``json_get_string`` fails on objects and arrays, hence the guard;
    Lance accepts a CASE only as a function argument, hence the ``coalesce``.
    """
    raw = "json_get_string" + node.removeprefix("json_get")  # json_get(x, 'k') -> json_get_string(x, 'k')
    return f"coalesce(CASE WHEN {_is_string(node)} THEN {raw} END)"


def _is_string(node: str) -> str:
    return f"starts_with({_text(node)}, '\"')"


def _resolve(key: object) -> tuple[str, bool]:
    """Map a where-dict key to (SQL expression, is_metadata)."""
    if isinstance(key, tuple):
        if len(key) < 2 or key[0] != "metadata":
            raise InvalidFilterError(f"a tuple key must look like ('metadata', 'key', ...): {key!r}")
        return _metadata_node(key[1:]), True
    if not isinstance(key, str) or not key:
        raise InvalidFilterError(f"filter keys must be non-empty strings, got {key!r}")
    if key.startswith("metadata."):
        return _metadata_node([key[len("metadata.") :]]), True
    if key in RECORD_FIELDS:
        return RECORD_FIELDS[key], False
    if key.startswith("$"):  # a misspelt combinator would otherwise filter on a metadata key
        raise InvalidFilterError(
            f"unknown combinator {key!r}: use $and, $or or $not (a metadata key starting with '$' "
            f"is named as 'metadata.{key}')"
        )
    return _metadata_node([key]), True


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metadata_eq(node: str, value: object) -> str:
    return _metadata_in(node, [value])


def _metadata_in(node: str, values: Sequence[object]) -> str:
    """The metadata value at ``node`` equals one of ``values``: one IN list per kind of value."""
    text = _text(node)
    numbers = [v for v in values if _is_number(v)]
    others = [v for v in values if v is not None and not _is_number(v)]
    parts = [f"({text} IS NULL OR {text} = 'null')"] if any(v is None for v in values) else []
    if numbers:
        parts.append(_numeric(text, "IN", numbers))  # type: ignore[arg-type]
    mixed = [v for v in others if has_whole_numbers(v)]  # lists and dicts: ints and floats may mix
    if exact := [v for v in others if not has_whole_numbers(v)]:
        forms = dict.fromkeys(form for v in exact for form in json_forms(v))
        parts.append(f"{text} IN ({', '.join(sql_string(form) for form in forms)})")
    if mixed:
        parts.append(f"regexp_like({text}, {sql_string(equals_pattern(mixed))})")
    return " OR ".join(parts) if len(parts) < 2 else " OR ".join(f"({p})" for p in parts)


def _metadata_compare(node: str, op: str, value: object) -> str:
    if _is_number(value):
        return _numeric(_text(node), op, [value])  # type: ignore[list-item]
    if isinstance(value, datetime):
        value = value.isoformat()
    if isinstance(value, str):
        return f"{_string(node)} {op} {sql_string(value)}"
    raise InvalidFilterError(f"{op} compares numbers, strings or datetimes, not {value!r}")


def _metadata_contains(node: str, value: object) -> str:
    forms = json_forms(value)
    array_match = " OR ".join(f"json_array_contains({node}, '$', {sql_string(form)})" for form in forms)
    if has_whole_numbers(value):
        # One pattern finds an element in any int/float mix; the forms still find one behind an
        # element nested too deep for it. Both run only where the value shows up at all: a
        # cheap pattern, where json_array_contains parses every row (~4 ms per 1,000 rows).
        text = _text(node)
        found, element = (
            f"regexp_like({text}, {sql_string(p([value]))})" for p in (found_pattern, element_pattern)
        )
        array_match = f"coalesce(CASE WHEN {found} THEN {element} OR {array_match} END)"
    elif len(forms) > 1:
        array_match = f"({array_match})"
    if isinstance(value, str):
        if not value:
            return f"({_is_string(node)} OR {array_match})"
        return f"(strpos({_string(node)}, {sql_string(value)}) > 0 OR {array_match})"
    return array_match


def _icontains(text: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidFilterError(f"$icontains takes a string, got {value!r}")
    return f"strpos(lower({text}), lower({sql_string(value)})) > 0"


def _column_condition(column: str, op: str, value: object) -> str:
    if op == "$eq":
        return f"{column} = {_literal(column, value)}"
    if op == "$ne":
        return f"{column} <> {_literal(column, value)}"
    if op in ("$in", "$nin"):
        values = _as_list(value, op)
        clause = "false" if not values else f"{column} IN ({', '.join(_literal(column, v) for v in values)})"
        return clause if op == "$in" else f"NOT ({clause})"
    if op in _COMPARISONS:
        return f"{column} {_COMPARISONS[op]} {_literal(column, value)}"
    if op == "$contains":
        if not isinstance(value, str):
            raise InvalidFilterError("$contains on a record field takes a string")
        return f"strpos({column}, {sql_string(value)}) > 0"
    if op == "$icontains":
        return _icontains(column, value)
    if op == "$prefix":
        if not isinstance(value, str):
            raise InvalidFilterError("$prefix takes a string")
        return f"starts_with({column}, {sql_string(value)})"
    if op == "$exists":
        return f"{column} IS {'NOT ' if value else ''}NULL"
    if op == "$type":
        raise InvalidFilterError(f"$type applies to metadata values, not the record field {column!r}")
    raise InvalidFilterError(f"unknown operator {op!r}")


def _metadata_condition(node: str, op: str, value: object) -> str:
    if op == "$eq":
        return _metadata_eq(node, value)
    if op == "$ne":
        return f"NOT coalesce({_metadata_eq(node, value)}, false)"
    if op in ("$in", "$nin"):
        values = _as_list(value, op)
        clause = _metadata_in(node, values) if values else "false"
        return f"({clause})" if op == "$in" else f"NOT coalesce(({clause}), false)"
    if op in _COMPARISONS:
        return _metadata_compare(node, _COMPARISONS[op], value)
    if op == "$contains":
        return _metadata_contains(node, value)
    if op == "$icontains":
        return _icontains(_string(node), value)
    if op == "$prefix":
        if not isinstance(value, str):
            raise InvalidFilterError("$prefix takes a string")
        text = _text(node)
        return f"starts_with({text}, {sql_string(json_text(value)[:-1])})"
    if op == "$exists":
        return f"{_text(node)} IS {'NOT ' if value else ''}NULL"
    if op == "$type":
        return type_condition(_text(node), value)
    raise InvalidFilterError(f"unknown operator {op!r}")


def _as_mapping(value: object) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise InvalidFilterError(f"$and/$or take a list of filter dicts, got {value!r}")
    return value


def _as_list(value: object, op: str) -> list[object]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidFilterError(f"{op} takes a list of values, got {value!r}")
    return list(value)


def _field_clause(key: object, spec: object) -> str:
    expression, is_metadata = _resolve(key)
    conditions: list[tuple[Any, Any]]
    if isinstance(spec, Mapping):
        conditions = list(spec.items())
        if not conditions:
            raise InvalidFilterError(f"empty operator dict for {key!r}")
    else:
        conditions = [("$eq", spec)]
    parts = []
    for op, value in conditions:
        if op not in _OPERATORS:
            raise InvalidFilterError(f"unknown operator {op!r}; use one of {', '.join(sorted(_OPERATORS))}")
        build = _metadata_condition if is_metadata else _column_condition
        parts.append(build(expression, op, value))
    return " AND ".join(f"({p})" for p in parts)


def compile_where(where: Mapping[Any, Any] | None) -> str | None:
    """Compile a ``where`` dict into a Lance SQL filter, escaping every value.

    Args:
        where: The filter dict (see the module docstring), or None.

    Returns:
        The SQL filter, or None when there is nothing to filter.

    Raises:
        InvalidFilterError: For unknown operators, bad values or malformed dicts.
    """
    if where is None:
        return None
    if not isinstance(where, Mapping):
        raise InvalidFilterError(f"where must be a dict, got {type(where).__name__}")
    parts: list[str] = []
    for key, spec in where.items():
        if key in ("$and", "$or"):
            subs = [compile_where(_as_mapping(s)) or "true" for s in _as_list(spec, key)]
            joiner = " AND " if key == "$and" else " OR "
            parts.append(joiner.join(f"({s})" for s in subs) or ("true" if key == "$and" else "false"))
        elif key == "$not":
            if not isinstance(spec, Mapping):
                raise InvalidFilterError("$not takes a filter dict")
            parts.append(f"NOT coalesce(({compile_where(spec) or 'true'}), false)")
        else:
            parts.append(_field_clause(key, spec))
    return and_(*parts)
