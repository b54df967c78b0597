"""Fingerprints of records: what a merge and a diff compare to tell whether a record changed.

A record is reduced to a digest of everything stored but its position (``seq``): its
session, role, type, time, state, relationships, Lance-computed hashes of its payloads,
metadata and index texts (never read in full), and a hash of its vector.

A sealed record (an encrypted store) is fingerprinted by what it holds, not by its
ciphertext: every seal draws a fresh nonce, so the same record sealed twice (a key
rotation, a merge, the same change made on two branches) has other bytes each time.
Given the store's cipher, its payload is read, opened in memory and hashed the way Lance
hashes a plaintext column, so a sealed copy and a plaintext copy of one record agree.
The digests are compared in memory and never written anywhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import lance
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._encryption import SEALED_PREFIX, Cipher, read_marker
from ._errors import EncryptionError
from ._filters import in_

__all__ = [
    "FINGERPRINT_COLUMNS",
    "SEALED_COLUMNS",
    "digest_of",
    "fingerprint_columns",
    "row_changes",
    "row_digests",
]

#: Ids looked up per filtered read; more suspects than ``_READ_ALL`` read every row instead.
_CHUNK = 1000
_READ_ALL = 20_000

#: What a merge reads of every record: payloads and metadata only as Lance-computed hashes.
FINGERPRINT_COLUMNS: dict[str, str] = {
    "id": "id",
    "run_id": "run_id",
    "seq": "seq",
    "role": "role",
    "content_type": "content_type",
    "created_at": "created_at",
    "state_metadata": "state_metadata",
    "relationships": "relationships",
    "metadata_md5": "md5(metadata)",
    "text_md5": "md5(text_payload)",
    "search_md5": "md5(search_text)",
    "embed_md5": "md5(embed_text)",
    "binary_md5": "md5(binary_payload)",
}


#: Read besides on an encrypted store, to open sealed rows: their ciphertext and key marker.
SEALED_COLUMNS: dict[str, str] = {"sealed_payload": "binary_payload", "sealed_metadata": "metadata"}
#: The hashes a sealed row's opened columns replace.
_OPENED_MD5 = {
    "metadata_md5": "metadata",
    "text_md5": "text_payload",
    "search_md5": "search_text",
    "embed_md5": "embed_text",
    "binary_md5": "binary_payload",
}


def fingerprint_columns(schema: pa.Schema, cipher: Cipher | None = None) -> dict[str, str]:
    """What to read of a version with ``schema`` to fingerprint its records (the vector too).

    With the ``cipher`` of an encrypted store, sealed payloads are read too (to be opened).
    """
    columns = dict(FINGERPRINT_COLUMNS)
    if "embedding" in schema.names:
        columns["embedding"] = "embedding"
    if _can_open(cipher) and read_marker(schema) is not None:
        columns.update(SEALED_COLUMNS)
    return columns


def _can_open(cipher: Cipher | None) -> bool:
    return cipher is not None and cipher.policy is not None


def _md5(value: str | bytes | None) -> str | None:
    if value is None:
        return None
    data = value.encode() if isinstance(value, str) else value
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _open_sealed(table: pa.Table, rows: list[dict[str, Any]], cipher: Cipher) -> None:
    """Give the sealed rows of ``rows`` the hashes and state of what they hold, in place.

    Rows are opened per key; rows sealed with a key this cipher lacks keep their
    ciphertext hashes (they then compare as changed, never as equal by mistake).
    """
    markers = table.column("sealed_metadata").cast(pa.large_string())  # an alias reads as a view type
    sealed = pc.fill_null(pc.starts_with(markers, SEALED_PREFIX), False)
    if not pc.any(sealed).as_py():
        return
    positions = [i for i, flag in enumerate(sealed.to_pylist()) if flag]
    take = pa.array(positions, pa.int64())
    picked = table.select(["id", "run_id", "state_metadata"]).take(take)
    nothing = pa.nulls(len(positions), pa.large_string())
    raw = pa.table(
        {
            "id": picked.column("id"),
            "run_id": picked.column("run_id"),
            "text_payload": nothing,
            "search_text": nothing,
            "embed_text": nothing,
            "binary_payload": table.column("sealed_payload").cast(pa.large_binary()).take(take),
            "metadata": markers.take(take),
            "state_metadata": picked.column("state_metadata"),
        }
    )
    by_key: dict[str, list[int]] = {}
    for at, marker in enumerate(raw.column("metadata").to_pylist()):
        by_key.setdefault(marker, []).append(at)
    for group in by_key.values():
        try:
            opened = cipher.open(raw.take(pa.array(group, pa.int64()))).to_pylist()
        except EncryptionError:
            continue  # a key not given: these rows compare by their ciphertext
        for at, row in zip(group, opened, strict=True):
            target = rows[positions[at]]
            for digest, column in _OPENED_MD5.items():
                target[digest] = _md5(row[column])
            target["state_metadata"] = row["state_metadata"]


def digest_of(row: Mapping[str, Any], vector: str | None = None) -> str:
    """A hash of one row of :data:`FINGERPRINT_COLUMNS` but ``seq``, and of its vector's digest."""
    content = [
        row["run_id"], row["role"], row["content_type"], row["created_at"].isoformat(),
        row["state_metadata"], row["relationships"], row["metadata_md5"], row["text_md5"],
        row["search_md5"], row["embed_md5"], row["binary_md5"], vector,
    ]  # fmt: skip
    return hashlib.sha1(json.dumps(content, default=str).encode(), usedforsecurity=False).hexdigest()


