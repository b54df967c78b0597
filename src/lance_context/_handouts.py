"""Copies of the records a store's caches hold, and what is derived from them.

A cache hands out copies a caller may change (:func:`hand_out`): each copy starts from
the cached record's attributes prepared once, with metadata deep-copied only when the
caller first reads it. Values an adapter derives from a cached record (a rebuilt message)
stay with it (:func:`derived_values`). :func:`record_size` estimates what a record holds,
for the caches' byte bounds.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from datetime import timezone
from typing import Any

import numpy as np

from ._copies import copy_tree
from ._records import METADATA_ON_READ, RELATIONSHIPS_ON_READ, ContextRecord

__all__ = ["as_stored", "copy_record", "derived_values", "hand_out", "record_size"]


#: A record object, its field dict, ids, role, content type and time (measured: ~400 bytes).
_RECORD_OVERHEAD = 400
#: One relationship object with its target id and relation name.
_RELATIONSHIP_SIZE = 200


def _json_size(value: object) -> int:
    """About how much memory decoded JSON holds: every container, key and value."""
    total, pending = 0, [value]
    while pending:  # JSON values are checked for depth before they are stored: no cycles
        item = pending.pop()
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return total


def record_size(record: ContextRecord) -> int:
    """About how much memory a record holds (metadata included: a chat message keeps its copy there)."""
    size = _RECORD_OVERHEAD + len(record.binary_payload or b"") + _json_size(record.metadata)
    if record.text_payload is not None:
        size += sys.getsizeof(record.text_payload)  # a non-ASCII text takes 2 or 4 bytes a character
    if record.embedding is not None:
        size += int(record.embedding.nbytes)
    if record.state_metadata is not None:
        size += _json_size(record.state_metadata.custom)
    return size + _RELATIONSHIP_SIZE * len(record.relationships or ())


def derived_values(record: ContextRecord) -> dict[str, Any]:
    """Values derived from a stored record (a rebuilt message), kept as long as it is cached.

    The store's caches hand out copies of the records they hold, and every copy of one
    cached record shares this dict: a value derived once serves every later read until a
    commit drops the record from the cache. Key entries by adapter, and keep with each
    value what it was derived from (a copy's owner may have replaced its metadata).
    """
    values: dict[str, Any] | None = record.__dict__.get("_derived")
    if values is None:
        values = record.__dict__["_derived"] = {}
    return values


def copy_record(record: ContextRecord, *, with_vector: bool = True) -> ContextRecord:
    """A copy a caller may change, nested metadata included, without changing the cache.

    The copy shares the original's :func:`derived_values`.
    """
    return _copied(record, _prepared(record), with_vector)


_PREPARED = "_prepared"  # a cached record's attributes as every copy of it starts (see hand_out)


def _prepared(record: ContextRecord) -> dict[str, Any]:
    """The attributes a copy of ``record`` starts from: a dict the caller owns."""
    # A field-by-field copy without __init__: cached tails are copied on every read.
    derived_values(record)
    fields = record.__dict__.copy()
    fields.pop(_PREPARED, None)
    METADATA_ON_READ.defer(fields)  # deep-copied when the caller first reads it
    RELATIONSHIPS_ON_READ.defer(fields)  # likewise
    if "_metadata_json" in fields:
        fields["_metadata_json"] = None  # it describes the original's metadata object only
    fields["embedding"] = None
    return fields


def _copied(record: ContextRecord, fields: dict[str, Any], with_vector: bool) -> ContextRecord:
    """A record made of ``fields`` (from :func:`_prepared`), its mutable values copied from ``record``."""
    state = record.state_metadata
    if state is not None and state.custom:
        fields["state_metadata"] = dataclasses.replace(state, custom=copy_tree(state.custom))
    vector = record.embedding
    if vector is not None and with_vector:
        # a vector is changed in place (normalised, scaled) more often than metadata: never share it
        fields["embedding"] = vector.copy()
    copied: ContextRecord = object.__new__(ContextRecord)
    copied.__dict__ = fields
    return copied


def _copy_cached(record: ContextRecord, with_vector: bool) -> ContextRecord:
    """:func:`copy_record` of a record the cache holds, which nothing changes.

    Its prepared attributes are kept on it, so each later copy is one dict copy.
    """
    fields: dict[str, Any] | None = record.__dict__.get(_PREPARED)
    if fields is None:
        fields = record.__dict__[_PREPARED] = _prepared(record)
    return _copied(record, fields.copy(), with_vector)


def as_stored(record: ContextRecord, vector: Any) -> ContextRecord:
    """A copy of a record as reading it back from the store gives it."""
    copied = copy_record(record, with_vector=False)
    copied.__dict__["_derived"] = {}  # nothing derived from the caller's record carries over
    copied.search_text = copied.embed_text = None  # what to index and embed: reads do not return them
    copied.embedding = None if vector is None else np.array(vector, dtype=np.float32)
    known = record.known_metadata_json()
    metadata = json.loads(known) if known is not None else json.loads(json.dumps(record.metadata))
    METADATA_ON_READ.settle(copied, metadata)
    RELATIONSHIPS_ON_READ.settle(copied, list(record.relationships or ()))  # the caller's list may change
    copied.created_at = record.created_at.astimezone(timezone.utc)
    if record.state_metadata is not None:
        custom = json.loads(json.dumps(record.state_metadata.custom))
        copied.state_metadata = dataclasses.replace(record.state_metadata, custom=custom)
    return copied


def hand_out(records: Sequence[ContextRecord], with_vectors: bool, copies: bool) -> list[ContextRecord]:
    """Cached records handed out: copies, or (``copies=False``) the cached records themselves.

    Cached records are shared by every later read: only code that reads them and hands
    out nothing of them (an adapter rebuilding its messages) asks for them uncopied. A
    read that has just put records in the cache hands them out this way too.
    """
    if copies:
        return [_copy_cached(r, with_vectors) for r in records]
    return list(records)
