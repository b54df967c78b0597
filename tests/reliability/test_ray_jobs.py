"""Ray bulk jobs under failure: a killed worker loses and duplicates nothing; a failed job writes nothing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from lance_context import ContextRecord, ContextStore, EmbeddingError, StoreError
from lance_context.ray import ingest, reembed

from ..ray._embedders import AlwaysKillsItsWorker, FailsOn, KillsItsWorkerOnce
from . import scale
from .report import TALLY

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.filterwarnings("ignore:lance is not fork-safe:UserWarning"),
    pytest.mark.usefixtures("ray_cluster"),
]


def _items(count: int) -> list[dict[str, str]]:
    return [{"id": f"d{i}", "run_id": f"s{i % 5}", "text": f"document {i}"} for i in range(count)]


def test_a_killed_worker_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    count = scale.current().ray_records
    flag = tmp_path / "killed.flag"
    embedder = KillsItsWorkerOnce(16, f"document {count // 2}", str(flag))
    store = ContextStore.open(str(tmp_path / "s"), embedder=embedder)
    before = len(store.versions())

    ingest(_items(count), store, batch_size=max(100, count // 10), workers=2, progress=False)

    TALLY.add(crashes=1, crashes_mid_operation=1, writes_attempted=count)
    assert flag.exists(), "a worker was SIGKILLed mid-batch"
    found = Counter(r.id for r in store.records(with_vectors=False))
    lost = [f"d{i}" for i in range(count) if f"d{i}" not in found]
    duplicated = sum(n - 1 for n in found.values())
    TALLY.add(writes_committed=count - len(lost), writes_lost=len(lost), writes_duplicated=duplicated)
    assert lost == [] and duplicated == 0
    assert [v.operation for v in store.versions()[before:]].count("add") == 1, "one version holds them"
    for session in range(5):
        ids = [r.id for r in store.records(f"s{session}", with_vectors=False)]
        assert ids == [f"d{i}" for i in range(count) if i % 5 == session]
    store.add(ContextRecord.from_content("after the job", run_id="s0"))
    TALLY.add(crashes_survived=1)


def test_a_failed_job_leaves_the_store_at_its_previous_version(tmp_path: Path) -> None:
    count = scale.current().ray_records
    embedder = FailsOn(16, f"document {count - 3}", str(tmp_path / "failed.flag"))
    store = ContextStore.open(str(tmp_path / "s"), embedder=embedder)
    store.add(ContextRecord.from_content("already here", run_id="s0", id="here"))
    version, versions = store.version(), len(store.versions())

    with pytest.raises(EmbeddingError, match="the model broke"):
        ingest(_items(count), store, batch_size=max(100, count // 10), workers=2, progress=False)

    TALLY.add(writes_attempted=count, writes_refused=count)
    assert (tmp_path / "failed.flag").exists()
    assert store.version() == version and len(store.versions()) == versions
    reopened = ContextStore.open(str(tmp_path / "s"), embedder=embedder)
    assert [r.id for r in reopened.records()] == ["here"]
    TALLY.add(partial_batches=reopened.count() - 1)
    reopened.add(ContextRecord.from_content("the store still takes writes", run_id="s0"))
    assert reopened.count() == 2


def test_a_batch_whose_worker_always_dies_is_tried_max_retries_times_then_writes_nothing(
    tmp_path: Path,
) -> None:
    flag = tmp_path / "attempts"
    store = ContextStore.open(str(tmp_path / "s"), embedder=AlwaysKillsItsWorker(16, "document 7", str(flag)))
    store.add(ContextRecord.from_content("already here", run_id="s0", id="here"))
    version = store.version()

    with pytest.raises(StoreError, match="the Ray job failed .*nothing was written to the store"):
        ingest(_items(40), store, batch_size=10, workers=2, max_retries=1, progress=False)

    TALLY.add(writes_attempted=40, writes_refused=40, crashes=2, crashes_survived=2)
    assert flag.read_text() == "xx", "the first try and one retry, then the job gives up"
    assert store.version() == version
    assert [r.id for r in ContextStore.open(str(tmp_path / "s"), embedder=None).records()] == ["here"]


@pytest.mark.long_only  # 18 s; the killed ingest worker above stays in make test
def test_a_worker_killed_during_a_re_embed_changes_nothing_but_the_vectors(tmp_path: Path) -> None:
    count = scale.current().ray_records
    store = ContextStore.open(str(tmp_path / "s"), embedder=KillsItsWorkerOnce(16, "never", "unused"))
    for start in range(0, count, count // 4):
        store.add(
            [
                ContextRecord.from_content(f"document {i}", run_id="s", id=f"d{i}")
                for i in range(start, start + count // 4)
            ]
        )
    flag = tmp_path / "killed.flag"
    new = KillsItsWorkerOnce(8, f"document {count // 3}", str(flag))
    new.label = "test-hashing-8"

    reembed(store, new, rows_per_task=max(100, count // 8), workers=2, progress=False)

    TALLY.add(crashes=1, crashes_mid_operation=1)
    assert flag.exists()
    ids = [r.id for r in store.records("s")]
    assert ids == [f"d{i}" for i in range(count)]
    assert all(r.embedding is not None and r.embedding.shape == (8,) for r in store.records("s"))
    TALLY.add(crashes_survived=1)