def _vector_digests(table: pa.Table) -> list[str | None]:
    """A digest of each row's vector (None where it has none, or the table no vectors)."""
    if "embedding" not in table.column_names:
        return [None] * table.num_rows
    column = table.column("embedding").combine_chunks()
    dimension = column.type.list_size
    values = np.asarray(column.values)[column.offset * dimension : (column.offset + len(column)) * dimension]
    rows = values.reshape(len(column), dimension) if dimension else values.reshape(len(column), 0)
    missing = column.is_null().to_pylist()
    return [
        None if gone else hashlib.sha1(row.tobytes(), usedforsecurity=False).hexdigest()
        for row, gone in zip(rows, missing, strict=True)
    ]


def row_digests(table: pa.Table, cipher: Cipher | None = None) -> list[str]:
    """:func:`digest_of` each row of a table read with :func:`fingerprint_columns`.

    Sealed rows are opened with ``cipher`` when the table holds their payloads.
    """
    vectors = _vector_digests(table)
    dropped = [c for c in ("embedding", *SEALED_COLUMNS) if c in table.column_names]
    rows = table.drop_columns(dropped).to_pylist()
    if _can_open(cipher) and "sealed_payload" in table.column_names:
        assert cipher is not None
        _open_sealed(table, rows, cipher)
    return [digest_of(row, vector) for row, vector in zip(rows, vectors, strict=True)]


Key = tuple[str, int]


def row_changes(
    before: lance.LanceDataset,
    after: lance.LanceDataset,
    *,
    same_branch: bool = True,
    cipher: Cipher | None = None,
) -> tuple[dict[Key, str], dict[Key, str]]:
    """The rows one snapshot added and removed against another: ``(id, seq)`` to session.

    A row whose ``(id, seq)`` is in both is the same row when it sits at the same row
    address on one branch (Lance never reuses an address there); otherwise (compacted,
    upserted with ``keep_order``, or on another branch, whose new files may reuse the
    numbers) its fingerprint is compared, and a changed row counts as removed and added.

    Args:
        before: The older snapshot (a Lance dataset at some version of some branch).
        after: The newer one.
        same_branch: Both are versions of one branch, so row addresses can be trusted.
        cipher: The cipher of an encrypted store: sealed rows are compared by what they
            hold, so a row only sealed again (``rotate_key``) is unchanged.

    Example:
        >>> added, removed = row_changes(ds.checkout_version(3), ds)  # doctest: +SKIP
    """

    def keyed(ds: lance.LanceDataset) -> dict[Key, tuple[str, int]]:
        table = ds.to_table(columns=["id", "seq", "run_id"], with_row_address=True)
        keys = zip(table.column("id").to_pylist(), table.column("seq").to_pylist(), strict=True)
        rows = zip(table.column("run_id").to_pylist(), table.column("_rowaddr").to_pylist(), strict=True)
        return dict(zip(keys, rows, strict=True))

    old, new = keyed(before), keyed(after)
    added = {key: new[key][0] for key in new.keys() - old.keys()}
    removed = {key: old[key][0] for key in old.keys() - new.keys()}
    both = old.keys() & new.keys()
    suspects = sorted({key[0] for key in both if not same_branch or old[key][1] != new[key][1]})
    if suspects:
        then, now = _digests(before, suspects, cipher), _digests(after, suspects, cipher)
        looked_up = set(suspects)
        for key in both:
            if key[0] in looked_up and then.get(key) != now.get(key):
                added[key], removed[key] = new[key][0], old[key][0]
    return added, removed


def _digests(ds: lance.LanceDataset, ids: list[str], cipher: Cipher | None) -> dict[Key, str]:
    """The fingerprints of the rows of ``ids`` (every row when they are many)."""
    columns = fingerprint_columns(ds.schema, cipher)
    if len(ids) > _READ_ALL:
        table = ds.to_table(columns=columns)
    else:
        table = pa.concat_tables(
            ds.to_table(columns=columns, filter=in_("id", ids[i : i + _CHUNK]))
            for i in range(0, len(ids), _CHUNK)
        )
    keys = zip(table.column("id").to_pylist(), table.column("seq").to_pylist(), strict=True)
    return dict(zip(keys, row_digests(table, cipher), strict=True))
