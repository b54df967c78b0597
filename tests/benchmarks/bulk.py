"""Bulk add (target 5): 100,000 records with precomputed embeddings, and a smaller
batch through the real default embedder, where the store's share of the time is measured."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import lance
import numpy as np
import pyarrow as pa
from common import Bench, Row, check, p50, time_once
from data import Corpus, corpus, texts
from writes import open_store, raw_rows, records, schema_of

from lance_context import ContextRecord, ContextStore, SentenceTransformerEmbedder


@dataclass
class Loaded:
    """The large store the read workloads run on, and the corpus it was built from."""

    store: ContextStore
    data: Corpus
    ids: list[str]


def bulk_add(bench: Bench) -> Loaded:
    """Throughput of one ``add()`` of N records (fresh store each run); the last store is kept."""
    total = bench.size(100_000, 50_000)
    runs = bench.size(3, 1)
    data = corpus(total, sessions=total // 100, seed=1)
    seconds, store, batch = [], None, []
    for run in range(runs):
        batch = records(data, 0, total)
        store = open_store(bench.path(f"bulk-{run}"))
        seconds.append(time_once(lambda s=store, b=batch: s.add(b)))
    assert store is not None
    raw = _raw_bulk(bench, data, schema_of(store))
    row = Row(
        f"bulk add of {total:,} records, precomputed embeddings",
        total / p50(seconds),
        "rec/s",
        "raw pylance write_dataset (from rows)",
        total / raw,
        target="5",
        goal="≥ 50,000 rec/s",
    )
    bench.add(check(row, row.ours is not None and row.ours >= 50_000))
    return Loaded(store, data, [r.id for r in batch])


def _raw_bulk(bench: Bench, data: Corpus, schema: pa.Schema) -> float:
    """Seconds raw pylance takes to write the same rows (built from Python values, as ours are)."""
    rows = raw_rows(data, 0, len(data))
    path = bench.path("raw-bulk")
    return time_once(lambda: lance.write_dataset(pa.Table.from_pylist(rows, schema=schema), path))


class _TimedEmbedder:
    """Delegates to the real default embedder and adds up the seconds spent inside it."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner = inner
        self.seconds = 0.0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_texts(self, batch: Sequence[str]) -> np.ndarray:
        start = time.perf_counter()
        try:
            return self.inner.embed_texts(batch)
        finally:
            self.seconds += time.perf_counter() - start


def model_add(bench: Bench) -> None:
    """Share of an embedding add spent outside the default model: one bulk add, then
    (information) one-message adds, where a single short text is embedded per call."""
    total = bench.size(2_000, 500)
    embedder = _TimedEmbedder(SentenceTransformerEmbedder())
    embedder.embed_texts(["warm up the model"] * 8)  # loading the weights is not the store's cost
    store = ContextStore.open(bench.path("model"), embedder=embedder)
    batch = [ContextRecord(run_id=f"s{i % 20}", text_payload=t) for i, t in enumerate(texts(total, seed=5))]
    embedder.seconds = 0.0
    seconds = time_once(lambda: store.add(batch))
    outside = 100 * (seconds - embedder.seconds) / seconds
    row = Row(
        f"bulk add of {total:,} texts with the default embedder: time outside the model",
        outside,
        "%",
        goal="≤ 10 %",
        target="5",
        note=f"{total / seconds:,.0f} rec/s, model {embedder.seconds:.1f} s",
    )
    bench.add(check(row, outside <= 10))
    singles = [ContextRecord(run_id="s", text_payload=t) for t in texts(bench.size(100, 40), seed=6)]
    embedder.seconds = 0.0
    each = [time_once(lambda r=r: store.add(r)) for r in singles]
    share = 100 * (sum(each) - embedder.seconds) / sum(each)
    bench.add(
        Row(
            "one-message add with the default embedder: time outside the model",
            share,
            "%",
            note=f"p50 {1000 * p50(each):.1f} ms per add",
        )
    )
