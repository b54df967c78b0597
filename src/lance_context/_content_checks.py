"""What a record's content must be before it is written: within limits, and readable back.

Each check refuses one record with a specific :class:`InvalidRecordError` (or
:class:`PayloadTooLargeError`) before anything is written, so a batch is all or nothing.
"""

from __future__ import annotations

import io
import json
import warnings

import pyarrow as pa

from ._codecs import ARROW_STREAM, JSON
from ._errors import InvalidRecordError, PayloadTooLargeError
from ._jsonvalues import json_problem
from ._policies import StoreLimits
from ._records import ContextRecord, json_depth

__all__ = ["check_content"]


def check_content(record: ContextRecord, limits: StoreLimits) -> None:
    """Refuse a record whose content is too large, nested too deeply, or unreadable as its type."""
    _check_size(record, limits)
    _check_nesting(record, limits)
    _check_image(record, limits)
    _check_json(record)
    _check_arrow(record)


def _check_size(record: ContextRecord, limits: StoreLimits) -> None:
    size = len(record.text_payload.encode()) if record.text_payload else 0
    size += len(record.binary_payload or b"")
    if size > limits.max_record_bytes:
        raise PayloadTooLargeError(
            f"record {record.id!r} holds {size} bytes, over the store's limit of "
            f"{limits.max_record_bytes}; raise StoreLimits.max_record_bytes "
            "or store the content elsewhere and keep a reference"
        )


def _check_nesting(record: ContextRecord, limits: StoreLimits) -> None:
    """Refuse JSON that would not come back as given.

    Nested past the limit (reading it back would exhaust the recursion limit), or metadata
    and ``state_metadata.custom`` holding a non-str key, NaN, or a value JSON cannot hold.
    """
    texts = [("metadata", record.known_metadata_json())]
    if (
        record.text_payload is not None
        and record.content_type.split(";")[0].strip().lower() == "application/json"
    ):
        texts.append(("JSON content", record.text_payload))
    for name, text in texts:
        if text is not None and json_depth(text, limits.max_json_depth) > limits.max_json_depth:
            raise InvalidRecordError(
                f"record {record.id!r}: {name} nests deeper than {limits.max_json_depth} levels; "
                "flatten it (or raise StoreLimits.max_json_depth)"
            )
    values = [("state_metadata.custom", record.state_metadata.custom)] if record.state_metadata else []
    if record.known_metadata_json() is None and record.metadata:
        values.insert(0, ("metadata", record.metadata))
    for name, value in values:
        problem = json_problem(value, name, limits.max_json_depth)
        if problem is None:
            continue
        if problem.startswith(f"{name} nests deeper"):
            raise InvalidRecordError(
                f"record {record.id!r}: {problem}; flatten it (or raise StoreLimits.max_json_depth)"
            )
        raise InvalidRecordError(f"record {record.id!r}: {name} must be JSON-serializable: {problem}")


def _check_json(record: ContextRecord) -> None:
    """Refuse text stored as JSON that is not JSON (reading its content back would fail)."""
    if record.text_payload is None or record.content_type.split(";", 1)[0].strip().lower() != JSON:
        return
    try:
        json.loads(record.text_payload)
    except ValueError as exc:
        raise InvalidRecordError(
            f"record {record.id!r}: content_type is {record.content_type!r} but its text is not JSON "
            f"({exc}); store it as text/plain, or pass the object to from_content()"
        ) from None


def _check_arrow(record: ContextRecord) -> None:
    """Refuse bytes stored as an Arrow stream that are not one (reading their content back would fail)."""
    if record.binary_payload is None or record.content_type.split(";", 1)[0].strip().lower() != ARROW_STREAM:
        return
    try:
        with pa.ipc.open_stream(record.binary_payload) as reader:
            reader.read_all()
    except (pa.ArrowInvalid, pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidRecordError(
            f"record {record.id!r}: content_type is {record.content_type!r} but its bytes are not an "
            f"Arrow IPC stream ({exc}); store them as application/octet-stream, or pass the table "
            "to from_content()"
        ) from None


def _check_image(record: ContextRecord, limits: StoreLimits) -> None:
    """Refuse images too large to decode safely (Pillow would refuse them on read)."""
    if record.binary_payload is None or not record.content_type.lower().startswith("image/"):
        return
    try:
        from PIL import Image
    except ImportError:
        return  # without Pillow the store never decodes images
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(record.binary_payload)) as image:  # reads the header only
                pixels = image.width * image.height
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidRecordError(f"record {record.id!r}: image refused: {exc}") from exc
    except Exception:
        return  # not an image Pillow reads: stored as bytes, returned as bytes
    if pixels > limits.max_image_pixels:
        raise InvalidRecordError(
            f"record {record.id!r}: image of {pixels:,} pixels is over the limit of "
            f"{limits.max_image_pixels:,}; resize it (or raise StoreLimits.max_image_pixels)"
        )
