"""Fingerprints of records: what a merge and a diff compare to tell whether a record changed.

A record is reduced to a digest of everything stored but its position (``seq``): its
session, role, type, time, state, relationships, Lance-computed hashes of its payloads,
metadata and index texts (never read in full), and a hash of its vector.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import lance
import numpy as np
import pyarrow as pa

from ._filters import in_

__all__ = ["FINGERPRINT_COLUMNS", "digest_of", "fingerprint_columns", "row_changes", "row_digests"]

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


def fingerprint_columns(schema: pa.Schema) -> dict[str, str]:
    """What to read of a version with ``schema`` to fingerprint its records (the vector too)."""
    columns = dict(FINGERPRINT_COLUMNS)
    if "embedding" in schema.names:
        columns["embedding"] = "embedding"
    return columns


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


def row_digests(table: pa.Table) -> list[str]:
    """:func:`digest_of` each row of a table read with :func:`fingerprint_columns`."""
    vectors = _vector_digests(table)
    rows = table.drop_columns([c for c in ("embedding",) if c in table.column_names]).to_pylist()
    return [digest_of(row, vector) for row, vector in zip(rows, vectors, strict=True)]


Key = tuple[str, int]


def row_changes(
    before: lance.LanceDataset, after: lance.LanceDataset, *, same_branch: bool = True
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
        looked_up, then, now = set(suspects), _digests(before, suspects), _digests(after, suspects)
        for key in both:
            if key[0] in looked_up and then.get(key) != now.get(key):
                added[key], removed[key] = new[key][0], old[key][0]
    return added, removed


def _digests(ds: lance.LanceDataset, ids: list[str]) -> dict[Key, str]:
    """The fingerprints of the rows of ``ids`` (every row when they are many)."""
    columns = fingerprint_columns(ds.schema)
    if len(ids) > _READ_ALL:
        table = ds.to_table(columns=columns)
    else:
        table = pa.concat_tables(
            ds.to_table(columns=columns, filter=in_("id", ids[i : i + _CHUNK]))
            for i in range(0, len(ids), _CHUNK)
        )
    keys = zip(table.column("id").to_pylist(), table.column("seq").to_pylist(), strict=True)
    return dict(zip(keys, row_digests(table), strict=True))
