"""LangChain messages rebuilt once per stored record, handed out as copies.

Rebuilding a message from its stored dict (a JSON-tree copy, then pydantic's validation)
costs about 9 µs a message. The store's tail cache hands out copies of the same cached
records on every read of a session until a commit touches it, and what is derived from
a record is kept with it (``derived_values``): a rebuilt message is kept there, and every
read gets its own copy of it (``copy_model``, about 1.5 µs), so a caller may change what it
gets without changing what the next read returns. It lives exactly as long as the cached
record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.messages import BaseMessage

from lance_context import ContextRecord
from lance_context.adapters import copy_model, derived_values

__all__ = ["decoded"]

_KEY = "langchain.message"


def decoded(record: ContextRecord, payload: dict[str, Any], build: Callable[[], BaseMessage]) -> BaseMessage:
    """A copy of the message ``record`` stores as ``payload``, built by ``build`` when not kept."""
    values = derived_values(record)
    found = values.get(_KEY)
    if found is None or found[0] is not payload:  # first read, or the copy's metadata replaced
        found = values[_KEY] = (payload, build())
    return copy_model(found[1])
