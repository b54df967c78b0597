"""The pure ranking parts of search: a channel's ranking, exact cosine top-k, MMR, RRF.

Split out of ``_search.py`` (which runs the Lance queries) so that what decides an
order is in one place and testable without a store. Two rules hold for every channel:

- **One hit per record id.** An id added twice is stored twice; a channel keeps its
  best-ranked copy, and reads deeper while copies fill its top ``k``, so MMR, fusion
  and recall never pick among copies of one record and return fewer than asked.
- **Cosine needs a direction.** A stored all-zero vector has none: Lance's cosine
  distance on it is NaN and its scans leave the row out, so the exact path here
  leaves it out too (a search returns the same hits filtered or not).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "RRF_K",
    "ChannelRanking",
    "ExactRows",
    "cosine_top",
    "distinct",
    "mmr_select",
    "rrf_fuse",
    "weighted_fuse",
]

Vector = npt.NDArray[np.float32]
RRF_K = 60


@dataclass
class ChannelRanking:
    """One channel's ranking: ids best first, with row ids and scores."""

    ids: list[str]
    row_ids: list[int]
    scores: list[float]
    vectors: Vector | None = None
    rows: pa.Table | None = None
    """The hits' record columns, when the channel's query read them in the same pass."""

    def pairs(self) -> list[tuple[str, float]]:
        """``(id, score)`` best first."""
        return list(zip(self.ids, self.scores, strict=True))

    def first_copies(self) -> ChannelRanking:
        """The ranking with each id once, at its best-ranked copy."""
        keep = list({key: i for i, key in reversed(list(enumerate(self.ids)))}.values())
        if len(keep) == len(self.ids):
            return self
        keep.sort()
        return ChannelRanking(
            [self.ids[i] for i in keep],
            [self.row_ids[i] for i in keep],
            [self.scores[i] for i in keep],
            None if self.vectors is None else self.vectors[keep],
            None if self.rows is None else self.rows.take(pa.array(keep, pa.int64())),
        )


def distinct(run: Callable[[int], ChannelRanking], k: int) -> ChannelRanking:
    """A channel's top ``k`` distinct ids: fetched deeper while copies of one id fill it.

    ``run(depth)`` returns the channel's top ``depth`` rows (copies included). Reads at
    most ``8 * k`` rows; an id stored more often than that may still leave fewer.
    """
    depth = k
    while True:
        ranked = run(depth)
        unique = ranked.first_copies()
        if len(unique.ids) >= k or len(ranked.ids) < depth or depth >= 8 * k:
            return unique
        depth *= 2


@dataclass(frozen=True)
class ExactRows:
    """Rows to rank exactly by cosine: their ids, row ids and vectors, converted once.

    A session's outline read with its vectors is ranked by every recall at its
    version; converting its columns (and the vectors' norms) once saves doing so
    on each query.
    """

    ids: list[str]
    row_ids: list[int]
    matrix: Vector
    norms: Vector

    @classmethod
    def of(cls, table: pa.Table) -> ExactRows:
        """The rows of ``table`` (``id``, ``_rowid``, ``embedding``) that have a vector."""
        if table.column("embedding").null_count:
            table = table.filter(pc.is_valid(table.column("embedding")))
        column = table.column("embedding").combine_chunks()
        flat = column.flatten().to_numpy(zero_copy_only=False)
        matrix = np.asarray(flat, dtype=np.float32).reshape(table.num_rows, column.type.list_size)
        ids, row_ids = table.column("id").to_pylist(), table.column("_rowid").to_pylist()
        return cls(ids, row_ids, matrix, np.linalg.norm(matrix, axis=1))

    def rank(self, vector: Vector, k: int, *, with_vectors: bool = False) -> ChannelRanking:
        """Exact cosine top ``k`` (rows without a direction left out, see :func:`cosine_top`)."""
        order, similarity = cosine_top(self.matrix, vector, k, norms=self.norms)
        return ChannelRanking(
            [self.ids[i] for i in order],
            [self.row_ids[i] for i in order],
            [float(score) for score in similarity],
            self.matrix[order] if with_vectors else None,
        )


def cosine_top(
    matrix: Vector, vector: Vector, k: int, *, norms: Vector | None = None
) -> tuple[npt.NDArray[np.intp], Vector]:
    """Exact cosine top ``k`` of ``matrix``'s rows: their positions and similarities, best first.

    Rows with no direction (all zeros) are left out, as Lance leaves them out; so is
    every row for a query with no direction (callers refuse such a query first).
    ``norms``: the rows' norms, when already known.
    """
    norms = np.linalg.norm(matrix, axis=1) if norms is None else norms
    query_norm = float(np.linalg.norm(vector))
    usable = np.flatnonzero(norms > 0) if query_norm > 0 else np.zeros(0, dtype=np.intp)
    similarity = (matrix[usable] @ vector) / (norms[usable] * max(query_norm, 1e-30))
    order = np.lexsort((usable, -similarity))[:k]
    return usable[order], similarity[order].astype(np.float32)


def mmr_select(
    query: Vector, candidates: Vector, k: int, lambda_mult: float, redundancy: str = "all"
) -> list[int]:
    """Maximal marginal relevance: pick ``k`` rows relevant to the query and diverse.

    Each pick maximises ``lambda_mult * relevance - (1 - lambda_mult) * redundancy``, where
    redundancy is the cosine to the closest row already picked (``"all"``, as in the MMR
    paper and LangChain) or to the row picked last (``"last"``, as in LlamaIndex). Ties go
    to the earlier candidate.
    """
    if len(candidates) == 0:
        return []
    unit = candidates / np.maximum(np.linalg.norm(candidates, axis=1, keepdims=True), 1e-12)
    q = query / max(float(np.linalg.norm(query)), 1e-12)
    relevance = unit @ q
    chosen: list[int] = [int(np.argmax(relevance))]
    while len(chosen) < min(k, len(candidates)):
        picked = unit[chosen] if redundancy == "all" else unit[chosen[-1:]]
        overlap = (unit @ picked.T).max(axis=1)
        objective = lambda_mult * relevance - (1 - lambda_mult) * overlap
        objective[chosen] = -np.inf
        chosen.append(int(np.argmax(objective)))
    return chosen


def rrf_fuse(rankings: Mapping[str, Sequence[str]], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal-rank fusion: ``sum(1 / (k + rank))`` over the channels an id appears in."""
    return weighted_fuse({name: (ranking, 1.0) for name, ranking in rankings.items()}, k)


def weighted_fuse(rankings: Mapping[str, tuple[Sequence[str], float]], k: int = RRF_K) -> dict[str, float]:
    """Weighted reciprocal-rank fusion: ``sum(weight / (k + rank))`` per channel."""
    scores: dict[str, float] = {}
    for ranking, weight in rankings.values():
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    return scores
