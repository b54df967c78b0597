"""Content codecs: turn Python objects into (content_type, text, bytes) and back.

| Python object                         | content type                                   |
|---------------------------------------|------------------------------------------------|
| ``str``                               | ``text/plain`` (or any ``text/*`` given)        |
| ``dict`` / ``list``                   | ``application/json``                           |
| ``bytes`` / ``bytearray``/``memoryview`` | ``application/octet-stream`` (or as given)  |
| ``PIL.Image.Image``                   | ``image/<its format>``, ``image/png`` if none    |
| ``pyarrow.Table`` / ``RecordBatch``   | ``application/vnd.apache.arrow.stream``        |
| ``pandas.DataFrame``                  | the same, marked ``kind=pandas``               |

Pillow and pandas are imported only when such content is met.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ._errors import UnsupportedContentError

__all__ = ["ARROW_STREAM", "EncodedContent", "decode_content", "encode_content"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
JSON = "application/json"
OCTET_STREAM = "application/octet-stream"
TEXT = "text/plain"

_SUPPORTED = (
    "str, dict, list, bytes, bytearray, memoryview, PIL.Image.Image, "
    "pyarrow.Table, pyarrow.RecordBatch, pandas.DataFrame"
)


@dataclass(frozen=True)
class EncodedContent:
    """Content ready for the store's payload columns."""

    content_type: str
    text: str | None
    data: bytes | None


def _base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _param(content_type: str, name: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == name:
            return value.strip()
    return None


def _is_image(obj: object) -> bool:
    cls = type(obj)
    return any(c.__module__.startswith("PIL.") and c.__name__ == "Image" for c in cls.__mro__)


def _is_dataframe(obj: object) -> bool:
    return any(
        c.__module__.split(".")[0] == "pandas" and c.__name__ == "DataFrame" for c in type(obj).__mro__
    )


#: Save options that keep an image's pixels in its own format (WebP is lossy by default).
_EXACT_OPTIONS: dict[str, dict[str, Any]] = {"JPEG": {"quality": "keep"}, "WEBP": {"lossless": True}}


def _encode_image(image: Any) -> EncodedContent:
    """An image in its own format (WebP lossless; JPEG with its own quantization tables).

    A mode its format cannot hold is stored as PNG, or else as TIFF (CMYK, 32-bit float).
    """
    own = (image.format or "PNG").upper()
    for fmt in dict.fromkeys([own, "PNG", "TIFF"]):
        buffer = io.BytesIO()
        try:
            image.save(buffer, format=fmt, **_EXACT_OPTIONS.get(fmt, {}))
        except (OSError, ValueError, KeyError):
            continue
        return EncodedContent(f"image/{fmt.lower()}", None, buffer.getvalue())
    raise UnsupportedContentError(
        f"a {image.mode} image cannot be stored as {own}, PNG or TIFF; convert it first "
        "(image.convert('RGB'))"
    )


def _encode_arrow(table: pa.Table | pa.RecordBatch, kind: str) -> EncodedContent:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write(table)
    return EncodedContent(f"{ARROW_STREAM}; kind={kind}", None, sink.getvalue())


def _encode_json(value: dict[str, Any] | list[Any]) -> EncodedContent:
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UnsupportedContentError(f"dict/list content must be JSON-serializable: {exc}") from exc
    except RecursionError as exc:
        raise UnsupportedContentError("dict/list content is nested too deeply to store as JSON") from exc
    return EncodedContent(JSON, text, None)


def encode_content(content: object, content_type: str | None = None) -> EncodedContent:
    """Encode ``content`` for storage.

    Args:
        content: The object to store.
        content_type: A MIME type to record instead of the one inferred (for ``str``
            and ``bytes`` content).

    Returns:
        The content type, text payload and binary payload.

    Raises:
        UnsupportedContentError: When no codec handles the object's type.
    """
    if isinstance(content, str):
        return EncodedContent(content_type or TEXT, content, None)
    if isinstance(content, (bytes, bytearray, memoryview)):
        return EncodedContent(content_type or OCTET_STREAM, None, bytes(content))
    if isinstance(content, (dict, list)):
        return _encode_json(content)
    if isinstance(content, pa.Table):
        return _encode_arrow(content, "table")
    if isinstance(content, pa.RecordBatch):
        return _encode_arrow(content, "record_batch")
    if _is_image(content):
        return _encode_image(content)
    if _is_dataframe(content):
        table = pa.Table.from_pandas(content)
        return _encode_arrow(table, "pandas")
    raise UnsupportedContentError(
        f"cannot store content of type {type(content).__module__}.{type(content).__qualname__}; "
        f"supported types are: {_SUPPORTED}"
    )


def _decode_arrow(data: bytes, content_type: str) -> object:
    with pa.ipc.open_stream(data) as reader:
        table = reader.read_all()
    kind = _param(content_type, "kind")
    if kind == "record_batch":
        batches = table.combine_chunks().to_batches()
        return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
    if kind == "pandas":
        return table.to_pandas()
    return table


def _decode_image(data: bytes) -> object:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        return data  # stored under an image type but not an image Pillow reads: the bytes as written
    image.load()
    return image


def decode_content(content_type: str, text: str | None, data: bytes | None) -> object:
    """Decode stored payloads back into the kind of object that was stored."""
    base = _base_type(content_type)
    if data is not None:
        if base == ARROW_STREAM:
            return _decode_arrow(data, content_type)
        if base.startswith("image/"):
            return _decode_image(data)
        return data
    if text is not None and base == JSON:
        return json.loads(text)
    return text
