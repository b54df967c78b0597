"""How LangGraph's store ``filter=`` reads item values: filter clauses, and a Python check.

``InMemoryStore`` (LangGraph's reference) compares in Python (``_compare_values``):

- a dict with ``$`` keys is a set of operators; any other dict matches an object
  holding (at least) those members, each compared the same way (``{}``: any object);
- a list matches a list of the same length whose elements match in turn, so
  ``[{"a": 1}]`` finds ``[{"a": 1, "b": 2}]`` and ``[True, 2]`` finds ``[1, 2]``;
- anything else, and ``$eq``/``$ne``, compare with ``==`` (``True == 1 == 1.0``);
- ``$gt $gte $lt $lte`` compare ``float(stored)`` with ``float(filter)``, so a numeric
  string compares as its number (``"10" > 6``, ``10 > "6"``).

Most of it becomes where-dict clauses the context store runs before any top-k. What
those cannot say (list elements, ``$eq``/``$ne`` on lists and objects holding numbers,
numeric strings in ranges) they only narrow down, and :class:`ValueFilter` carries the
Python check that decides. Where ``InMemoryStore`` raises (a range over a missing,
null, list or object value, or over a string that is not a number) the item does not
match here, and two such strings compare as strings, as ``SqliteStore`` compares them.
A tuple in a filter reads as a list (stored values are JSON). This module is pure.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langgraph.store.base import MatchCondition

from lance_context import ContextRecord

__all__ = ["ValueFilter", "equal_where", "equality_filter", "first_kept", "matches", "value_filter"]

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
_OPERATORS = frozenset({"$eq", "$ne", *_COMPARE})

Where = dict[Any, Any]


@dataclass(frozen=True)
class ValueFilter:
    """A search ``filter=`` as where-dict clauses (all must hold) and, if they are not exact, a check."""

    clauses: list[Where]
    check: Callable[[Mapping[str, Any]], bool] | None = None
    entries: Mapping[str, Any] | None = None

    def in_python(self) -> ValueFilter:
        """The same filter with no clauses, checked in Python (values an encrypted store seals)."""
        return ValueFilter([], _checker(self.entries or {}), self.entries) if self.entries else self


def _checker(entries: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
    """The Python check of a whole ``filter=``, as ``InMemoryStore`` compares."""
    entries = dict(entries)

    def check(value: Mapping[str, Any]) -> bool:
        return all(_value_matches(value.get(key), spec) for key, spec in entries.items())

    return check


def equal_where(path: tuple[str, ...], value: object) -> Where:
    """Equal as Python compares: ``True == 1 == 1.0``, ``False == 0``, a tuple as a list.

    LangGraph's in-memory store and savers compare filter values with ``==``; the
    checkpointer's metadata filters use this too.
    """
    clause: Where = {path: {"$eq": list(value) if isinstance(value, tuple) else value}}
    if isinstance(value, bool):
        return {"$or": [clause, {path: {"$eq": int(value)}}]}  # a number compares as a number: 1 or 1.0
    if isinstance(value, (int, float)) and value in (0, 1):
        return {"$or": [clause, {path: {"$eq": bool(value)}}]}
    return clause


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: object) -> float | None:
    """A value as ``InMemoryStore``'s ranges read it (``float()``); None where that raises."""
    if isinstance(value, (bool, int, float)):
        return value  # numbers compare exactly, as the context store compares them
    if isinstance(value, str):
        try:
            return float(value)
        except (ValueError, OverflowError):
            return None
    return None


def _plain(value: object, *, objects: bool) -> bool:
    """Whether ``==`` on ``value`` is equality of JSON text: only strings and nulls inside."""
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v, objects=objects) for v in value)
    if objects and isinstance(value, Mapping):
        return all(isinstance(k, str) and _plain(v, objects=objects) for k, v in value.items())
    return False


def _compared(path: tuple[str, ...], op: str, value: object) -> tuple[list[Where], bool]:
    """A range operator: (clauses, exact). Numbers as numbers, a bool as 0 or 1."""
    if isinstance(value, str) and _number(value) is not None:
        # a numeric string against numbers, bools and numeric strings: only the check can tell
        return [{path: {"$type": ["number", "boolean", "string"]}}], False
    number = int(value) if isinstance(value, bool) else value
    clause: Where = {path: {op: number}}
    if not _is_number(number):
        return [clause], True  # other strings compare as strings (the core refuses what it cannot compare)
    flags = [flag for flag in (False, True) if _COMPARE[op](int(flag), number)]
    # stored numeric strings are candidates the check decides on
    return [{"$or": [clause, *({path: {"$eq": flag}} for flag in flags), {path: {"$type": "string"}}]}], False


def _operator_clauses(path: tuple[str, ...], spec: Mapping[Any, Any]) -> tuple[list[Where], bool]:
    clauses: list[Where] = []
    exact = True
    for op, value in spec.items():
        if op not in _OPERATORS:
            raise ValueError(f"Unsupported operator: {op} (use {', '.join(sorted(_OPERATORS))})")
        if op in _COMPARE:
            found, precise = _compared(path, op, value)
            clauses.extend(found)
            exact = exact and precise
        elif not isinstance(value, (list, tuple, Mapping)) or _plain(value, objects=True):
            equal = equal_where(path, value)
            clauses.append(equal if op == "$eq" else {"$not": equal})
        else:  # numbers or bools inside a list or object: Python's == decides
            exact = False
            if op == "$eq":
                clauses.append({path: {"$type": "object" if isinstance(value, Mapping) else "array"}})
    return clauses, exact


