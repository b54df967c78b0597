"""Deep copies of what adapters hand out, cheaper than ``copy.deepcopy``.

A value kept for many reads (a message rebuilt once per cached record, see
``_cache.derived_values``) is handed out as a copy on every read, so a caller may change
what it gets without changing what the next read returns. Framework messages are pydantic
models holding JSON-like values; copying them field by field, and their dicts and lists
item by item, is several times faster than ``copy.deepcopy`` and shares only immutable
leaves. Nothing here imports pydantic: a model is recognised by its fields-set slot.
"""

from __future__ import annotations

import copy
import enum
from typing import TypeVar

__all__ = ["copy_model", "copy_tree"]

T = TypeVar("T")
_set = object.__setattr__
_SHARED = (str, int, float, bool, bytes, type(None))


def copy_tree(value: T) -> T:
    """A deep copy of ``value``: dicts, lists and pydantic models are copied, immutable leaves shared.

    Strings, numbers, booleans, bytes, None and enum members are shared; anything else
    is copied by ``copy.deepcopy``.
    """
    kind = type(value)
    if kind is dict:
        return {k: copy_tree(v) for k, v in value.items()}  # type: ignore[attr-defined,return-value]
    if kind is list:
        return [copy_tree(v) for v in value]  # type: ignore[attr-defined,return-value]
    if kind in _SHARED or isinstance(value, enum.Enum):
        return value
    if isinstance(getattr(value, "__pydantic_fields_set__", None), set):
        return copy_model(value)
    return copy.deepcopy(value)


def copy_model(model: T) -> T:
    """A deep copy of a pydantic model, made as ``model_copy`` makes one, its fields copied deeply.

    No validator runs (the model was valid when built); empty dicts and lists are made
    anew rather than copied.
    """
    fields = dict(model.__dict__)
    for name, value in fields.items():
        kind = type(value)
        if kind is dict or kind is list:
            fields[name] = copy_tree(value) if value else kind()
        elif kind not in _SHARED:
            fields[name] = copy_tree(value)
    copied = model.__class__.__new__(model.__class__)
    extra = getattr(model, "__pydantic_extra__", None)
    private = getattr(model, "__pydantic_private__", None)
    _set(copied, "__dict__", fields)
    _set(copied, "__pydantic_fields_set__", set(model.__pydantic_fields_set__))  # type: ignore[attr-defined]
    _set(copied, "__pydantic_extra__", None if extra is None else copy_tree(extra))
    _set(copied, "__pydantic_private__", None if private is None else copy_tree(private))
    return copied
