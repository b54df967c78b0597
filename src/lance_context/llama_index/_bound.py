"""Adapter objects bound to an open store refuse to be serialized or pickled.

A dump of one could not be rebuilt (it has no store), and a pickle would silently lose
the store. Refusing matches LlamaIndex's own ``Memory``, which does not serialize either:
a saved workflow ``Context`` then skips its ``"memory"`` key, and the caller passes the
memory again when resuming.
"""

from __future__ import annotations

from typing import Any, NoReturn

from llama_index.core.bridge.pydantic import (
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)

__all__ = ["StoreBound", "refuse_serialization"]


def refuse_serialization(obj: object) -> NoReturn:
    """Raise the error every store-bound adapter object gives when asked to serialize."""
    raise TypeError(
        f"{type(obj).__name__} is bound to an open store and cannot be serialized or pickled; "
        "its messages are already in the store. Keep the object or build it again on the store "
        "(a saved workflow Context skips it: pass memory= again when you resume)"
    )


class StoreBound:
    """Mixin (listed before the pydantic base) that refuses ``model_dump``, ``to_dict`` and pickling."""

    # The name overrides LlamaIndex's BaseComponent serializer of the same name.
    @model_serializer(mode="wrap")
    def custom_model_dump(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        """Refused: a dump could not be rebuilt without the store."""
        refuse_serialization(self)

    def __getstate__(self) -> NoReturn:
        """Refused: the store would be lost."""
        refuse_serialization(self)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> NoReturn:
        """Refused: a copy would need a store of its own (``copy.copy`` shares this one)."""
        refuse_serialization(self)
