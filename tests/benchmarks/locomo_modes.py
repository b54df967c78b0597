"""The searches the LoCoMo benchmark compares: the store as on main, and the new design.

The store rows run the real ``ContextStore`` on ``Speaker: text`` records. The new
design (an indexed text per record, fused channels, recall) runs on a Lance dataset
laid out as the store will be (:class:`IndexedTurns`) until the core has it;
:func:`recall_through_store` is where the integrated store takes over.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import lance
import pyarrow as pa
from lance.query import MatchQuery
from locomo_data import Question, Split, Turn, chat_turn, parse_when

from lance_context import ContextRecord, ContextStore, SentenceTransformerEmbedder
from lance_context._fusion import FusionOptions, fuse
from lance_context._index_text import ChatIndexing
from lance_context._recall import RecallOptions, rank_for_recall, with_neighbours

Ranking = list[str]
Hits = list[tuple[str, float]]
Search = Callable[[Question], Ranking]


# ---------------------------------------------------------------------- the store as on main
def store_records(turns: Sequence[Turn]) -> list[ContextRecord]:
    """Records of one conversation as a new user would store them: ``Speaker: text``."""
    first = turns[0].speaker
    return [
        ContextRecord(
            run_id=f"conv-{t.conversation}",
            role="user" if t.speaker == first else "assistant",
            text_payload=f"{t.speaker}: {t.text}",
            metadata={"dia_id": t.dia_id, "speaker": t.speaker},
        )
        for t in turns
    ]


def build_store(path: str, split: Split) -> tuple[ContextStore, float]:
    """The store with every conversation, and the seconds its adds took (model included)."""
    store = ContextStore.open(path, embedder=SentenceTransformerEmbedder())
    start = time.perf_counter()
    for turns in split.turns.values():
        store.add(store_records(turns))
    return store, time.perf_counter() - start


def store_search(store: ContextStore, mode: str) -> Search:
    def search(q: Question) -> Ranking:
        hits = store.search(q.text, k=10, mode=mode, run_id=f"conv-{q.conversation}")  # type: ignore[arg-type]
        return [h.record.metadata["dia_id"] for h in hits]

    return search


def chat_records(turns: Sequence[Turn]) -> list[ContextRecord]:
    """Records as a chat adapter will write them once the core has an indexed text:
    the message as it was said, the speaker's name, the session time and the caption."""
    first = turns[0].speaker
    return [
        ContextRecord(
            run_id=f"conv-{t.conversation}",
            role="user" if t.speaker == first else "assistant",
            text_payload=t.text,
            created_at=(parse_when(t.when) or datetime(2000, 1, 1)).replace(tzinfo=timezone.utc),
            metadata={"dia_id": t.dia_id, "speaker": t.speaker, "caption": t.caption},
        )
        for t in turns
    ]


def recall_through_store(path: str, split: Split) -> Search | None:
    """THE HOOK FOR THE INTEGRATED CORE: the recall path through the real store.

    Returns None while ``ContextStore`` has no ``recall`` (the benchmark then reports
    the emulation, :class:`IndexedTurns`, alone). Once it has one: open the store with
    the chat indexing (``ChatIndexing()``: speaker from ``metadata["speaker"]``, time
    from ``created_at``, caption from ``metadata["caption"]``; adjust the keyword to
    the core's), add :func:`chat_records`, and ask ``recall`` for 10 turns without
    neighbours, so the rows compare with the emulation's ``recall*`` row.
    """
    if not hasattr(ContextStore, "recall"):
        return None
    store = ContextStore.open(path, embedder=SentenceTransformerEmbedder())  # + the chat indexing option
    for turns in split.turns.values():
        store.add(chat_records(turns))

    def search(q: Question) -> Ranking:
        hits = store.recall(q.text, k=10, run_id=f"conv-{q.conversation}", neighbours=0)  # type: ignore[attr-defined]
        return [h.record.metadata["dia_id"] for h in hits]

    return search


