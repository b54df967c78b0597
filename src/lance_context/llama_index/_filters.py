"""LlamaIndex ``MetadataFilters`` -> the core's ``where`` dict.

Only translation happens here: every value reaches SQL through the core's escaping
filter compiler (``lance_context._filters``). Node metadata is stored at the top level
of a record's metadata, so a filter on key ``k`` becomes ``"metadata.k"`` (always a
metadata key, whatever ``k`` is).

LlamaIndex compares metadata with Python's operators (``SimpleVectorStore``), where
``True == 1`` and ``False == 0``; its ``MetadataFilter`` does not even accept a bool
value, so ``1``/``0`` is how a flag is matched. Stored JSON keeps ``true`` and ``1``
apart, so a number is matched against the bools Python holds equal to (or ordered
around) it too.
"""

from __future__ import annotations

import operator as op
from collections.abc import Callable
from typing import Any

from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from lance_context import InvalidFilterError

__all__ = ["filters_to_where"]

_COMPARE: dict[FilterOperator, tuple[str, Callable[[Any, Any], bool]]] = {
    FilterOperator.GT: ("$gt", op.gt),
    FilterOperator.GTE: ("$gte", op.ge),
    FilterOperator.LT: ("$lt", op.lt),
    FilterOperator.LTE: ("$lte", op.le),
}
_SUPPORTED = (
    "EQ, NE, GT, GTE, LT, LTE, IN, NIN, CONTAINS, TEXT_MATCH, TEXT_MATCH_INSENSITIVE, IS_EMPTY, ANY or ALL"
)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equals(value: object) -> list[Any]:
    """``value`` and the one bool or number Python holds equal to it (``1 == True``)."""
    if isinstance(value, bool):
        return [value, int(value)]
    if _is_number(value) and value in (0, 1):
        return [value, bool(value)]
    return [value]


def _values(value: object, operator: FilterOperator) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidFilterError(f"{operator.name} takes a list of values, got {value!r}")
    return value


def _any_of(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return parts[0] if len(parts) == 1 else {"$or": parts}


def _in(key: str, values: list[Any]) -> dict[str, Any]:
    return {key: {"$in": [v for value in values for v in _equals(value)]}}


def _compare(key: str, operator: FilterOperator, value: object) -> dict[str, Any]:
    name, holds = _COMPARE[operator]
    if isinstance(value, bool):
        value = int(value)
    clause = {key: {name: value}}
    if not _is_number(value):
        return clause
    flags = [flag for flag in (False, True) if holds(flag, value)]  # Python orders bools as 0 and 1
    return {"$or": [clause, {key: {"$in": flags}}]} if flags else clause


def _contains(key: str, value: object) -> dict[str, Any]:
    return _any_of([{key: {"$contains": v}} for v in _equals(value)])


def _one(item: MetadataFilter) -> dict[str, Any]:
    key = f"metadata.{item.key}"
    operator = FilterOperator(item.operator)
    value = item.value
    if operator == FilterOperator.EQ:
        return _in(key, [value])
    if operator == FilterOperator.NE:
        return {"$not": _in(key, [value])}
    if operator in (FilterOperator.IN, FilterOperator.NIN):
        matched = _in(key, _values(value, operator))
        return matched if operator == FilterOperator.IN else {"$not": matched}
    if operator in _COMPARE:
        return _compare(key, operator, value)
    if operator == FilterOperator.CONTAINS:
        return _contains(key, value)
    if operator in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE):
        if not isinstance(value, str):
            raise InvalidFilterError(f"{operator.name} takes a string, got {value!r}")
        return {key: {"$contains" if operator == FilterOperator.TEXT_MATCH else "$icontains": value}}
    if operator == FilterOperator.IS_EMPTY:
        return {"$or": [{key: {"$exists": False}}, {key: None}, {key: ""}, {key: []}]}
    if operator in (FilterOperator.ANY, FilterOperator.ALL):
        values = _values(value, operator)
        if not values and operator == FilterOperator.ALL:  # all of nothing: any node with a value there
            return {key: {"$ne": None}}
        joiner = "$or" if operator == FilterOperator.ANY else "$and"
        return {joiner: [_contains(key, v) for v in values]}
    raise InvalidFilterError(
        f"filter operator {operator.name} is not supported by LanceVectorStore; use {_SUPPORTED}"
    )


def filters_to_where(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """The ``where`` dict for LlamaIndex metadata filters (None: no filter).

    AND, OR and NOT (none of the filters match) combine nested filters to any depth.
    """
    if filters is None:
        return None
    if not isinstance(filters, MetadataFilters):
        raise InvalidFilterError(f"filters must be MetadataFilters, got {type(filters).__name__}")
    parts = [
        filters_to_where(f) or {} if isinstance(f, MetadataFilters) else _one(f) for f in filters.filters
    ]
    if not parts:
        return None
    condition = FilterCondition(filters.condition or FilterCondition.AND)
    if condition == FilterCondition.AND:
        return {"$and": parts}
    if condition == FilterCondition.OR:
        return {"$or": parts}
    return {"$not": {"$or": parts}}
