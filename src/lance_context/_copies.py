"""Deep copies of what adapters hand out, cheaper than ``copy.deepcopy``.

A value kept for many reads (a message rebuilt once per cached record, see
``_handouts.derived_values``) is handed out as a copy on every read, so a caller may change
what it gets without changing what the next read returns. Framework messages are pydantic
models holding JSON-like values; copying them field by field, and their dicts and lists
item by item, is several times faster than ``copy.deepcopy`` and shares only immutable
leaves. Nothing here imports pydantic: a model is recognised by its fields-set slot.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["CopyOnFirstRead", "copy_model", "copy_tree"]

T = TypeVar("T")
_set = object.__setattr__
_SHARED = frozenset({str, int, float, bool, bytes, type(None)})
_MISSING = object()


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
    fields = model.__dict__.copy()
    for name, value in fields.items():
        kind = type(value)
        if kind in _SHARED:
            continue
        if kind is dict or kind is list:
            fields[name] = copy_tree(value) if value else kind()
        else:
            fields[name] = copy_tree(value)
    cls = model.__class__
    copied = cls.__new__(cls)
    extra = getattr(model, "__pydantic_extra__", None)
    private = getattr(model, "__pydantic_private__", None)
    _set(copied, "__dict__", fields)
    _set(copied, "__pydantic_fields_set__", set(model.__pydantic_fields_set__))  # type: ignore[attr-defined]
    _set(copied, "__pydantic_extra__", None if extra is None else (copy_tree(extra) if extra else {}))
    _set(copied, "__pydantic_private__", None if private is None else copy_tree(private))
    return copied


class CopyOnFirstRead:
    """A dataclass field that a copy takes from its original, as a deep copy, when first read.

    Installed on the class for one field (``setattr(cls, name, CopyOnFirstRead(name))``).
    :meth:`defer` moves the field out of a copy's attributes and keeps the original's
    value as the source; the first read stores a copy of the source (a :func:`copy_tree`
    unless told otherwise) on the instance, which answers every later read and assignment
    itself (a descriptor without ``__set__`` is not consulted once the instance holds the
    attribute). A copy that is never read costs nothing more than a shallow one.

    The source must not change until then: it is the value of a record the store's cache
    keeps, which nothing changes.
    """

    def __init__(self, name: str, copier: Callable[[Any], Any] = copy_tree) -> None:
        """Handle the field ``name``, copied by ``copier``."""
        self.name = name
        self.source = f"_{name}_source"
        self.copier = copier

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        """The instance's deep copy of the source, made now if not yet made."""
        values = None if instance is None else instance.__dict__
        source = _MISSING if values is None else values.get(self.source, _MISSING)
        if values is None or source is _MISSING:
            if values is not None and self.name in values:  # another thread copied it just now
                return values[self.name]
            raise AttributeError(self.name)
        value = values.setdefault(self.name, self.copier(source))  # one copy, even when two threads read
        values.pop(self.source, None)
        return value

    def defer(self, fields: dict[str, Any]) -> None:
        """Make a copy's attributes ``fields`` (of an original's) copy the field when first read."""
        if self.name in fields:
            fields[self.source] = fields.pop(self.name)
        # else: the original is such a copy, not read yet: the copy shares its source

    def settle(self, instance: object, value: Any) -> None:
        """Give ``instance`` its own ``value`` for the field, dropping any source."""
        instance.__dict__.pop(self.source, None)
        instance.__dict__[self.name] = value
