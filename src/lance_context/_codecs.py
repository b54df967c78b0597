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
import warnings
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ._errors import UnsupportedContentError
from ._jsonvalues import json_problem

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
#: Other names of a format in an ``image/...`` content type.
_FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF", "X-PNG": "PNG"}


def _encode_image(image: Any, content_type: str | None) -> EncodedContent:
    """An image in its own format (WebP lossless; JPEG with its own quantization tables).

    A mode its format cannot hold (or holds only approximately: RGBX, big-endian 16-bit, an RGB
    frame in a GIF) is stored as PNG, or else as TIFF (CMYK, 32-bit float); every frame of an
    animation or a multi-page file is kept. ``content_type`` (``image/png``...) asks for a format.
    """
    own = (image.format or "PNG").upper()
    asked = _asked_format(content_type, image)
    frames = getattr(image, "n_frames", 1)
    position = image.tell() if frames > 1 else 0
    candidates = [asked] if asked is not None else list(dict.fromkeys([own, "PNG", "TIFF"]))
    try:
        for fmt in candidates:
            data = _save_image(image, fmt, frames)
            if data is not None:
                return EncodedContent(f"image/{fmt.lower()}", None, data)
    finally:
        if frames > 1:
            image.seek(position)  # saving every frame moves the caller's image
    if asked is not None:
        raise UnsupportedContentError(
            f"this {image.mode} image cannot be stored as {content_type!r} without changing its pixels; "
            f"leave content_type out (it is then stored as image/{own.lower()}, or PNG or TIFF), or pass "
            "the encoded file's bytes with that content_type"
        )
    raise UnsupportedContentError(
        f"a {image.mode} image{f' of {frames} frames' if frames > 1 else ''} cannot be stored exactly as "
        f"{', '.join(candidates)}; convert it first (image.convert('RGB'))"
    )


def _asked_format(content_type: str | None, image: Any) -> str | None:
    if content_type is None:
        return None
    base = _base_type(content_type)
    if not base.startswith("image/"):
        raise UnsupportedContentError(
            f"content_type {content_type!r} does not describe an image; leave it out (the image is "
            "stored as image/<its format>) or pass the encoded bytes instead"
        )
    name = base.removeprefix("image/").upper()
    return _FORMAT_ALIASES.get(name, name)


def _save_image(image: Any, fmt: str, frames: int) -> bytes | None:
    """The image saved as ``fmt``, if that format gives back the same pixels; else None."""
    from PIL import Image

    buffer = io.BytesIO()
    options = dict(_EXACT_OPTIONS.get(fmt, {}))
    if frames > 1:
        options["save_all"] = True
        image.seek(0)  # Pillow cannot save an APNG from a later frame it has not loaded
    try:
        image.save(buffer, format=fmt, **options)
    except (OSError, ValueError, KeyError, SyntaxError):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
                if not _same_image(image, decoded, fmt, frames):
                    return None
    except Image.DecompressionBombError:
        pass  # too large to read back here: the store's max_image_pixels refuses it at add()
    except (OSError, ValueError, KeyError, SyntaxError):
        return None
    return buffer.getvalue()


#: Names of one mode (16-bit little-endian): Pillow reads an ``I;16L`` image back as ``I;16``.
_SAME_MODES = {"I;16L": "I;16"}
#: Formats that encode again with loss (their pixels are documented to move slightly).
_LOSSY = frozenset({"JPEG", "MPO"})


def _same_image(image: Any, decoded: Any, fmt: str, frames: int) -> bool:
    """Whether ``decoded`` holds ``image``'s pixels (JPEG: its mode and size; it is lossy)."""
    if decoded.size != image.size or getattr(decoded, "n_frames", 1) != frames:
        return False
    if frames > 1:  # frames may differ in mode (a GIF's later frames are RGB): compare what they show
        for index in range(frames):
            image.seek(index)
            decoded.seek(index)
            if fmt not in _LOSSY and image.convert("RGBA").tobytes() != decoded.convert("RGBA").tobytes():
                return False
        return True
    if _SAME_MODES.get(decoded.mode, decoded.mode) != _SAME_MODES.get(image.mode, image.mode):
        return False
    if fmt in _LOSSY:
        return True
    if decoded.tobytes() != image.tobytes():
        return False
    if image.mode not in ("P", "PA"):
        return True
    palette = image.getpalette() or []  # the colours it defines (a format may pad the rest)
    return (decoded.getpalette() or [])[: len(palette)] == palette


def _encode_arrow(table: pa.Table | pa.RecordBatch, kind: str) -> EncodedContent:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write(table)
    return EncodedContent(f"{ARROW_STREAM}; kind={kind}", None, sink.getvalue())


def _encode_json(value: dict[str, Any] | list[Any]) -> EncodedContent:
    problem = json_problem(value, "the content")
    if problem is not None:
        raise UnsupportedContentError(f"dict/list content must be JSON-serializable: {problem}")
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UnsupportedContentError(f"dict/list content must be JSON-serializable: {exc}") from exc
    except RecursionError as exc:
        raise UnsupportedContentError("dict/list content is nested too deeply to store as JSON") from exc
    return EncodedContent(JSON, text, None)


def _encode_frame(frame: Any) -> EncodedContent:
    try:
        table = pa.Table.from_pandas(frame)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise UnsupportedContentError(
            f"this DataFrame cannot be stored as an Arrow table ({type(exc).__name__}: {exc}); give each "
            "column one type and each column a unique name, or convert it with pyarrow.Table.from_pandas"
        ) from exc
    return _encode_arrow(table, "pandas")


def _encode_object(content: object, content_type: str | None) -> EncodedContent:
    """Encode content whose content type follows from its kind (not str or bytes)."""
    if isinstance(content, (dict, list)):
        encoded = _encode_json(content)
    elif isinstance(content, pa.Table):
        encoded = _encode_arrow(content, "table")
    elif isinstance(content, pa.RecordBatch):
        encoded = _encode_arrow(content, "record_batch")
    elif _is_image(content):
        return _encode_image(content, content_type)
    elif _is_dataframe(content):
        encoded = _encode_frame(content)
    else:
        hint = "; an image array: PIL.Image.fromarray(array)" if type(content).__name__ == "ndarray" else ""
        raise UnsupportedContentError(
            f"cannot store content of type {type(content).__module__}.{type(content).__qualname__}; "
            f"supported types are: {_SUPPORTED}{hint}"
        )
    if content_type is not None and _base_type(content_type) != _base_type(encoded.content_type):
        kind = type(content).__qualname__
        raise UnsupportedContentError(
            f"content_type {content_type!r} does not describe a {kind}, which is stored as "
            f"{_base_type(encoded.content_type)}; leave content_type out, or pass str or bytes "
            "to store under a type of your own"
        )
    return encoded


def encode_content(content: object, content_type: str | None = None) -> EncodedContent:
    """Encode ``content`` for storage.

    Args:
        content: The object to store.
        content_type: A MIME type to record instead of the one inferred (any for ``str`` and
            ``bytes``; for an image, the ``image/...`` format to store it in; for other
            kinds it must be the type they are stored as).

    Returns:
        The content type, text payload and binary payload.

    Raises:
        UnsupportedContentError: When no codec handles the object's type, the object
            cannot be stored exactly, or ``content_type`` does not describe it.
    """
    if isinstance(content, str):
        return EncodedContent(content_type or TEXT, content, None)
    if isinstance(content, (bytes, bytearray, memoryview)):
        return EncodedContent(content_type or OCTET_STREAM, None, bytes(content))
    return _encode_object(content, content_type)


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
