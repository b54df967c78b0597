"""Checking a record's fields before anything is written: each fault gets its own clear error.

Content (sizes, JSON nesting, images, Arrow streams) is checked in ``_content_checks``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone

from ._errors import InvalidRecordError
from ._records import ContextRecord, Relationship, StateMetadata, check_unicode

__all__ = ["validate_record"]


def validate_record(record: object) -> ContextRecord:
    """Check a record's fields before anything is written; raise a precise error."""
    if not isinstance(record, ContextRecord):
        raise InvalidRecordError(
            f"expected a ContextRecord, got {type(record).__name__}; "
            "build one with ContextRecord.from_content(...)"
        )
    _check_text(record.id, "id", allow_empty=False)
    _check_text(record.run_id, "run_id", allow_empty=False)
    _check_text(record.role, "role", allow_empty=False)
    _check_text(record.content_type, "content_type", allow_empty=False)
    if record.text_payload is not None:
        _check_text(record.text_payload, "text_payload")
    for name in ("search_text", "embed_text"):
        hint = getattr(record, name)
        if hint is not None:
            _check_text(hint, name)
    if record.binary_payload is not None and not isinstance(record.binary_payload, bytes):
        raise InvalidRecordError("binary_payload must be bytes")
    _check_created_at(record)
    if not isinstance(record.metadata, Mapping):
        raise InvalidRecordError(f"record {record.id!r}: metadata must be a dict")
    for key in record.metadata:
        if not isinstance(key, str):
            raise InvalidRecordError(f"record {record.id!r}: metadata keys must be str, got {key!r}")
    for rel in record.relationships:
        if not isinstance(rel, Relationship):
            raise InvalidRecordError("relationships must be Relationship objects")
        if not isinstance(rel.target_id, str) or not rel.target_id or not isinstance(rel.relation, str):
            raise InvalidRecordError(
                f"record {record.id!r}: a relationship needs a target id and a relation (strings), "
                f"got {rel.target_id!r} and {rel.relation!r}"
            )
        weight = rel.weight
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float))):
            raise InvalidRecordError(
                f"record {record.id!r}: relationship weight must be a number, got {weight!r}"
            )
        if weight is not None and not math.isfinite(weight):
            raise InvalidRecordError("relationship weight must be finite")
    if record.state_metadata is not None:
        _check_state(record.id, record.state_metadata)
    return record


def _check_state(record_id: str, state: object) -> None:
    if not isinstance(state, StateMetadata):
        raise InvalidRecordError(f"record {record_id!r}: state_metadata must be a StateMetadata")
    for name in ("step", "tokens_used"):
        value = getattr(state, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**63
        ):
            raise InvalidRecordError(
                f"record {record_id!r}: state_metadata.{name} must be a 64-bit integer or None, got {value!r}"
            )
    if state.active_plan_id is not None and not isinstance(state.active_plan_id, str):
        raise InvalidRecordError(
            f"record {record_id!r}: state_metadata.active_plan_id must be a string or None, "
            f"got {state.active_plan_id!r}"
        )
    if state.active_plan_id is not None:
        check_unicode(state.active_plan_id, f"record {record_id!r}: state_metadata.active_plan_id")


def _check_created_at(record: ContextRecord) -> None:
    """A timezone-aware time that is still a datetime once in UTC (it is stored, and read, in UTC)."""
    created = record.created_at
    if not isinstance(created, datetime) or created.tzinfo is None or created.utcoffset() is None:
        raise InvalidRecordError(
            f"record {record.id!r}: created_at must be a timezone-aware datetime, got {created!r}; "
            "use datetime.now(timezone.utc) or .replace(tzinfo=timezone.utc)"
        )
    try:
        created.astimezone(timezone.utc)
    except OverflowError:
        raise InvalidRecordError(
            f"record {record.id!r}: created_at {created.isoformat()} is outside year 1 to 9999 in UTC, "
            "where it is stored; give a time inside that range"
        ) from None


def _check_text(value: object, name: str, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidRecordError(f"{name} must be a str, got {type(value).__name__}")
    if not allow_empty and not value:
        raise InvalidRecordError(f"{name} must not be empty")
    return check_unicode(value, name)
