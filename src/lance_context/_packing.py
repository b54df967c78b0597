"""The plaintext layout sealed inside one record's ciphertext (see ``_encryption``).

Fields in order, each as a flag byte (0: None) then a 4-byte big-endian length and the
bytes, after a leading format byte.
"""

from __future__ import annotations

import struct

__all__ = ["pack", "unpack"]


def pack(*parts: str | bytes | None) -> bytes:
    """Fields as ``flag, length, bytes`` each (a flag of 0 is None)."""
    out = bytearray(b"\x01")
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out += b"\x00" if data is None else b"\x01" + struct.pack(">I", len(data)) + data
    return bytes(out)


def unpack(data: bytes) -> list[bytes | None]:
    """The fields :func:`pack` wrote, in order."""
    if data[:1] != b"\x01":
        raise ValueError("unknown sealed payload format")
    parts: list[bytes | None] = []
    at = 1
    while at < len(data):
        if data[at : at + 1] == b"\x00":
            parts.append(None)
            at += 1
            continue
        (length,) = struct.unpack(">I", data[at + 1 : at + 5])
        parts.append(data[at + 5 : at + 5 + length])
        at += 5 + length
    return parts
