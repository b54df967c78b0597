"""``lance_context.ray.reembed``: the new vectors as one version; concurrent appends re-embedded, not lost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder
from lance_context.ray import reembed

from ._embedders import AppendsMeanwhile

pytestmark = [
    pytest.mark.filterwarnings("ignore:lance is not fork-safe:UserWarning"),
    pytest.mark.usefixtures("ray_cluster"),
]


def _store(path: Path, batches: int, size: int) -> ContextStore:
    store = ContextStore.open(str(path), embedder=HashingEmbedder(16))
    for b in range(batches):
        store.add(
            [
                ContextRecord.from_content(f"note {b}-{i}", run_id=f"s{i % 3}", id=f"n{b}-{i}")
                for i in range(size)
            ]
        )
    store.add(ContextRecord.from_content(b"\x00raw bytes", run_id="s0", id="no-text"))
    return store


def test_switching_models_lands_as_one_version_and_keeps_the_past(tmp_path: Path) -> None:
    store = _store(tmp_path / "s", batches=4, size=300)
    order = {s: [r.id for r in store.records(s, with_vectors=False)] for s in ("s0", "s1", "s2")}
    before = store.version()

    version = reembed(store, HashingEmbedder(8), rows_per_task=250, workers=2, progress=False)

    made = {v.version: v.operation for v in store.versions()}
    assert version == before + 1 and made[version] == "reembed"
    assert set(list(made.values())[before:]) <= {"reembed", "index"}, "then only index upkeep"
    assert store.dimension == 8 and store.count() == 1_201
    assert {s: [r.id for r in store.records(s, with_vectors=False)] for s in order} == order
    record = store.get("n2-17")
    assert record is not None and record.embedding is not None and record.embedding.shape == (8,)
    assert np.allclose(record.embedding, HashingEmbedder(8).embed_texts(["note 2-17"])[0])
    assert store.get("no-text").embedding is None  # type: ignore[union-attr]
    old = store.at_version(before).get("n2-17")
    assert old is not None and old.embedding is not None and old.embedding.shape == (16,)
    best = store.search("note 2-17", k=1)[0]  # searched with the new model: an exact match
    assert best.vector_distance == pytest.approx(0, abs=1e-5)
    reopened = ContextStore.open(str(tmp_path / "s"), embedder=HashingEmbedder(8))
    assert reopened.dimension == 8


def test_a_record_appended_during_the_job_is_re_embedded_too(tmp_path: Path) -> None:
    uri = str(tmp_path / "s")
    store = _store(tmp_path / "s", batches=2, size=200)
    embedder = AppendsMeanwhile(8, "", str(tmp_path / "appended.flag"), uri, "late")

    reembed(store, embedder, rows_per_task=150, workers=2, progress=False)

    assert (tmp_path / "appended.flag").exists(), "another writer appended during the job"
    late = store.get("late")
    assert late is not None and late.embedding is not None and late.embedding.shape == (8,)
    assert store.count() == 402
    operations = [v.operation for v in store.versions()]
    assert operations.count("reembed") == 1
