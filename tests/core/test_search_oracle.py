"""Search and reads compared with a brute-force oracle on small randomized stores.

The oracle is numpy cosine over the very vectors stored and plain-Python filtering of
the records the store should hold (after deletes, moves between sessions and copies of
one id); the stores are laid out in many fragments, compacted, or vector-indexed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from lance_context import (
    CachePolicy,
    CompactionPolicy,
    ContextRecord,
    ContextStore,
    HashingEmbedder,
    IndexPolicy,
    InvalidFilterError,
    SearchError,
)
from lance_context._fusion import FusionOptions
from lance_context._recall import RecallOptions

BASE = datetime(2025, 1, 1, tzinfo=timezone.utc)
DIM = 8
Pred = Callable[[ContextRecord], bool]


def _randomized_store(path: str, seed: int, layout: str) -> tuple[ContextStore, dict[str, ContextRecord]]:
    """A store of 3 sessions with zero vectors, deletes and moves; ``live``: what it should hold."""
    rng = np.random.default_rng(seed)
    indexing = IndexPolicy(scalar_refresh_rows=8, vector_index_min_rows=24 if layout == "indexed" else 10**9)
    compaction = CompactionPolicy(enabled=layout != "fragments")
    store = ContextStore.open(path, embedder=None, dimension=DIM, indexing=indexing, compaction=compaction)
    live: dict[str, ContextRecord] = {}
    for i in range(40):
        vector = np.zeros(DIM, np.float32) if i % 9 == 4 else rng.normal(size=DIM).astype(np.float32)
        record = ContextRecord(
            run_id=f"s{i % 3}",
            id=f"r{i}",
            role=("user", "assistant")[i % 2],
            created_at=BASE + timedelta(seconds=i),
            text_payload=f"note {i}",
            embedding=vector,
            metadata={
                "n": i % 5,
                "flag": bool(i % 2),
                "o": {"k": [i % 3]},
                "q": 'it\'s "é"' if i % 4 else None,
            },
        )
        store.add(record)  # one fragment per add
        live[record.id] = record
    for i in range(0, 40, 7):
        store.delete(f"r{i}")
        del live[f"r{i}"]
    for i in range(3, 40, 10):
        old = live[f"r{i}"]
        moved = ContextRecord(
            run_id="s0" if old.run_id != "s0" else "s1",
            id=old.id,
            role=old.role,
            created_at=old.created_at,
            text_payload=old.text_payload,
            embedding=rng.normal(size=DIM).astype(np.float32),
            metadata=old.metadata,
        )
        store.upsert(moved)
        live[old.id] = moved
    if layout == "compacted":
        store.compact()
    return store, live


FILTERS: list[tuple[dict[str, Any], Pred]] = [
    ({}, lambda r: True),
    ({"run_id": "s1"}, lambda r: r.run_id == "s1"),
    ({"roles": "assistant", "run_id": "s0"}, lambda r: r.role == "assistant" and r.run_id == "s0"),
    ({"where": {"flag": True}}, lambda r: r.metadata["flag"] is True),
    ({"where": {("metadata", "o", "k"): {"$contains": 1}}}, lambda r: 1 in r.metadata["o"]["k"]),
    ({"where": {"q": 'it\'s "é"'}}, lambda r: r.metadata["q"] == 'it\'s "é"'),
    ({"where": {"q": None}}, lambda r: r.metadata["q"] is None),
    (
        {"since": BASE + timedelta(seconds=10), "until": BASE + timedelta(seconds=30)},
        lambda r: BASE + timedelta(seconds=10) <= r.created_at < BASE + timedelta(seconds=30),
    ),
    ({"run_id": "nobody"}, lambda r: False),
]


def _oracle(live: dict[str, ContextRecord], query: np.ndarray, k: int, keep: Pred) -> list[float]:
    """The top-k cosine similarities; a vector without a direction (all zeros) never ranks."""
    scores = []
    for record in live.values():
        vector = record.embedding
        if keep(record) and vector is not None and np.any(vector):
            scores.append(float(vector @ query / (np.linalg.norm(vector) * np.linalg.norm(query))))
    return sorted(scores, reverse=True)[:k]


@pytest.mark.parametrize("layout", ["fragments", "compacted", "indexed"])
def test_vector_search_agrees_with_a_numpy_oracle(tmp_path: Any, layout: str) -> None:
    store, live = _randomized_store(str(tmp_path / "s.lance"), 11, layout)
    rng = np.random.default_rng(5)
    for query in (rng.normal(size=DIM).astype(np.float32), live["r5"].embedding):
        assert query is not None
        for kwargs, keep in FILTERS:
            for k in (1, 4, 100):
                hits = store.search(query, k=k, **kwargs)
                expected = _oracle(live, query, k, keep)
                assert [h.score for h in hits] == pytest.approx(expected, abs=1e-4), (kwargs, k)
                for hit in hits:  # filtered before the top-k, never a deleted or moved-away copy
                    assert hit.record.id in live and keep(live[hit.record.id]), (kwargs, hit.record.id)
                    assert hit.record.run_id == live[hit.record.id].run_id


def test_a_zero_vector_ranks_the_same_filtered_or_not(tmp_path: Any) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=None, dimension=4)
    vectors = {"zero": [0, 0, 0, 0], "same": [1, 0, 0, 0], "opposite": [-1, 0, 0, 0]}
    store.add(
        [ContextRecord(run_id="a", id=i, embedding=np.array(v, np.float32)) for i, v in vectors.items()]
    )
    query = np.array([1, 0, 0, 0], np.float32)
    for mmr in (False, True):
        unfiltered = [h.record.id for h in store.search(query, k=5, mmr=mmr)]
        filtered = [h.record.id for h in store.search(query, k=5, mmr=mmr, run_id="a")]
        assert unfiltered == filtered == ["same", "opposite"], mmr
    for kwargs in ({}, {"run_id": "a"}, {"mmr": True}):
        with pytest.raises(SearchError, match="all zeros"):
            store.search([0.0] * 4, **kwargs)


def test_mmr_hybrid_and_recall_return_k_records_when_an_id_is_stored_many_times(tmp_path: Any) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16))
    for i in range(6):  # add(), not upsert(): six stored copies of one id
        store.add(ContextRecord(run_id="a", id="dup", text_payload=f"kyoto temple visit {i}"))
    store.add([ContextRecord(run_id="a", id=f"o{i}", text_payload=f"kyoto food {i}") for i in range(3)])
    query = "kyoto temple visit"
    for kwargs in (
        {"mmr": True},
        {"mmr": True, "fetch_k": 3, "run_id": "a"},
        {"mode": "hybrid", "fetch_k": 3},
        {"mode": "hybrid", "fusion": FusionOptions(depth=2), "run_id": "a"},
    ):
        ids = [h.record.id for h in store.search(query, k=3, **kwargs)]
        assert len(ids) == 3 and len(set(ids)) == 3 and "dup" in ids, kwargs
    recalled = store.recall(query, run_id="a", k=3, options=RecallOptions(fusion=FusionOptions(depth=3)))
    assert len(recalled) == 3 and recalled[0].match.id == "dup"


def test_text_and_hybrid_search_keep_to_filters_and_count(tmp_path: Any) -> None:
    """Exact-token text queries: the matches are known, so is how many a search must return."""
    rng = random.Random(3)
    words = ["alpha", "bravo", "charlie", "delta", "echo"]
    indexing = IndexPolicy(scalar_refresh_rows=16)
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16), indexing=indexing)
    live: dict[str, ContextRecord] = {}
    for i in range(36):
        record = ContextRecord(run_id=f"s{i % 3}", id=f"r{i}", text_payload=" ".join(rng.sample(words, 2)))
        store.add(record)
        live[record.id] = record
    for i in range(0, 36, 5):
        store.delete(f"r{i}")
        del live[f"r{i}"]
    for i in range(1, 36, 8):
        moved = ContextRecord(run_id="s2", id=f"r{i}", text_payload=" ".join(rng.sample(words, 2)))
        store.upsert(moved)
        live[moved.id] = moved
    for word in words[:3]:
        for run_id in (None, "s0", "s2", "nobody"):
            allowed = {key for key, r in live.items() if run_id is None or r.run_id == run_id}
            matching = {key for key in allowed if word in live[key].text_payload.split()}  # type: ignore[union-attr]
            for k in (1, 3, 50):
                text = [h.record.id for h in store.search(word, k=k, mode="text", run_id=run_id)]
                assert len(text) == min(k, len(matching)) and set(text) <= matching, (word, run_id, k)
                hybrid = store.search(word, k=k, mode="hybrid", run_id=run_id)
                ids = [h.record.id for h in hybrid]
                assert len(ids) == len(set(ids)) == min(k, len(allowed)) and set(ids) <= allowed
                assert [h.score for h in hybrid] == sorted((h.score for h in hybrid), reverse=True)
                assert all(h.record.text == live[h.record.id].text_payload for h in hybrid)


def test_the_tail_cache_shows_an_id_added_again_once_as_a_fresh_read_does(tmp_path: Any) -> None:
    path = str(tmp_path / "s.lance")
    cached = ContextStore.open(path, embedder=None)
    fresh = ContextStore.open(path, embedder=None, caches=CachePolicy(tail_sessions=0))
    cached.add([ContextRecord(run_id="a", id=f"r{i}", text_payload=f"t{i}") for i in range(3)])
    assert [r.id for r in cached.records("a", last=5)] == ["r0", "r1", "r2"]  # now cached
    assert [r.id for r in cached.records("a", limit=2)] == ["r0", "r1"]
    cached.add(ContextRecord(run_id="a", id="r1", text_payload="t1 again"))  # add(): a second copy
    for read in (lambda s: s.records("a", last=5), lambda s: s.records("a", limit=3)):
        assert [(r.id, r.text) for r in read(cached)] == [(r.id, r.text) for r in read(fresh)]
    assert [r.id for r in cached.records("a", last=5)] == ["r0", "r2", "r1"]


def test_bad_arguments_get_specific_errors(tmp_path: Any) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(8))
    store.add(ContextRecord(run_id="a", id="x1", text_payload="hello"))
    with pytest.raises(SearchError, match="options takes a RecallOptions"):
        store.recall("hello", options={"k": 3})  # type: ignore[arg-type]
    with pytest.raises(InvalidFilterError, match="iterable of ids"):
        store.get_many("x1")
    with pytest.raises(InvalidFilterError, match="iterable of ids"):
        store.get_many(None)  # type: ignore[arg-type]
    assert [r.id for r in store.get_many(["x1", "x1", "missing"])] == ["x1"]
