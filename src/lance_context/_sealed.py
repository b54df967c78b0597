"""What an encrypted store refuses, because it would need plaintext: text search, sealed filters.

A filter on text, or one comparing a sealed metadata value, would silently match nothing
(the stored row holds ciphertext, or null); full-text search would search an index that
holds no plaintext. Both are refused with a message that says what works instead:
``$exists`` on any metadata key (keys stay visible), filters on ids, sessions, roles and
times, filters on the keys listed in ``EncryptionPolicy.clear_metadata``, vector search.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import lance

from ._encryption import Cipher, read_marker
from ._errors import EncryptionError, InvalidFilterError, SearchError
from ._filters import RECORD_FIELDS

__all__ = ["check_query", "refuse_bulk"]


def refuse_bulk(cipher: Cipher | None, base: lance.LanceDataset, what: str) -> None:
    """Refuse a distributed job on an encrypted store: its workers would need the keys.

    Sending keys (or a key provider) to workers would copy them into the job's object
    store and every worker's memory; the store's own methods seal and open in-process.
    """
    if cipher is not None or read_marker(base.schema) is not None:
        raise EncryptionError(
            f"{what} cannot run on an encrypted store: its workers would need the keys. "
            "Write with store.add() / re-embed with store.reembed() instead (nothing was written)"
        )


def _metadata_key(key: object) -> str | None:
    """The top-level metadata key a where-dict key names (None for a record field)."""
    if isinstance(key, tuple):
        return str(key[1]) if len(key) > 1 else None
    if not isinstance(key, str) or key in RECORD_FIELDS:
        return None
    return key.removeprefix("metadata.")


def _check_where(where: object, clear: frozenset[str]) -> None:
    if not isinstance(where, Mapping):
        return  # compile_where explains what is wrong with it
    for key, spec in where.items():
        if key in ("$and", "$or") and isinstance(spec, Iterable) and not isinstance(spec, (str, bytes)):
            for sub in spec:
                _check_where(sub, clear)
        elif key == "$not":
            _check_where(spec, clear)
        elif key in ("text", "text_payload"):
            raise InvalidFilterError(
                "this store encrypts record text, so a filter cannot read it; filter on ids, "
                "sessions, roles, times or clear metadata keys instead"
            )
        else:
            name = _metadata_key(key)
            if name is None or name in clear or (isinstance(spec, Mapping) and set(spec) == {"$exists"}):
                continue
            raise InvalidFilterError(
                f"metadata values of {name!r} are encrypted in this store, so a filter cannot compare "
                "them (only $exists works on a sealed key); list the key in "
                "EncryptionPolicy(clear_metadata=...) to keep its values in plaintext and filterable"
            )


def check_query(
    cipher: Cipher | None,
    *,
    where: object = None,
    mode: str | None = None,
    metadata_keys: Iterable[str] = (),
) -> None:
    """Refuse, on an encrypted store, what would need plaintext: text search, sealed-value filters.

    Raises:
        SearchError: ``mode`` is ``text`` or ``hybrid``.
        InvalidFilterError: ``where`` compares text or a sealed metadata value, or an
            outline asks for sealed metadata values.
    """
    if cipher is None:
        return
    if mode in ("text", "hybrid"):
        raise SearchError(
            f"mode={mode!r} needs a full-text index, and this store encrypts its text, so the "
            "index holds no plaintext; use mode='vector' (vectors stay searchable)"
        )
    clear = cipher.clear_metadata
    for key in metadata_keys:
        if key not in clear:
            raise InvalidFilterError(
                f"metadata values of {key!r} are encrypted in this store; list the key in "
                "EncryptionPolicy(clear_metadata=...) to read it in an outline"
            )
    _check_where(where, clear)
