"""Building blocks for the LoCoMo recall research: channels emulated outside the store.

The store does not yet hold a separate "indexed text" per record, so the research
emulates it: the vector channel is exact cosine over MiniLM embeddings of the indexed
text (numpy; the store's flat search gives the same ranking, see issue 19), and the
text channel is Lance's own BM25 over a Lance dataset of the indexed texts, with the
full-text index options under test, prefiltered by conversation exactly as the store
prefilters by session. Embeddings are cached under ``.bench/locomo-cache``.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lance
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from lance.query import MatchQuery
from locomo_data import REPO, Split, Turn

Matrix = npt.NDArray[np.float32]
CACHE = REPO / ".bench" / "locomo-cache"


_MODEL: list[Any] = []


def model() -> Any:
    """The default embedder's model (bundled MiniLM), loaded once."""
    if not _MODEL:
        from lance_context import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder()
        _MODEL.append(embedder)
    return _MODEL[0]


def embed(texts: Sequence[str]) -> Matrix:
    """MiniLM embeddings of ``texts`` (normalised), cached on disk by content."""
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:24]
    path = CACHE / f"{digest}.npy"
    if path.exists():
        cached: Matrix = np.load(path)
        return cached
    CACHE.mkdir(parents=True, exist_ok=True)
    vectors = model().embed_texts(list(texts))
    np.save(path, vectors)
    return np.asarray(vectors, dtype=np.float32)


TurnText = Callable[[list[Turn], int], str]


def texts_of(split: Split, make: TurnText) -> dict[str, list[str]]:
    """The indexed text of every turn, per conversation."""
    return {c: [make(turns, i) for i in range(len(turns))] for c, turns in split.turns.items()}


@dataclass
class VectorChannel:
    """Exact cosine of each question against every turn of its conversation."""

    doc: dict[str, Matrix]

    @classmethod
    def build(cls, texts: dict[str, list[str]]) -> VectorChannel:
        return cls({c: embed(t) for c, t in texts.items()})

    def scores(self, conversation: str, query: Matrix) -> Matrix:
        out: Matrix = self.doc[conversation] @ query
        return out


class TextChannel:
    """Lance BM25 over one dataset of all conversations' indexed texts."""

    def __init__(self, texts: dict[str, list[str]], path: Path, **fts: Any) -> None:
        rows = [(c, i, t) for c, ts in texts.items() for i, t in enumerate(ts)]
        table = pa.table(
            {
                "conv": pa.array([r[0] for r in rows]),
                "pos": pa.array([r[1] for r in rows], pa.int32()),
                "text": pa.array([r[2] for r in rows], pa.large_string()),
            }
        )
        shutil.rmtree(path, ignore_errors=True)
        self.ds = lance.write_dataset(table, str(path))
        self.ds.create_scalar_index("conv", "BITMAP")
        self.ds.create_scalar_index("text", "INVERTED", **fts)
        self.sizes = {c: len(ts) for c, ts in texts.items()}

    def scores(self, conversation: str, query: str, depth: int = 100) -> Matrix:
        """BM25 score of each turn of the conversation (0 where not in the top ``depth``)."""
        out = np.zeros(self.sizes[conversation], dtype=np.float32)
        if not query.strip():
            return out
        table = self.ds.to_table(
            full_text_query=MatchQuery(query, "text"),
            filter=f"conv = '{conversation}'",
            prefilter=True,
            limit=depth,
            columns=["pos", "_score"],
        )
        out[np.asarray(table.column("pos"))] = np.asarray(table.column("_score"), dtype=np.float32)
        return out


# ---------------------------------------------------------------------- dense fusions
def rank_of(scores: Matrix, depth: int | None = None, present: npt.NDArray[np.bool_] | None = None) -> Matrix:
    """1-based rank of each entry by descending score (inf beyond depth or where absent)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float32)
    ranks[order] = np.arange(1, len(scores) + 1, dtype=np.float32)
    if depth is not None:
        ranks[ranks > depth] = np.inf
    if present is not None:
        ranks[~present] = np.inf
    return ranks


def top(scores: Matrix, k: int) -> list[int]:
    """Positions of the ``k`` best scores (stable: earlier turn first on ties)."""
    return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]
