"""The encryption policy a store is opened with, and the marker its schema records.

:class:`EncryptionPolicy` is checked whole when it is built (keys, previous keys,
``clear_metadata``), so a mistake is an ``EncryptionError`` before anything is opened
or written. The marker (``MARKER_KEY`` in the schema metadata) records that a store is
encrypted and names its static key by id (:func:`key_id`), never the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ._errors import EncryptionError

__all__ = [
    "MARKER_KEY",
    "EncryptionPolicy",
    "KeyProvider",
    "check_key",
    "key_id",
    "marker_json",
    "read_marker",
]

#: Schema metadata key marking a store whose records are (or are to be) sealed.
MARKER_KEY = "lance_context.encryption"

KeyProvider = Callable[[str], bytes]


def check_key(key: object, what: str) -> bytes:
    if not isinstance(key, bytes):
        hint = " (decode a hex or base64 key to bytes first)" if isinstance(key, str) else ""
        raise EncryptionError(f"{what} must be bytes of length 16, 24 or 32, got {type(key).__name__}{hint}")
    if len(key) not in (16, 24, 32):
        hint = " (read from a file with a trailing newline? strip it)" if key[-1:] in (b"\n", b"\r") else ""
        raise EncryptionError(
            f"{what} must be 16, 24 or 32 bytes (AES-128, -192 or -256 key), got {len(key)} bytes{hint}"
        )
    return key


def key_id(key: bytes) -> str:
    """A name for ``key`` that does not reveal it (16 hex digits of an HMAC)."""
    return hmac.new(key, b"lance-context key id", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class EncryptionPolicy:
    """Encryption at rest: which key seals each record, and what stays filterable.

    Give exactly one of ``key`` (one key for the whole store) or ``key_provider`` (a
    function called with a record's run id that returns that session's key, so each
    tenant can have its own). Keys are 16, 24 or 32 random bytes and are never stored,
    printed or put in an error message.

    Example:
        >>> policy = EncryptionPolicy(key=bytes(32), clear_metadata={"topic"})
        >>> sorted(policy.clear_metadata), policy
        (['topic'], EncryptionPolicy(clear_metadata=frozenset({'topic'})))
    """

    key: bytes | None = field(default=None, repr=False)
    """One AES key for every record."""

    key_provider: KeyProvider | None = field(default=None, repr=False)
    """Called with a run id, returns that session's AES key (per-tenant keys)."""

    previous_keys: tuple[bytes, ...] = field(default=(), repr=False)
    """Keys no longer used for writing but still accepted for reading (after
    ``rotate_key()``, past versions hold records sealed with them)."""

    clear_metadata: frozenset[str] = frozenset()
    """Metadata keys whose values stay in plaintext so filters can compare them (for
    example the keys an adapter filters on); every other value is sealed."""

    def __post_init__(self) -> None:
        """Check the keys now, before any store is opened with them."""
        if (self.key is None) == (self.key_provider is None):
            raise EncryptionError("give EncryptionPolicy exactly one of key= or key_provider=")
        if self.key is not None:
            check_key(self.key, "key")
        if self.key_provider is not None and not callable(self.key_provider):
            raise EncryptionError("key_provider must be a function of the run id")
        if isinstance(self.previous_keys, (bytes, bytearray, str)) or not isinstance(
            self.previous_keys, Iterable
        ):
            raise EncryptionError(
                "previous_keys takes a tuple of keys: previous_keys=(old_key,), "
                f"got {type(self.previous_keys).__name__}"
            )
        object.__setattr__(self, "previous_keys", tuple(self.previous_keys))
        for old in self.previous_keys:
            check_key(old, "each previous key")
        if isinstance(self.clear_metadata, str) or not isinstance(self.clear_metadata, Iterable):
            raise EncryptionError(
                f"clear_metadata takes a set of metadata keys, got {type(self.clear_metadata).__name__}"
            )
        keys = list(self.clear_metadata)
        wrong = [k for k in keys if not isinstance(k, str)]
        if wrong:  # metadata keys are strings: any other item would never match, leaving its values sealed
            raise EncryptionError(
                f"clear_metadata takes a set of metadata keys (str), got {type(wrong[0]).__name__} "
                f"item {wrong[0]!r}"
            )
        object.__setattr__(self, "clear_metadata", frozenset(keys))


def marker_json(policy: EncryptionPolicy) -> str:
    """The schema metadata recording that a store is encrypted (and with which static key)."""
    static = None if policy.key is None else key_id(policy.key)
    return json.dumps({"cipher": "AES-GCM", "format": 1, "key_id": static})


def read_marker(schema: pa.Schema) -> dict[str, Any] | None:
    """The encryption marker of a store schema, or None for a store that was never encrypted."""
    raw = (schema.metadata or {}).get(MARKER_KEY.encode())
    return None if raw is None else dict(json.loads(raw))
