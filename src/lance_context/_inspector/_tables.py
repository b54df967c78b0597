"""A stored Arrow table shown as a table: its columns and first rows, each cell as short text."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from lance_context import ContextRecord

from .._cli._conversation import short

__all__ = ["PREVIEW_COLUMNS", "PREVIEW_ROWS", "TablePreview", "table_previews"]

_ARROW_STREAM = "application/vnd.apache.arrow.stream"
#: Rows and columns a preview shows (the whole table is a download away).
PREVIEW_ROWS = 20
PREVIEW_COLUMNS = 12


@dataclass(frozen=True)
class TablePreview:
    """The first rows of a table record.

    Attributes:
        columns: Names of the columns shown.
        rows: The first rows, one string per cell.
        total_rows: How many rows the table holds.
        total_columns: How many columns it holds.
    """

    columns: list[str]
    rows: list[list[str]]
    total_rows: int
    total_columns: int


def _cell(value: object) -> str:
    return "" if value is None else short(str(value), 80)


def table_preview(record: ContextRecord) -> TablePreview | None:
    """The preview of a record holding an Arrow table; None for any other record or a broken payload."""
    if record.binary_payload is None or record.content_type.split(";")[0].strip().lower() != _ARROW_STREAM:
        return None
    try:
        with pa.ipc.open_stream(record.binary_payload) as reader:
            table = reader.read_all()
    except (pa.ArrowException, OSError):
        return None
    shown = range(min(table.num_columns, PREVIEW_COLUMNS))  # by position: names may repeat
    cells = [[_cell(v) for v in table.column(i).slice(0, PREVIEW_ROWS).to_pylist()] for i in shown]
    return TablePreview(
        columns=[table.column_names[i] for i in shown],
        rows=[list(row) for row in zip(*cells, strict=True)],
        total_rows=table.num_rows,
        total_columns=table.num_columns,
    )


def table_previews(records: Iterable[ContextRecord]) -> dict[str, TablePreview]:
    """The previews of the table records among ``records``, by record id."""
    found = {record.id: table_preview(record) for record in records}
    return {record_id: preview for record_id, preview in found.items() if preview is not None}
