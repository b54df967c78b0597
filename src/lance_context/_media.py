"""Helpers every message codec shares: recognising image bytes, strict base64, ordered timestamps."""

from __future__ import annotations

import base64
import binascii
import threading
from datetime import datetime, timedelta, timezone

__all__ = ["canonical_base64", "monotonic_times", "sniff_mime"]

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def sniff_mime(data: bytes) -> str:
    """The MIME type of common image bytes (PNG, JPEG, GIF, BMP, WebP), else ``application/octet-stream``."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def canonical_base64(text: str | bytes) -> bytes | None:
    """The bytes ``text`` encodes, if it is base64 that re-encodes to exactly itself.

    Only such text can be stored as bytes and given back unchanged; anything else
    (other alphabets, whitespace, padding variants) is left as it was written.
    """
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    raw = text.encode("ascii") if isinstance(text, str) else text
    return data if base64.b64encode(data) == raw else None


_CLOCK_LOCK = threading.Lock()
_last_time: datetime | None = None


def monotonic_times(count: int) -> list[datetime]:
    """``count`` strictly increasing UTC timestamps, never going backwards in this process."""
    global _last_time
    with _CLOCK_LOCK:
        now = datetime.now(timezone.utc)
        first = now if _last_time is None or now > _last_time else _last_time + timedelta(microseconds=1)
        times = [first + timedelta(microseconds=i) for i in range(count)]
        if times:
            _last_time = times[-1]
        return times
