"""LangChain messages rebuilt once per stored record, handed out as copies.

Rebuilding a message from its stored dict (a JSON-tree copy, then pydantic's validation)
costs about 9 µs a message. The store's tail cache hands out copies of the same cached
records on every read of a session until a commit touches it, and what is derived from
a record is kept with it (``derived_values``): a rebuilt message is kept there, and every
read gets its own copy of it (about 1.5 µs), so a caller may change what it gets without
changing what the next read returns. It lives exactly as long as the cached record.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from langchain_core.messages import BaseMessage

from lance_context import ContextRecord
from lance_context.adapters import derived_values

__all__ = ["copy_json", "copy_message", "decoded"]

_KEY = "langchain.message"
_set = object.__setattr__


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-like data (about 4x faster than ``copy.deepcopy`` on a message).

    Dicts and lists are copied, strings, numbers, booleans and None shared; anything else
    (a tool artifact the caller built) is copied by ``copy.deepcopy``.
    """
    kind = type(value)
    if kind is dict:
        return {k: copy_json(v) for k, v in value.items()}
    if kind is list:
        return [copy_json(v) for v in value]
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    return copy.deepcopy(value)


def copy_message(message: BaseMessage) -> BaseMessage:
    """A copy of ``message`` sharing no dict, list or mutable object with it.

    What pydantic's ``model_copy`` does, with the fields' containers copied deeply, and
    without its generic copies of empty containers (this runs once per message read).
    """
    fields = message.__dict__.copy()
    for name, value in fields.items():
        kind = type(value)
        if kind is dict or kind is list:
            fields[name] = copy_json(value) if value else kind()
        elif not (kind is str or kind is int or kind is float or kind is bool or value is None):
            fields[name] = copy.deepcopy(value)
    copied = message.__class__.__new__(message.__class__)
    extra, private = message.__pydantic_extra__, message.__pydantic_private__
    _set(copied, "__dict__", fields)
    _set(copied, "__pydantic_fields_set__", set(message.__pydantic_fields_set__))
    _set(copied, "__pydantic_extra__", None if extra is None else copy_json(extra))
    _set(copied, "__pydantic_private__", None if private is None else copy.deepcopy(private))
    return copied


def decoded(record: ContextRecord, payload: dict[str, Any], build: Callable[[], BaseMessage]) -> BaseMessage:
    """A copy of the message ``record`` stores as ``payload``, built by ``build`` when not kept."""
    values = derived_values(record)
    found = values.get(_KEY)
    if found is None or found[0] is not payload:  # first read, or the copy's metadata replaced
        found = values[_KEY] = (payload, build())
    return copy_message(found[1])
