"""Rows of a Ray Dataset to ContextRecords: what each column of an ingested table means.

| column | becomes |
|---|---|
| ``record`` or ``item`` holding a ``ContextRecord`` | that record, as it is |
| ``item`` holding a ``str`` (``ray.data.from_items(["..."])``) | a text record |
| ``content`` | any content ``ContextRecord.from_content`` takes (bytes are sniffed for images) |
| ``text`` | the text, or the caption of an ``image`` |
| ``image`` | encoded image bytes, or a pixel array (as ``ray.data.read_images`` gives) |
| ``id``, ``run_id``, ``role``, ``created_at``, ``content_type`` | those record fields |
| ``embed_text``, ``search_text`` | what to embed, and what the full-text index holds, instead of the text |
| ``metadata`` | a dict, or its JSON text |
| ``embedding`` | the record's own vector (the store's embedder then leaves it alone) |
| any other column | a metadata key of the same name |
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import numpy as np

from lance_context import ContextRecord, InvalidRecordError
from lance_context.adapters import sniff_mime

__all__ = ["COLUMNS", "metadata_text", "row_to_record"]

_FIELDS = (
    "id",
    "run_id",
    "role",
    "created_at",
    "content_type",
    "metadata",
    "embedding",
    "embed_text",
    "search_text",
)
_CONTENT = ("record", "item", "content", "text", "image")
#: The columns that are not metadata keys.
COLUMNS = frozenset(_FIELDS + _CONTENT)


def _plain(value: Any) -> Any:
    """A JSON-able Python value for metadata (numpy and pandas scalars and arrays unwrapped)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def metadata_text(metadata: Any, extras: Mapping[str, Any]) -> Any:
    """A row's metadata with its extra columns (``extras``) as JSON text, as ``row_to_record`` reads it.

    Ray gives a column one type across rows (a dict column one struct of every key,
    a column of ints and strings fails), so rows travel with their metadata as text.
    A value that is not JSON (or metadata that is not an object) is left as it is,
    and ``row_to_record`` refuses it with what is wrong.
    """
    if isinstance(metadata, str) and extras:
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return metadata
    if metadata is not None and not isinstance(metadata, Mapping):
        return metadata
    if metadata is None and not extras:
        return None
    merged = {**_plain(metadata or {}), **{k: _plain(v) for k, v in extras.items() if v is not None}}
    try:
        return json.dumps(merged, allow_nan=False)
    except (TypeError, ValueError):
        return metadata


def _image(value: Any) -> tuple[Any, str | None]:
    """Image content and its MIME type (None: let the codec decide)."""
    if isinstance(value, Mapping) and "bytes" in value:  # the Hugging Face image layout
        value = value["bytes"]
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return data, sniff_mime(data)
    if isinstance(value, np.ndarray):
        from PIL import Image

        return Image.fromarray(value), None
    return value, None


def _created_at(value: Any) -> datetime | None:
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidRecordError(f"created_at {value!r} is not an ISO 8601 time") from None
    if not isinstance(value, datetime):
        raise InvalidRecordError(f"created_at must be a datetime, got {type(value).__name__}")
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _content(row: Mapping[str, Any]) -> tuple[Any, str | None, str | None]:
    """The row's content, its content type and its caption."""
    given_type = row.get("content_type")
    text = row.get("text")
    if row.get("image") is not None:
        image, sniffed = _image(row["image"])
        return image, given_type or sniffed, text
    content = row["content"] if row.get("content") is not None else row.get("item")
    if content is None:
        if text is None:
            raise InvalidRecordError(
                f"a row has no content: give a text, content or image column (it has {sorted(row)})"
            )
        return text, given_type, None
    if isinstance(content, (bytes, bytearray)) and given_type is None:
        given_type = sniff_mime(bytes(content))
    return _plain(content) if isinstance(content, np.ndarray) else content, given_type, text


def row_to_record(row: Mapping[str, Any], *, run_id: str, role: str) -> ContextRecord:
    """The record a row describes (see the module table); ``run_id``/``role`` fill in missing ones.

    Raises:
        InvalidRecordError: The row has no content, or a field of the wrong kind.
    """
    given = row.get("record", row.get("item"))
    if isinstance(given, ContextRecord):
        return given
    metadata = row.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError as exc:
            raise InvalidRecordError(f"metadata is not JSON ({exc}): {metadata[:80]!r}") from None
    metadata = _plain(metadata or {})
    if not isinstance(metadata, Mapping):
        raise InvalidRecordError(f"metadata must be a JSON object, got {type(metadata).__name__}")
    metadata = dict(metadata)
    metadata.update({k: _plain(v) for k, v in row.items() if k not in COLUMNS and v is not None})
    content, content_type, caption = _content(row)
    fields: dict[str, Any] = {"metadata": metadata}
    for name in ("id", "embed_text", "search_text"):
        if row.get(name) is not None:
            fields[name] = str(row[name])
    created = _created_at(row.get("created_at"))
    if created is not None:
        fields["created_at"] = created
    if row.get("embedding") is not None:
        fields["embedding"] = np.asarray(row["embedding"], dtype=np.float32)
    return ContextRecord.from_content(
        content,
        role=str(row.get("role") or role),
        run_id=str(row.get("run_id") or run_id),
        content_type=content_type,
        text=caption,
        **fields,
    )
