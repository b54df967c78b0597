"""One entry of the search log: what it stores, and how it is written and read.

An entry keeps what an exact replay needs (see :mod:`._searchlog`). Filters are kept as
JSON that :func:`decode` turns back into the values given (tuple keys and datetimes
included); :func:`as_json` gives them as plain JSON, as ``to_dict()`` shows them. On an
encrypted store the query text is not kept: the store seals record text, and a query is
often a user's own words (the logged vector replays the search).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ._errors import SearchError
from ._search import SearchMode

__all__ = ["LOG_SCHEMA", "LoggedSearch", "Vector", "as_json", "decode", "encode", "from_row", "to_table"]

Vector = npt.NDArray[np.float32]

LOG_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("logged_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("branch", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("query_text", pa.large_string()),
        pa.field("query_vector", pa.list_(pa.float32())),
        pa.field("mode", pa.string(), nullable=False),
        pa.field("k", pa.int64(), nullable=False),
        pa.field("filters", pa.large_string(), nullable=False),
        pa.field("options", pa.large_string(), nullable=False),
        pa.field("embedder", pa.string()),
        pa.field("dimension", pa.int64()),
        pa.field("hit_ids", pa.list_(pa.string()), nullable=False),
        pa.field("hit_scores", pa.list_(pa.float64()), nullable=False),
    ],
    metadata={"lance_context.search_log": "1"},
)


def encode(value: object) -> Any:
    """A filter value as JSON that :func:`decode` turns back into the same value.

    ``where`` dicts may have tuple keys (metadata paths) and datetimes; both survive.
    """
    if isinstance(value, Mapping):
        return {"$map": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Iterable) and not isinstance(value, (bytes, bytearray)):
        return [encode(v) for v in value]
    raise SearchError(f"a recorded search's filters must be JSON-like; got {type(value).__name__}")


def decode(value: Any) -> Any:
    """The value :func:`encode` was given."""
    if isinstance(value, dict):
        if "$map" in value:
            return {decode(k): decode(v) for k, v in value["$map"]}
        if "$tuple" in value:
            return tuple(decode(v) for v in value["$tuple"])
        if "$datetime" in value:
            return datetime.fromisoformat(value["$datetime"])
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def as_json(value: object) -> Any:
    """Filters as given, as plain JSON: datetimes in ISO 8601, tuples as lists.

    A tuple key (a nested metadata path, ``("metadata", "a", "b")``) becomes the JSON
    text of its list (``'["metadata", "a", "b"]'``): JSON keys are strings, and
    ``"metadata.a.b"`` would name another key.
    """
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else json.dumps(as_json(k)): as_json(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Iterable) and not isinstance(value, (bytes, bytearray)):
        return [as_json(v) for v in value]
    return value


@dataclass(frozen=True)
class LoggedSearch:
    """One recorded search.

    Attributes:
        id: The log id (``store.replay(id)``).
        logged_at: When it ran (UTC).
        branch: The branch it searched.
        version: The store version it searched.
        query: The query text (None for a vector or image query).
        mode: ``vector``, ``text`` or ``hybrid``.
        k: How many hits were asked for.
        filters: The filter arguments given (``run_id``, ``roles``, ``since``, ``until``, ``where``).
        options: ``mmr``, ``fetch_k``, ``lambda_mult``, ``alpha``, the fusion of a hybrid
            search and the index settings used.
        embedder: The name of the embedder the store was built with then, if recorded.
        dimension: The dimension of the store's vectors then.
        hits: ``(record id, score)`` of each hit, best first.
        query_vector: The query vector used (None for text search).

    Example:
        >>> entry = store.search_log(limit=1)[0]    # doctest: +SKIP
        >>> entry.query, entry.version, entry.ids   # doctest: +SKIP
        ('what food should I avoid?', 12, ['msg-3', 'msg-9'])
    """

    id: str
    logged_at: datetime
    branch: str
    version: int
    query: str | None
    mode: SearchMode
    k: int
    filters: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    embedder: str | None = None
    dimension: int | None = None
    hits: tuple[tuple[str, float], ...] = ()
    query_vector: Vector | None = field(default=None, repr=False, compare=False)

    @property
    def ids(self) -> list[str]:
        """The ids returned, best first."""
        return [record_id for record_id, _ in self.hits]

    def describe(self) -> str:
        """The query as a person reads it: text, mode, k and filters."""
        query = repr(self.query) if self.query is not None else "<vector query>"
        filters = ", ".join(f"{k}={v!r}" for k, v in self.filters.items())
        return f"{query} ({self.mode}, k={self.k}{', ' + filters if filters else ''})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields: the filters as given (see :func:`as_json`), the query vector left out."""
        return {
            "id": self.id,
            "logged_at": self.logged_at.isoformat(),
            "branch": self.branch,
            "version": self.version,
            "query": self.query,
            "mode": self.mode,
            "k": self.k,
            "filters": as_json(self.filters),
            "options": self.options,
            "embedder": self.embedder,
            "dimension": self.dimension,
            "hits": [{"id": i, "score": s} for i, s in self.hits],
        }

    def __str__(self) -> str:
        when = self.logged_at.strftime("%Y-%m-%d %H:%M:%S")
        return (
            f"{self.id}  {when}  {self.branch} v{self.version}  {self.describe()}  -> {len(self.hits)} hits"
        )


def to_table(entry: LoggedSearch) -> pa.Table:
    vector = None if entry.query_vector is None else [float(x) for x in entry.query_vector]
    row = {
        "id": entry.id, "logged_at": entry.logged_at, "branch": entry.branch, "version": entry.version,
        "query_text": entry.query, "query_vector": vector, "mode": entry.mode, "k": entry.k,
        "filters": json.dumps(encode(entry.filters)), "options": json.dumps(entry.options),
        "embedder": entry.embedder, "dimension": entry.dimension,
        "hit_ids": [i for i, _ in entry.hits], "hit_scores": [float(s) for _, s in entry.hits],
    }  # fmt: skip
    return pa.Table.from_pylist([row], schema=LOG_SCHEMA)


def from_row(row: Mapping[str, Any]) -> LoggedSearch:
    vector = row.get("query_vector")
    return LoggedSearch(
        id=row["id"],
        logged_at=row["logged_at"].astimezone(timezone.utc),
        branch=row["branch"],
        version=int(row["version"]),
        query=row["query_text"],
        mode=row["mode"],
        k=int(row["k"]),
        filters=decode(json.loads(row["filters"])),
        options=json.loads(row["options"]),
        embedder=row["embedder"],
        dimension=row["dimension"],
        hits=tuple(zip(row["hit_ids"], row["hit_scores"])),
        query_vector=None if vector is None else np.asarray(vector, dtype=np.float32),
    )
