"""Choosing a long session's newest rows without putting all of its rows in order.

``records(run_id, last=n)`` reads the session's outline (``seq``, ``id`` and row ids of
its rows) and then only the chosen rows. Ordering the whole outline and keeping one row
per id (:func:`lance_context._reader.ordered`) hashes every id, which on a session of
20,000 messages costs more than reading the 50 records. The newest records are among the
rows of the largest ``seq``, and a stored copy that a newer one replaces is older than it,
so one id per record among those rows gives exactly what ordering everything would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["TailRows", "tail_rows"]

#: Outlines of at most ``SHORT_FACTOR * last + SHORT_EXTRA`` rows are put in order whole.
SHORT_FACTOR = 4
SHORT_EXTRA = 64


@dataclass(frozen=True)
class TailRows:
    """Row ids chosen from a session's outline.

    Attributes:
        newest: The newest records' row ids, oldest first (one per id, the newest copy).
        first: The session's first records' row ids, oldest first; None when they are not
            known without ordering every row (an id among them was written twice).
    """

    newest: list[int]
    first: list[int] | None


def _newest_positions(seqs: npt.NDArray[np.int64], count: int) -> npt.NDArray[np.intp]:
    """Positions of the rows whose ``seq`` is among the ``count`` largest (ties included)."""
    bound = np.partition(seqs, len(seqs) - count)[len(seqs) - count]
    return np.flatnonzero(seqs >= bound)


def _oldest_positions(seqs: npt.NDArray[np.int64], count: int) -> npt.NDArray[np.intp]:
    """Positions of the rows whose ``seq`` is among the ``count`` smallest (ties included)."""
    bound = np.partition(seqs, count - 1)[count - 1]
    return np.flatnonzero(seqs <= bound)


def tail_rows(outline: pa.Table, last: int, head: int) -> TailRows | None:
    """The newest ``last`` records and the first ``head`` of an unordered outline.

    Args:
        outline: Rows of one read (``seq``, ``id``, ``_rowid``) in any order.
        last: How many of the newest records (at least 1).
        head: How many of the first records to name as well (at least 1).

    Returns:
        The chosen row ids; None when the outline is short enough to order whole, or
        when so many of its newest rows are copies of one another that the choice would
        cover most of it.
    """
    rows = outline.num_rows
    if last < 1 or rows <= SHORT_FACTOR * last + SHORT_EXTRA:
        return None
    seqs = outline.column("seq").to_numpy()
    row_ids = outline.column("_rowid").to_numpy()
    ids = outline.column("id")
    window = last
    while True:
        if 2 * window > rows:
            return None  # mostly copies of a few ids: ordering every row costs no more
        positions = _newest_positions(seqs, window)
        if 2 * len(positions) > rows:
            return None
        picked = zip(seqs[positions].tolist(), ids.take(positions).to_pylist(), row_ids[positions].tolist())
        seen: set[str] = set()
        newest: list[int] = []
        for _, record_id, row_id in sorted(picked, reverse=True):  # newest first, as ordered() keeps them
            if record_id not in seen:
                seen.add(record_id)
                newest.append(row_id)
                if len(newest) == last:
                    break
        if len(newest) == last:
            break
        window = 2 * window + last  # copies among the newest rows: look further back
    oldest = _oldest_positions(seqs, head)
    firsts = sorted(zip(seqs[oldest].tolist(), ids.take(oldest).to_pylist(), row_ids[oldest].tolist()))[:head]
    first_ids = [record_id for _, record_id, _ in firsts]
    copies = pc.sum(pc.is_in(ids, value_set=pa.array(first_ids, ids.type))).as_py()
    first: list[int] | None = [row_id for _, _, row_id in firsts]
    if copies != len(set(first_ids)) or len(set(first_ids)) != len(firsts) or set(first or ()) & set(newest):
        first = None  # an id of the first rows has another copy, or the rows meet the newest
    return TailRows(newest[::-1], first)
