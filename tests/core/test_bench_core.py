"""Behaviour kept by the performance changes made for ``make bench``.

Interleaved bulk batches are stored grouped by session, caller vectors are checked as
one matrix, a bulk load far past the vector-index threshold is indexed by the first
search, and a handle finds newer versions with one manifest lookup.
"""

from __future__ import annotations

import lance
import numpy as np
import pytest

from lance_context import ContextRecord, ContextStore, EmbeddingError, IndexPolicy

DIM = 16


def vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = rng.normal(size=(n, DIM)).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def batch(n: int, sessions: int, seed: int = 0) -> list[ContextRecord]:
    vs = vectors(n, seed)
    return [
        ContextRecord(id=f"r{i}", run_id=f"s{i % sessions}", text_payload=f"m{i}", embedding=vs[i])
        for i in range(n)
    ]


def open_store(path: str, **kwargs: object) -> ContextStore:
    return ContextStore.open(path, embedder=None, dimension=DIM, **kwargs)  # type: ignore[arg-type]


def test_interleaved_batch_reads_back_in_append_order(store_path: str) -> None:
    store = open_store(store_path)
    store.add(batch(60, sessions=7))
    store.add(ContextRecord(id="late", run_id="s3", text_payload="x"))
    assert [r.id for r in store.records()] == [f"r{i}" for i in range(60)] + ["late"]
    assert [r.id for r in store.records("s3")] == [f"r{i}" for i in range(3, 60, 7)] + ["late"]
    assert [r.id for r in store.records("s3", last=2)] == ["r59", "late"]
    assert [r.text for r in store.records(limit=3, offset=1)] == ["m1", "m2", "m3"]


def test_vectors_checked_as_a_matrix_still_refuse_nan_and_write_nothing(store_path: str) -> None:
    store = open_store(store_path)
    records = batch(10, sessions=2)
    bad = records[4].embedding
    assert bad is not None
    bad[3] = np.nan
    with pytest.raises(EmbeddingError, match="r4"):
        store.add(records)
    assert store.count() == 0


def test_other_vector_inputs_still_go_through(store_path: str) -> None:
    store = open_store(store_path)
    vs = vectors(3)
    store.add(
        [ContextRecord(id=f"v{i}", run_id="s", embedding=vs[i].astype(np.float64).tolist()) for i in range(3)]
    )  # type: ignore[arg-type]
    back = store.get_many(["v0", "v1", "v2"])
    assert np.allclose(np.stack([r.embedding for r in back]), vs)  # type: ignore[misc]


def test_bulk_load_far_past_the_threshold_is_indexed_by_the_first_search(store_path: str) -> None:
    store = open_store(store_path, indexing=IndexPolicy(vector_index_min_rows=100, nprobes=32))
    records = batch(300, sessions=3)
    store.add(records)
    assert "embedding_idx" not in {
        i.name for i in lance.dataset(store_path).describe_indices()
    }  # the add stayed cheap
    query = vectors(1, seed=9)[0]
    reader = ContextStore.open(store_path, embedder=None, read_only=True)
    exact = [f"r{i}" for i in np.argsort(-(vectors(300) @ query))[:5]]
    assert [h.record.id for h in reader.search(query, k=5)] == exact  # read-only: exact, builds nothing
    assert "embedding_idx" not in {i.name for i in lance.dataset(store_path).describe_indices()}
    hits = store.search(query, k=5)
    assert "embedding_idx" in {i.name for i in lance.dataset(store_path).describe_indices()}
    assert [h.record.id for h in hits] == exact  # every partition probed, exact re-ranking
    assert hits[0].score == pytest.approx(float(vectors(300)[int(exact[0][1:])] @ query), abs=1e-5)


def test_the_write_that_crosses_the_threshold_builds_the_index(store_path: str) -> None:
    store = open_store(store_path, indexing=IndexPolicy(vector_index_min_rows=50))
    records = batch(50, sessions=2)
    store.add(records[:49])
    assert "embedding_idx" not in {i.name for i in lance.dataset(store_path).describe_indices()}
    store.add(records[49])
    assert "embedding_idx" in {i.name for i in lance.dataset(store_path).describe_indices()}


def test_a_second_handle_sees_new_versions_on_main_and_on_a_branch(store_path: str) -> None:
    writer = open_store(store_path)
    reader = ContextStore.open(store_path, embedder=None)
    assert reader.count() == 0
    for i in range(3):
        writer.add(ContextRecord(id=f"m{i}", run_id="s", text_payload="x"))
        assert reader.count() == i + 1
    writer.branch("side").add(ContextRecord(id="b0", run_id="s", text_payload="y"))
    side = ContextStore.open(store_path, embedder=None, branch="side")
    assert side.count() == 4
    writer.checkout_branch("side").add(ContextRecord(id="b1", run_id="s", text_payload="z"))
    assert [r.id for r in side.records()][-2:] == ["b0", "b1"]
    assert reader.count() == 3
