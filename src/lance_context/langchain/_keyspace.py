"""Key spaces: where the LangChain key-value adapters keep their entries in a store.

A key space is one session of a registered namespace (``lance_context.adapters``):
every entry is one record of the session ``run_id``, and its record id is the key
behind a prefix that names the space, ``<namespace>:<escaped scope>:<key>``. The
scope is escaped by :meth:`Namespace.scope_prefix` (it never holds ``:``), so no
(scope, key) pair can produce another pair's record id, whatever characters the key
holds, and a key prefix is a record-id prefix (``yield_keys(prefix=)`` filters with
the escaping module's ``$prefix``, never with SQL built here).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lance_context import ContextRecord
from lance_context.adapters import Namespace

from ._documents import listed

__all__ = ["KeySpace", "check_key", "check_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(name: object, what: str) -> str:
    """A store or cache name: 1-128 letters, digits, ``.``, ``_`` or ``-`` (like collections)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"invalid {what} name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_key(key: object) -> str:
    """A key: any ``str`` that can be stored as UTF-8."""
    if not isinstance(key, str):
        raise TypeError(f"keys must be str, got {type(key).__name__}: {key!r}")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"key {key!r} is not valid unicode (lone surrogate at position {exc.start}); "
            "keys are stored as UTF-8"
        ) from exc
    return key


@dataclass(frozen=True)
class KeySpace:
    """The session and record ids of one adapter object's entries.

    Attributes:
        namespace: The registered namespace (``LANGCHAIN_KV``, ``LANGCHAIN_CACHE``...).
        scope: What names the space inside the namespace (any non-empty string).
    """

    namespace: Namespace
    scope: str

    @property
    def run_id(self) -> str:
        """The store session holding every entry of the space."""
        return self.namespace.run_id(self.scope)

    @property
    def id_prefix(self) -> str:
        """What every record id of the space starts with."""
        return self.namespace.scope_prefix(self.scope)

    def record_id(self, key: object) -> str:
        """The record id of ``key`` (checked first)."""
        return self.id_prefix + check_key(key)

    def record_ids(self, keys: Iterable[object]) -> list[str]:
        """The record ids of ``keys``, all checked before any is used.

        Raises:
            TypeError: ``keys`` is one string (it would be read as one key per character),
                or a key is not a ``str``.
        """
        return [self.record_id(key) for key in listed(keys, "keys")]

    def key(self, record: ContextRecord) -> str:
        """The key a record of the space stores."""
        return record.id[len(self.id_prefix) :]

    def owns(self, record: ContextRecord) -> bool:
        """Whether ``record`` is an entry of this space (defence in depth on by-id reads)."""
        return record.run_id == self.run_id and record.id.startswith(self.id_prefix)

    def prefix_filter(self, prefix: str | None) -> dict[str, Any]:
        """A ``where`` dict for the entries whose key starts with ``prefix``."""
        return {"id": {"$prefix": self.id_prefix + check_key(prefix or "")}}
