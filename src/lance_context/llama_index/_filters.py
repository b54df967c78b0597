"""LlamaIndex ``MetadataFilters`` -> the core's ``where`` dict.

Only translation happens here: every value reaches SQL through the core's escaping
filter compiler (``lance_context._filters``). Node metadata is stored at the top level
of a record's metadata, so a filter on key ``k`` becomes ``"metadata.k"`` (always a
metadata key, whatever ``k`` is).
"""

from __future__ import annotations

from typing import Any

from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from lance_context import InvalidFilterError

__all__ = ["filters_to_where"]

_SIMPLE = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
    FilterOperator.CONTAINS: "$contains",
}


def _values(value: object, operator: FilterOperator) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidFilterError(f"{operator.name} takes a list of values, got {value!r}")
    return value


def _one(item: MetadataFilter) -> dict[str, Any]:
    key = f"metadata.{item.key}"
    operator = FilterOperator(item.operator)
    value = item.value
    if operator in _SIMPLE:
        if operator in (FilterOperator.IN, FilterOperator.NIN):
            value = _values(value, operator)
        return {key: {_SIMPLE[operator]: value}}
    if operator in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE):
        if not isinstance(value, str):
            raise InvalidFilterError(f"{operator.name} takes a string, got {value!r}")
        return {key: {"$contains" if operator == FilterOperator.TEXT_MATCH else "$icontains": value}}
    if operator == FilterOperator.IS_EMPTY:
        return {"$or": [{key: {"$exists": False}}, {key: None}, {key: ""}, {key: []}]}
    if operator in (FilterOperator.ANY, FilterOperator.ALL):
        joiner = "$or" if operator == FilterOperator.ANY else "$and"
        values = _values(value, operator)
        if not values and operator == FilterOperator.ALL:  # all of nothing: any node that has the key
            return {key: {"$exists": True}}
        return {joiner: [{key: {"$contains": v}} for v in values]}
    raise InvalidFilterError(
        f"filter operator {operator.name} is not supported by LanceVectorStore; use EQ, NE, GT, GTE, "
        "LT, LTE, IN, NIN, CONTAINS, TEXT_MATCH, TEXT_MATCH_INSENSITIVE, IS_EMPTY, ANY or ALL"
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
