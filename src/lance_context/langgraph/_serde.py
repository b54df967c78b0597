"""How the checkpointer reads stored payloads without trusting whoever wrote them.

Anyone who can write to a store's location (a shared bucket prefix, any caller of
``ContextStore``) can write records that look like checkpoints. LangGraph's default
``JsonPlusSerializer()`` imports and calls any module and function named inside
msgpack data unless strict mode is on, so reading such a record could run code. The
saver therefore:

- deserializes with LangGraph's **strict** msgpack mode by default: only LangGraph's
  built-in safe types, plus what the caller allows (``allowed_msgpack_modules=``) and
  what LangGraph derives from a compiled graph's state schema (``with_allowlist``);
- refuses a plain ``JsonPlusSerializer`` that allows every module;
- checks the serialization type stored beside each payload against the types its own
  serializer writes, so stored data never chooses how it is read (``pickle`` only when
  the caller's serializer was built with ``pickle_fallback=True``; only encrypted types
  when it is LangGraph's ``EncryptedSerializer``, whose authenticated cipher proves the
  key holder wrote the payload).
"""

from __future__ import annotations

import dataclasses
import enum
import sys
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel

from lance_context import UnsafePayloadError

__all__ = ["PayloadReader", "inner_serde", "strict_serde", "written_types"]

#: Values whose serialization types cover everything LangGraph stores.
_PROBES: tuple[Any, ...] = (None, b"", bytearray(), {"probe": 1})


def strict_serde(allowed_msgpack_modules: Iterable[tuple[str, ...] | type] = ()) -> JsonPlusSerializer:
    """LangGraph's serializer in strict mode, extended with the given types, never pickle."""
    extra = tuple(allowed_msgpack_modules)
    return JsonPlusSerializer(pickle_fallback=False, allowed_msgpack_modules=extra or None)


#: Modules whose types LangGraph already rebuilds (messages, Send, Command...): walked into, not learned.
_BUILT_IN = ("langchain_core.", "langgraph.")
#: Values holding no type to learn.
_LEAVES = (str, int, float, bool, bytes, bytearray, type(None))


def _pydantic_v1(item: object) -> bool:
    v1 = sys.modules.get("pydantic.v1")  # not imported: no v1 model can exist
    return v1 is not None and isinstance(item, v1.BaseModel)


def _parts(item: Any) -> tuple[bool, Iterable[Any]]:
    """Whether LangGraph's serializer names ``item``'s type in its output, and the values it holds.

    Mirrors the types ``JsonPlusSerializer`` writes as (module, name): enums, pydantic
    models (v1 and v2), named tuples, dataclasses and secrets. Other objects LangGraph
    builds itself (``Send``) are only walked into.
    """
    if isinstance(item, enum.Enum):
        return True, ()
    if isinstance(item, BaseModel):
        return True, [*item.__dict__.values(), *(item.__pydantic_extra__ or {}).values()]
    if _pydantic_v1(item):
        return True, list(item.__dict__.values())
    if isinstance(item, tuple) and hasattr(item, "_asdict"):  # a named tuple
        return True, list(item)
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return True, [getattr(item, f.name, None) for f in dataclasses.fields(item)]
    if callable(getattr(item, "get_secret_value", None)) or callable(getattr(item, "model_dump", None)):
        return True, ()
    if type(item).__module__.startswith(_BUILT_IN):
        slots = getattr(type(item), "__slots__", ())
        held = [getattr(item, name, None) for name in ([slots] if isinstance(slots, str) else slots)]
        return False, [*held, *getattr(item, "__dict__", {}).values()]
    return False, ()


def written_types(value: Any) -> set[tuple[str, str]]:
    """The ``(module, name)`` of each type LangGraph's serializer names in ``value``'s output.

    A saver may read back the types its own process wrote (they are the caller's, not
    whoever wrote the store's files), as LangGraph derives them from a graph's state
    schema in strict mode. The whole value is walked, including what LangGraph's own
    objects carry (a ``Send``'s argument, an ``Interrupt``'s value, a ``Command``'s resume
    value), so nothing this process wrote comes back as plain data.
    """
    found: set[tuple[str, str]] = set()
    seen: set[int] = set()
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if type(item) in _LEAVES or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
            continue
        if type(item) in (list, tuple, set, frozenset, deque):
            pending.extend(item)
            continue
        named, children = _parts(item)
        module = type(item).__module__
        if named and not module.startswith(_BUILT_IN):
            found.add((module, type(item).__name__))
        pending.extend(children)
    return found


def inner_serde(serde: SerializerProtocol) -> SerializerProtocol:
    """The serializer inside LangGraph's ``EncryptedSerializer`` (or ``serde`` itself)."""
    return serde.serde if isinstance(serde, EncryptedSerializer) else serde


def check_serde(serde: SerializerProtocol) -> None:
    """Refuse a serializer that would import any module named in stored data.

    Raises:
        ValueError: A plain ``JsonPlusSerializer`` allowing every module.
    """
    if isinstance(serde, JsonPlusSerializer) and getattr(serde, "_allowed_msgpack_modules", None) is True:
        raise ValueError(
            "this JsonPlusSerializer deserializes any module named in stored data, so anyone who can "
            "write to the store could run code in this process; build it with "
            "allowed_msgpack_modules=[...] (the types your state holds), or leave serde unset"
        )


class PayloadReader:
    """Loads stored payloads with one serializer, accepting only the types it writes."""

    def __init__(self, serde: SerializerProtocol) -> None:
        """Learn the serialization types ``serde`` writes."""
        check_serde(serde)
        self.serde = serde
        kinds = {serde.dumps_typed(value)[0] for value in _PROBES}
        if getattr(inner_serde(serde), "pickle_fallback", False):
            suffix = next(iter(kinds)).partition("+")[1:]
            kinds.add("pickle" + "".join(suffix))
        self.kinds = frozenset(kinds)

    def loads(self, kind: object, data: bytes, where: str) -> Any:
        """Deserialize one stored payload.

        Raises:
            UnsafePayloadError: The stored type is not one this serializer writes.
        """
        if not isinstance(kind, str) or kind not in self.kinds:
            raise UnsafePayloadError(
                f"{where} is stored as {kind!r}, which this saver's serializer does not write "
                f"(it writes {sorted(self.kinds)}); refusing to deserialize it. Someone else wrote "
                "this record, or it was written with another serializer: open the store with that one"
            )
        return self.serde.loads_typed((kind, data))
