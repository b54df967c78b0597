"""What a search returns: :class:`SearchHit`, and reading the records a search chose."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import lance
import pyarrow as pa

from ._arrow import table_to_records
from ._ranking import ChannelRanking
from ._reader import record_columns
from ._records import ContextRecord
from ._state import StoreState

__all__ = ["SearchHit", "read_hits"]


@dataclass(frozen=True)
class SearchHit:
    """One search result.

    Attributes:
        record: The matching record.
        score: Larger is better: cosine similarity (vector), BM25 (text) or the fused
            score (hybrid).
        vector_distance: Cosine distance to the query, when the vector channel matched.
        text_score: BM25 score, when the text channel matched.
        channels: Which channels matched: ``("vector",)``, ``("text",)`` or both.

    Example:
        >>> hit = SearchHit(record=None, score=0.9, vector_distance=0.1)  # doctest: +SKIP
    """

    record: ContextRecord
    score: float
    vector_distance: float | None = None
    text_score: float | None = None
    channels: tuple[str, ...] = ()


def read_hits(
    state: StoreState,
    ds: lance.LanceDataset,
    ids: Sequence[str],
    channels: Mapping[str, ChannelRanking],
    scores: Sequence[float],
    rows: pa.Table | None = None,
) -> list[SearchHit]:
    """Read the chosen records (and only them, unless ``rows`` holds them) and attach scores."""
    if not ids:
        return []
    first = list({record_id: i for i, record_id in reversed(list(enumerate(ids)))}.values())
    if len(first) < len(ids):  # copies of one id (added twice): its best-ranked copy only
        first.sort()
        ids, scores = [ids[i] for i in first], [scores[i] for i in first]
        rows = None if rows is None else rows.take(pa.array(first, pa.int64()))
    per_channel = {
        name: dict(reversed(list(zip(r.ids, r.scores, strict=True)))) for name, r in channels.items()
    }
    table = rows if rows is not None else _take(state, ds, ids, channels)
    hits = []
    for record, score in zip(table_to_records(table, state.cipher), scores, strict=True):
        similarity = per_channel.get("vector", {}).get(record.id)
        text_score = per_channel.get("text", {}).get(record.id)
        hits.append(
            SearchHit(
                record=record,
                score=float(score),
                vector_distance=None if similarity is None else 1.0 - similarity,
                text_score=text_score,
                channels=tuple(name for name in ("vector", "text") if record.id in per_channel.get(name, {})),
            )
        )
    return hits


def _take(
    state: StoreState, ds: lance.LanceDataset, ids: Sequence[str], channels: Mapping[str, ChannelRanking]
) -> pa.Table:
    """The records of ``ids`` (in that order), taken by the row ids their channels found."""
    row_of: dict[str, int] = {}
    for ranked in channels.values():
        for record_id, row_id in zip(ranked.ids, ranked.row_ids, strict=True):
            row_of.setdefault(record_id, row_id)
    handle, columns = state.handle, record_columns(ds.schema)
    return handle.call(
        lambda: handle.take_rows(ds, [row_of[i] for i in ids], columns), "read search hits", retry=False
    )
