"""Content columns mixing kinds across rows (texts, bytes, JSON values), carried through Ray as one type.

Ray Data gives a column one Arrow type per block and unifies blocks when it batches
them: a ``content`` column of texts and PNG bytes turns the texts into bytes, dicts
with different keys gain each other's keys, and texts beside dicts fail. A column
that mixes kinds therefore travels as tagged bytes under a private name (one tag
byte, then the UTF-8 text, the bytes, or the JSON of the value) and is decoded back
to the value itself before the row is read. The tags hold no code (no pickle), so a
column of that name in someone's data can only fail to decode.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from lance_context import InvalidRecordError

from ._rows import _plain

__all__ = ["MIXABLE", "kinds", "mixed_types", "tag_block", "tag_frame", "tag_rows", "untag"]

#: The content columns whose rows may mix kinds.
MIXABLE = ("content", "item")
_TAGGED = "_lance_context_tagged_"
_TEXT, _BYTES, _JSON = b"s", b"b", b"j"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "str"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes"
    return type(value).__name__


def kinds(values: Iterable[Any]) -> list[str]:
    """The kinds (Python type names; bytes-likes as ``bytes``) among the values that are not empty."""
    return sorted({_kind(v) for v in values if not _missing(v)})


def _encode(column: str, value: Any, found: Sequence[str]) -> bytes | None:
    if _missing(value):
        return None
    if isinstance(value, str):
        return _TEXT + value.encode("utf-8", "surrogatepass")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _BYTES + bytes(value)
    try:
        return _JSON + json.dumps(_plain(value), allow_nan=False).encode()
    except (TypeError, ValueError):
        raise InvalidRecordError(
            f"the {column!r} column mixes {', '.join(found)} across rows, and Ray Data carries one "
            f"type per column: a {_kind(value)} can travel beside other kinds only as text, bytes "
            "or a JSON value; give ContextRecord objects (a 'record' column) instead; nothing was written"
        ) from None


def _decode(value: Any) -> Any:
    if value is None:
        return None
    data = bytes(value)
    tag, body = data[:1], data[1:]
    if tag == _TEXT:
        return body.decode("utf-8", "surrogatepass")
    if tag == _BYTES:
        return body
    if tag == _JSON:
        return json.loads(body)
    raise InvalidRecordError(f"a column named {_TAGGED}... holds a value lance-context did not tag")


def tag_rows(items: list[Any]) -> list[Any]:
    """Items as rows, each content column that mixes kinds tagged (``items`` itself when none does)."""
    rows = [item if isinstance(item, Mapping) else {"item": item} for item in items]  # as Ray reads them
    changed = False
    for column in MIXABLE:
        found = kinds(row.get(column) for row in rows)
        if len(found) < 2:
            continue
        changed = True
        for i, row in enumerate(rows):
            if column in row:
                rest = {k: v for k, v in row.items() if k != column}
                rows[i] = {**rest, _TAGGED + column: _encode(column, row[column], found)}
    return rows if changed else items


def tag_frame(frame: Any) -> Any:
    """A DataFrame with each object-typed content column that mixes kinds tagged."""
    for column in MIXABLE:
        if column not in frame.columns or frame[column].dtype != object:
            continue
        found = kinds(frame[column])
        if len(found) > 1:
            tagged = [_encode(column, v, found) for v in frame[column]]
            frame = frame.drop(columns=[column]).assign(**{_TAGGED + column: tagged})
    return frame


def mixed_types(schemas: Sequence[pa.Schema]) -> tuple[str, ...]:
    """The content columns whose (non-null) Arrow type differs between blocks."""
    mixed = []
    for column in MIXABLE:
        types = {
            str(s.field(column).type)
            for s in schemas
            if column in s.names and not pa.types.is_null(s.field(column).type)
        }
        if len(types) > 1:
            mixed.append(column)
    return tuple(mixed)


def tag_block(block: pa.Table, columns: Sequence[str]) -> pa.Table:
    """``block`` with these content columns tagged (a block that lacks one is left without it)."""
    for column in columns:
        if column not in block.column_names:
            continue
        values = block.column(column).to_pylist()
        found = kinds(values)
        tagged = pa.array([_encode(column, v, found) for v in values], pa.binary())
        block = block.drop_columns([column]).append_column(_TAGGED + column, tagged)
    return block


def untag(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its tagged columns decoded back under their own names."""
    for key in [k for k in row if k.startswith(_TAGGED)]:
        value = row.pop(key)
        if value is not None or key[len(_TAGGED) :] not in row:
            row[key[len(_TAGGED) :]] = _decode(value)
    return row