# ---------------------------------------------------------------------- the new design, emulated
@dataclass
class IndexedTurns:
    """Records with an indexed text, in a Lance dataset laid out as the store will be.

    ``indexed_text`` holds the full-text channel's text and ``embedding`` the vector
    of the short embedded text (both from :class:`ChatIndexing`); the stored
    message is not needed for ranking. Vector search is Lance's exact
    prefiltered search (as the store does below its index threshold) and text search
    Lance BM25 with the store's default INVERTED options.
    """

    ds: lance.LanceDataset
    embedder: SentenceTransformerEmbedder
    order: dict[str, list[str]]
    fusion: FusionOptions
    write_seconds: float
    recall: RecallOptions = field(default_factory=RecallOptions)

    @classmethod
    def build(cls, path: str, split: Split, indexing: ChatIndexing | None = None) -> IndexedTurns:
        indexing = indexing or ChatIndexing()
        embedder = SentenceTransformerEmbedder()
        start = time.perf_counter()
        tables = []
        for name, turns in split.turns.items():
            texts, embedded = indexing.texts([chat_turn(t) for t in turns])
            vectors = embedder.embed_texts(embedded)
            tables.append(
                pa.table(
                    {
                        "id": [t.dia_id for t in turns],
                        "run_id": [f"conv-{name}"] * len(turns),
                        "indexed_text": pa.array(texts, pa.large_string()),
                        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), 384),
                    }
                )
            )
        seconds = time.perf_counter() - start
        shutil.rmtree(path, ignore_errors=True)
        ds = lance.write_dataset(pa.concat_tables(tables), path)
        ds.create_scalar_index("run_id", "BITMAP")
        ds.create_scalar_index("indexed_text", "INVERTED")
        order = {f"conv-{c}": [t.dia_id for t in ts] for c, ts in split.turns.items()}
        return cls(ds, embedder, order, FusionOptions(), seconds)

    def channels(self, q: Question, which: Sequence[str] = ("vector", "text")) -> dict[str, Hits]:
        """The chosen channels' top ``depth`` for the question (query embedding included)."""
        where, depth = f"run_id = 'conv-{q.conversation}'", self.fusion.depth
        out: dict[str, Hits] = {}
        if "vector" in which:
            out["vector"] = self._vector(q.text, where, depth)
        if "text" in which:
            out["text"] = self._text(q.text, where, depth)
        return out

    def _vector(self, query: str, where: str, depth: int) -> Hits:
        vector = self.embedder.embed_texts([query])[0]
        near = self.ds.to_table(
            nearest={"column": "embedding", "q": vector, "k": depth, "metric": "cosine"},
            filter=where,
            prefilter=True,
            columns=["id", "_distance"],
        )
        return [(i, 1.0 - d) for i, d in zip(near["id"].to_pylist(), near["_distance"].to_pylist())]

    def _text(self, query: str, where: str, depth: int) -> Hits:
        text = self.ds.to_table(
            full_text_query=MatchQuery(query, "indexed_text"),
            filter=where,
            prefilter=True,
            limit=depth,
            columns=["id", "_score"],
        )
        return list(zip(text["id"].to_pylist(), text["_score"].to_pylist()))

    def search(self, mode: str) -> Search:
        def one(q: Question) -> Ranking:
            got = self.channels(q, (mode,) if mode in ("vector", "text") else ("vector", "text"))
            if mode in ("vector", "text"):
                return [key for key, _ in got[mode][:10]]
            if mode == "recall":
                order = self.order[f"conv-{q.conversation}"]
                return [key for key, _ in rank_for_recall(got, order, self.recall).ranked(10)]
            return [key for key, _ in fuse(got, self.fusion).ranked(10)]

        return one

    def with_neighbours(self, q: Question, ranking: Ranking, matches: int) -> Ranking:
        """The first ``matches`` matches, each with the turn before and after it."""
        order = self.order[f"conv-{q.conversation}"]
        groups = with_neighbours([(key, 0.0) for key in ranking], order, matches)
        return [turn for group in groups for turn in group.turns]
