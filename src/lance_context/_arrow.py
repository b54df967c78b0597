"""Columnar conversion between ContextRecords and Arrow tables of the store schema."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ._encryption import Cipher, open_table, seal_table
from ._records import (
    ContextRecord,
    check_unicode,
    metadata_to_json,
    row_to_record,
    state_to_row,
)
from ._schema import RELATIONSHIP_TYPE, STATE_METADATA_TYPE

__all__ = ["WRITE_ONLY", "records_to_table", "table_to_records", "vectors_to_array"]


def vectors_to_array(
    vectors: Sequence[npt.NDArray[np.float32] | None] | npt.NDArray[np.float32], dimension: int
) -> pa.FixedSizeListArray:
    """A fixed-size-list array of float32 vectors; None entries become nulls.

    A 2-D float32 matrix (one checked row per record) is wrapped without copying rows.
    """
    if isinstance(vectors, np.ndarray):
        flat_values = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
        return pa.FixedSizeListArray.from_arrays(flat_values, dimension)
    count = len(vectors)
    flat = np.zeros((count, dimension), dtype=np.float32)
    mask = np.zeros(count, dtype=bool)
    for i, vector in enumerate(vectors):
        if vector is None:
            mask[i] = True
        else:
            flat[i] = vector
    values = pa.array(flat.reshape(-1), type=pa.float32())
    nulls = pa.array(mask, type=pa.bool_()) if mask.any() else None
    return pa.FixedSizeListArray.from_arrays(values, dimension, mask=nulls)


def _metadata_text(record: ContextRecord) -> str:
    known = record.known_metadata_json()
    if known is not None:
        return check_unicode(known, f"record {record.id!r}: metadata")
    # json.dumps({}) is "{}": skip the encoder for the (common) empty metadata.
    return metadata_to_json(record.metadata, record.id) if record.metadata else "{}"


def _relationships(records: Sequence[ContextRecord]) -> pa.Array:
    if not any(r.relationships for r in records):  # the common case, built without a Python row each
        offsets = pa.array(np.zeros(len(records) + 1, dtype=np.int32))
        empty = pa.array([], RELATIONSHIP_TYPE)
        return pa.ListArray.from_arrays(offsets, empty, type=pa.list_(RELATIONSHIP_TYPE))
    return pa.array(
        [
            [
                {"target_id": rel.target_id, "relation": rel.relation, "weight": rel.weight}
                for rel in r.relationships
            ]
            for r in records
        ],
        pa.list_(RELATIONSHIP_TYPE),
    )


def records_to_table(
    records: Sequence[ContextRecord],
    vectors: Sequence[npt.NDArray[np.float32] | None] | npt.NDArray[np.float32],
    schema: pa.Schema,
    first_seq: int,
    cipher: Cipher | None = None,
) -> pa.Table:
    """Build one Arrow table for a batch, in the store's column order.

    ``vectors`` holds one entry per record (None: no vector), or one checked 2-D matrix.
    On an encrypted store ``cipher`` seals the payloads (see ``_encryption``).
    """
    metadata = [_metadata_text(r) for r in records]
    columns: dict[str, pa.Array] = {
        "id": pa.array([r.id for r in records], pa.string()),
        "run_id": pa.array([r.run_id for r in records], pa.string()),
        "seq": pa.array(np.arange(first_seq, first_seq + len(records), dtype=np.int64)),
        "created_at": pa.array([r.created_at for r in records], pa.timestamp("us", tz="UTC")),
        "role": pa.array([r.role for r in records], pa.string()),
        "content_type": pa.array([r.content_type for r in records], pa.string()),
        "text_payload": pa.array([r.text_payload for r in records], pa.large_string()),
        "search_text": pa.array(
            [r.text_payload if r.search_text is None else r.search_text for r in records], pa.large_string()
        ),
        "embed_text": pa.array([r.embed_text for r in records], pa.large_string()),
        "binary_payload": pa.array([r.binary_payload for r in records], pa.large_binary()),
        "state_metadata": pa.array([state_to_row(r.state_metadata) for r in records], STATE_METADATA_TYPE),
        "metadata": pa.array(metadata, pa.large_string()),
        "metadata_index": pa.array(metadata, pa.json_()),
        "relationships": _relationships(records),
    }
    if "embedding" in schema.names:
        dimension = schema.field("embedding").type.list_size
        columns["embedding"] = vectors_to_array(vectors, dimension)
    table = pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)
    return seal_table(table, schema, cipher)


#: Columns written for filters and search but never read back into records.
WRITE_ONLY = ("metadata_index", "search_text", "embed_text")


def _vector_rows(table: pa.Table) -> list[npt.NDArray[np.float32] | None]:
    if "embedding" not in table.column_names:
        return [None] * table.num_rows
    column = table.column("embedding").combine_chunks()
    dimension = column.type.list_size
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    flat = column.flatten().to_numpy(zero_copy_only=False)
    if column.null_count:
        # flatten() drops null slots; rebuild the dense matrix row by row.
        dense = np.zeros((len(column), dimension), dtype=np.float32)
        dense[valid] = flat.reshape(-1, dimension)
    else:
        dense = flat.reshape(-1, dimension)
    return [dense[i].copy() if valid[i] else None for i in range(len(column))]


def table_to_records(
    table: pa.Table, cipher: Cipher | None = None, *, index_text: bool = False
) -> list[ContextRecord]:
    """Turn rows of the store schema (any subset of extra columns) into records.

    Sealed rows of an encrypted store are opened with ``cipher`` (see ``_encryption``).
    ``index_text``: keep each record's ``search_text`` and ``embed_text`` (a copy of the
    records into another store needs them; reads never return them).
    """
    table = open_table(table, cipher)
    vectors = _vector_rows(table)
    dropped = ("embedding", "metadata_index") if index_text else ("embedding", *WRITE_ONLY)
    plain = table.drop_columns([c for c in dropped if c in table.column_names])
    records = []
    for row, vector in zip(plain.to_pylist(), vectors, strict=True):
        row["embedding"] = vector
        records.append(row_to_record(row))
    return records
