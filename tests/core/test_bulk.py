"""The distributed-write seam without any engine: plan, write parts, commit once."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from lance_context import (
    CommitConflictError,
    ContextRecord,
    ContextStore,
    EmbeddingError,
    HashingEmbedder,
    InvalidRecordError,
    ReadOnlyVersionError,
)
from lance_context.adapters import BulkWorker


def _records(start: int, stop: int, run_id: str = "s") -> list[ContextRecord]:
    return [ContextRecord.from_content(f"text {i}", run_id=run_id, id=f"r{i}") for i in range(start, stop)]


def test_parts_are_invisible_until_one_commit_in_input_order(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s"), embedder=HashingEmbedder(8))
    store.add(ContextRecord.from_content("first", run_id="s", id="first"))
    writer = store.bulk()
    plan = pickle.loads(pickle.dumps(writer.plan()))  # it travels to workers
    late = BulkWorker(plan).write(_records(5, 10), range(5, 10))  # workers finish in any order
    early = BulkWorker(plan).write(_records(0, 5), range(0, 5))
    before = store.version()
    assert store.count() == 1 and store.version() == before, "nothing visible before the commit"

    version = writer.commit(plan, [pickle.loads(pickle.dumps(late)), early])

    assert version == before + 1 and store.versions()[-1].operation == "add"
    assert [r.id for r in store.records("s")] == ["first"] + [f"r{i}" for i in range(10)]
    assert np.allclose(store.get("r3").embedding, HashingEmbedder(8).embed_texts(["text 3"])[0])  # type: ignore[union-attr,arg-type]
    assert store.changes_between(before, version).sessions == frozenset({"s"})  # type: ignore[union-attr]


def test_a_worker_refuses_what_add_refuses(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s"), embedder=HashingEmbedder(8))
    worker = BulkWorker(store.bulk().plan())
    with pytest.raises(InvalidRecordError):
        worker.write([ContextRecord(run_id="", text_payload="no session")], [0])
    with pytest.raises(EmbeddingError):
        worker.write([ContextRecord(run_id="s", text_payload="x", embedding=np.ones(3, np.float32))], [0])
    with pytest.raises(ValueError, match="positions"):
        worker.write(_records(0, 2), [0])


def test_an_id_in_two_parts_commits_nothing(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s"), embedder=None)
    writer = store.bulk()
    plan = writer.plan()
    parts = [
        BulkWorker(plan).write(_records(0, 3), range(3)),
        BulkWorker(plan).write(_records(2, 4), range(3, 5)),
    ]
    with pytest.raises(InvalidRecordError, match="'r2' appears twice"):
        writer.commit(plan, parts)
    assert store.count() == 0


def test_a_pinned_store_cannot_plan(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s"), embedder=None)
    store.add(_records(0, 1))
    store.checkout(store.version())
    with pytest.raises(ReadOnlyVersionError):
        store.bulk().plan()


def test_a_rewrite_conflicts_with_a_commit_made_meanwhile(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s"), embedder=HashingEmbedder(8))
    store.add(_records(0, 19))
    store.add(ContextRecord.from_content("the message", run_id="s", id="r19", embed_text="what is embedded"))
    writer = store.bulk()
    plan = writer.plan_reembed(HashingEmbedder(4), rows_per_slice=7)
    assert [s.limit for s in plan.slices] == [7, 7, 5, 1]
    parts = [BulkWorker(plan).rewrite(s) for s in plan.slices]
    store.add(ContextRecord.from_content("meanwhile", run_id="s", id="meanwhile"))
    with pytest.raises(CommitConflictError):
        writer.commit_reembed(plan, parts)
    assert store.dimension == 8 and store.get("meanwhile") is not None, "nothing was lost"

    again = writer.plan_reembed(HashingEmbedder(4), rows_per_slice=7)
    reused = {s.key for s in plan.slices} & {s.key for s in again.slices}
    assert len(reused) == 4, "the unchanged slices can reuse their parts"
    version = writer.commit_reembed(again, [BulkWorker(again).rewrite(s) for s in again.slices])
    assert store.dimension == 4 and store.get("meanwhile").embedding.shape == (4,)  # type: ignore[union-attr]
    assert store.at_version(version - 1).get("r1").embedding.shape == (8,)  # type: ignore[union-attr]
    hinted = HashingEmbedder(4).embed_texts(["what is embedded"])[0]
    assert np.allclose(store.get("r19").embedding, hinted)  # type: ignore[union-attr,arg-type]


def test_a_job_overtaken_by_a_restore_or_re_embed_commits_nothing(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s"), embedder=HashingEmbedder(8))
    store.add(_records(0, 3))
    writer = store.bulk()
    plan = writer.plan()
    part = BulkWorker(plan).write(_records(3, 6), range(3))
    store.reembed(HashingEmbedder(4))  # vectors of another size: the part no longer fits
    with pytest.raises(CommitConflictError, match="run the job again"):
        writer.commit(plan, [part])
    assert store.count() == 3 and store.dimension == 4


def test_committing_the_same_parts_again_writes_nothing(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s"), embedder=None)
    writer = store.bulk()
    plan = writer.plan()
    parts = [BulkWorker(plan).write(_records(0, 3), range(3))]
    first = writer.commit(plan, parts)
    store.add(ContextRecord.from_content("meanwhile", run_id="s", id="later"))

    again = writer.commit(plan, [pickle.loads(pickle.dumps(p)) for p in parts])  # a retried driver

    assert again == first
    assert [r.id for r in store.records("s")] == ["r0", "r1", "r2", "later"]


def test_a_part_committed_already_is_refused_in_another_job(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s"), embedder=None)
    writer = store.bulk()
    plan = writer.plan()
    first = BulkWorker(plan).write(_records(0, 2), range(2))
    second = BulkWorker(plan).write(_records(2, 4), range(2, 4))
    writer.commit(plan, [first])
    version = store.version()

    with pytest.raises(InvalidRecordError, match="committed already"):
        writer.commit(plan, [first, second])

    assert store.version() == version and store.count() == 2
    writer.commit(plan, [second])
    assert [r.id for r in store.records("s")] == ["r0", "r1", "r2", "r3"]