def _value_clauses(path: tuple[str, ...], spec: object) -> tuple[list[Where], bool]:
    """One filter entry as InMemoryStore's ``_compare_values`` reads it: (clauses, exact)."""
    if isinstance(spec, Mapping) and any(str(k).startswith("$") for k in spec):
        return _operator_clauses(path, spec)
    if isinstance(spec, Mapping):
        clauses: list[Where] = [{path: {"$type": "object"}}]
        exact = True
        for key, sub in spec.items():
            found, precise = _value_clauses((*path, str(key)), sub)
            clauses.extend(found)
            exact = exact and precise
        return clauses, exact
    if isinstance(spec, (list, tuple)) and not _plain(spec, objects=False):
        return [{path: {"$type": "array"}}], False  # element by element: the check decides
    return [equal_where(path, spec)], True


def _as_json(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return [_as_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _as_json(v) for k, v in value.items()}
    return value


def _ordered(stored: object, op: str, value: object) -> bool:
    if isinstance(value, datetime):
        value = value.isoformat()
    left, right = _number(stored), _number(value)
    if left is not None and right is not None:
        return _COMPARE[op](left, right)
    return isinstance(stored, str) and isinstance(value, str) and _COMPARE[op](stored, value)


def _operator_holds(stored: object, op: str, value: object) -> bool:
    if op == "$eq":
        return bool(stored == _as_json(value))
    if op == "$ne":
        return bool(stored != _as_json(value))
    return _ordered(stored, op, value)


def _value_matches(stored: object, spec: object) -> bool:
    if isinstance(spec, Mapping) and any(str(k).startswith("$") for k in spec):
        return all(_operator_holds(stored, str(op), value) for op, value in spec.items())
    if isinstance(spec, Mapping):
        return isinstance(stored, dict) and all(
            _value_matches(stored.get(str(k)), v) for k, v in spec.items()
        )
    if isinstance(spec, (list, tuple)):
        return (
            isinstance(stored, list)
            and len(stored) == len(spec)
            and all(_value_matches(s, v) for s, v in zip(stored, spec, strict=True))
        )
    return bool(stored == spec)


def value_filter(filter: Mapping[str, Any] | None) -> ValueFilter:
    """LangGraph's ``filter=`` on item values: clauses on ``metadata.value``, plus a check if needed.

    Raises:
        ValueError: An operator LangGraph does not define.
    """
    clauses: list[Where] = []
    exact = True
    for key, spec in (filter or {}).items():
        found, precise = _value_clauses(("metadata", "value", key), spec)
        clauses.extend(found)
        exact = exact and precise
    entries = dict(filter or {})
    return ValueFilter(clauses, None if exact else _checker(entries), entries)


def first_kept(
    fetch: Callable[[int | None], list[ContextRecord]],
    check: Callable[[Mapping[str, Any]], bool] | None,
    wanted: int | None,
    field: str = "value",
) -> list[ContextRecord]:
    """The first ``wanted`` records of ``fetch(n)`` (its first ``n`` candidates) that pass ``check``.

    ``check`` reads the record's ``metadata[field]``; ``wanted=None`` keeps every record
    that passes. Without a check the candidates are the answer; with one, ``n`` doubles
    until enough candidates pass or none are left.
    """
    n = None if wanted is None else max(wanted, 0)
    while True:
        found = fetch(n)
        if check is None:
            return found
        kept = [r for r in found if check(r.metadata[field])]
        if n is None or wanted is None or len(kept) >= wanted or len(found) < n:
            return kept if wanted is None else kept[: max(wanted, 0)]
        n *= 2


def equality_filter(base: tuple[str, ...], filter: Mapping[str, Any] | None) -> ValueFilter:
    """Each entry of ``filter`` equal as Python's ``==`` holds (the checkpoint savers' metadata filter).

    LangGraph's ``InMemorySaver`` compares whole values, a dict never read as operators;
    a list or dict holding numbers or bools (``[1, 2] == [True, 2.0]``) is checked in Python.
    """
    clauses: list[Where] = []
    for key, value in (filter or {}).items():
        path = (*base, str(key))
        if isinstance(value, (list, tuple, Mapping)) and not _plain(value, objects=True):
            clauses.append({path: {"$type": "object" if isinstance(value, Mapping) else "array"}})
        else:
            clauses.append(equal_where(path, value))
    entries = {str(k): _as_json(v) for k, v in (filter or {}).items()}
    if all(not isinstance(v, (list, Mapping)) or _plain(v, objects=True) for v in entries.values()):
        return ValueFilter(clauses)

    def check(values: Mapping[str, Any]) -> bool:
        return all(values.get(key) == value for key, value in entries.items())

    return ValueFilter(clauses, check)


def matches(condition: MatchCondition, namespace: Sequence[str]) -> bool:
    """Whether a namespace satisfies a prefix/suffix condition (``*`` matches any label)."""
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path))
    else:
        raise ValueError(f"Unsupported match type: {condition.match_type}")
    return all(p == "*" or n == p for n, p in pairs)
