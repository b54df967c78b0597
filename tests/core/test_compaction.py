"""Automatic tiered compaction keeps fragment count and bytes written bounded."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import lance
import pytest

from lance_context import CompactionPolicy, ContextStore, HashingEmbedder
from lance_context._known import Facts
from lance_context._maintenance import compaction_target
from lance_context._writer import SEQ_SHIFT

from .conftest import text


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([1] * 3, None),  # fewer than fanout fragments
        ([1] * 4, 4),  # four level-0 fragments -> merge to 4 rows
        ([4, 4, 4, 1], None),  # no level has 4 adjacent small fragments
        ([4, 4, 4, 4], 16),  # four level-1 fragments -> level 2
        ([16, 4, 4, 1, 1], None),
        ([4, 100, 4, 4, 4], None),  # only adjacent fragments can merge
        ([64, 16, 16, 16, 4, 4, 4, 1, 1, 1, 1], 4),  # the smallest due level goes first
    ],
)
def test_compaction_target(rows: list[int], expected: int | None) -> None:
    assert compaction_target(rows, CompactionPolicy(fanout=4)) == expected


def test_target_is_capped() -> None:
    policy = CompactionPolicy(fanout=4, max_rows_per_fragment=10)
    assert compaction_target([4, 4, 4, 4], policy) is None
    assert compaction_target([1, 1, 1, 1], policy) == 4


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="fanout"):
        CompactionPolicy(fanout=1)


def fragments(store: ContextStore) -> list[int]:
    return [f.metadata.physical_rows for f in lance.dataset(store.uri).get_fragments()]


def test_one_row_appends_stay_few_fragments(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=HashingEmbedder(8), compaction=CompactionPolicy(fanout=4))
    for i in range(150):
        store.add(text(f"m{i}", id=f"id{i:03d}"))
    rows = fragments(store)
    assert sum(rows) == 150
    assert len(rows) <= 4 * 4  # fanout * levels, far below 150
    assert [r.id for r in store.records()] == [f"id{i:03d}" for i in range(150)]
    ops = [v.operation for v in store.versions()]
    assert "compact" in ops


def test_disabled_policy_leaves_fragments(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=None, compaction=CompactionPolicy(enabled=False))
    for i in range(10):
        store.add(text(f"m{i}"))
    assert len(fragments(store)) == 10
    store.compact()
    assert len(fragments(store)) == 1
    assert [r.content for r in store.records()] == [f"m{i}" for i in range(10)]


def test_every_version_stays_readable_after_compactions(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=None, compaction=CompactionPolicy(fanout=2))
    versions = [store.add(text(f"m{i}")) for i in range(20)]
    for i, version in enumerate(versions):
        assert [r.content for r in store.at_version(version).records()] == [f"m{j}" for j in range(i + 1)]


def test_bytes_written_grow_like_n_log_n(store_path: str) -> None:
    """Each row is rewritten about once per level, never once per append."""
    store = ContextStore.open(store_path, embedder=None, compaction=CompactionPolicy(fanout=4))
    appends = 256
    for i in range(appends):
        store.add(text(f"message {i}"))
    ds = lance.dataset(store.uri)
    rewritten = 0
    for version in range(1, ds.version + 1):
        transaction = ds.read_transaction(version)
        if transaction is not None and type(transaction.operation).__name__ == "Rewrite":
            for group in transaction.operation.groups:
                rewritten += sum(f.physical_rows for f in group.new_fragments)
    # log4(256) = 4 levels: at most ~4 rewrites per row; merging everything each time would be ~n/2 per row.
    assert rewritten <= appends * 4
    assert rewritten >= appends  # compaction really ran


def test_compaction_sorts_merged_rows_by_session_and_keeps_every_guarantee(store_path: str) -> None:
    """Merged fragments hold each session as one run of rows, in order (keyed reads touch fewer pages)."""
    store = ContextStore.open(store_path, embedder=HashingEmbedder(16), compaction=CompactionPolicy(fanout=4))
    sessions = ["b", "a", "c"]
    versions = []
    for i in range(60):
        versions.append(store.add(text(f"turn {i} about topic{i}", run_id=sessions[i % 3], id=f"id{i:02d}")))
    store.delete("id05")
    ds = lance.dataset(store.uri)
    merged = [f for f in ds.get_fragments() if f.metadata.physical_rows > 1]
    assert merged, "compaction ran"
    for fragment in merged:
        rows = fragment.to_table(columns=["run_id", "seq"]).to_pylist()
        assert rows == sorted(rows, key=lambda r: (r["run_id"], r["seq"])), "a merged fragment is not sorted"
    for run_id in sessions:  # reads still come back in the order written
        expected = [f"id{i:02d}" for i in range(60) if sessions[i % 3] == run_id and i != 5]
        assert [r.id for r in store.records(run_id)] == expected
        assert [r.id for r in store.records(run_id, last=3)] == expected[-3:]
    assert [r.id for r in store.records()][:3] == ["id00", "id01", "id02"]
    for i, version in enumerate(versions):  # every older version still reads as it was
        assert len(store.at_version(version).records()) == i + 1
    hits = store.search("topic7", k=3, mode="text")  # found in rewritten rows, indexed or not
    assert hits and hits[0].record.id == "id07"
    store.compact()  # the explicit full compaction sorts too, and refreshes the indexes
    ds = lance.dataset(store.uri)
    assert len(ds.get_fragments()) == 1
    rows = ds.to_table(columns=["run_id", "seq"]).to_pylist()
    assert rows == sorted(rows, key=lambda r: (r["run_id"], r["seq"]))
    assert store.search("topic41", k=1, mode="text")[0].record.id == "id41"
    assert store.search("turn 41 about topic41", k=1, mode="vector")[0].record.id == "id41"


def test_the_files_an_append_made_are_known_without_reading_the_manifest(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=HashingEmbedder(32), compaction=CompactionPolicy(fanout=3))
    handle = store._history._state.handle
    for i in range(12):
        store.add(text(f"m{i}", run_id=f"s{i % 3}"))
        if i == 6:
            store.add(text("alone", run_id="z"))
            store.delete(run_id="z")  # frees the highest fragment id; Lance never reuses it
        latest = handle.latest()
        assert handle.facts(latest) == Facts.of(latest)
        assert [r.text_payload for r in store.records("s0", last=1)] == [f"m{i - i % 3}"]


def test_merges_of_files_this_process_wrote_skip_reading_them_and_write_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lance_context._cluster as cluster

    served: list[bool] = []
    real = cluster.written_rows

    def counted(fragments: Any, schema: Any) -> Any:
        found = real(fragments, schema)
        served.append(found is not None)
        return found

    def grow(path: Path) -> lance.LanceDataset:
        store = ContextStore.open(
            str(path), embedder=HashingEmbedder(16), compaction=CompactionPolicy(fanout=4)
        )
        for i in range(24):
            if i == 10:  # a three-row file that then gets a deletion file: it must be read
                store.add([text(f"batch {j}", run_id="b", id=f"batch{j}") for j in range(3)])
                store.delete("batch1")
            store.add(text(f"turn {i}", run_id="abc"[i % 3], id=f"id{i:02d}"))
        return lance.dataset(str(path))

    monkeypatch.setattr(cluster, "written_rows", counted)
    kept = grow(tmp_path / "kept.lance")
    assert True in served and False in served  # merges served from memory, and the deleted-from file read
    monkeypatch.setattr(cluster, "written_rows", lambda fragments, schema: None)
    read = grow(tmp_path / "read.lance")
    columns = ["id", "run_id", "text_payload", "embedding"]
    assert [f.metadata.physical_rows for f in kept.get_fragments()] == [
        f.metadata.physical_rows for f in read.get_fragments()
    ]
    for a, b in zip(kept.get_fragments(), read.get_fragments(), strict=True):
        assert a.to_table(columns=columns).equals(b.to_table(columns=columns))
        # the same versions; a write's slot inside its version's range differs per process (commit_seq)
        versions = [
            [s >> SEQ_SHIFT for s in f.to_table(columns=["seq"]).column("seq").to_pylist()] for f in (a, b)
        ]
        assert versions[0] == versions[1]
    assert "batch1" not in kept.to_table(columns=["id"]).column("id").to_pylist()


def test_the_rows_kept_for_merges_stay_bounded(store_path: str) -> None:
    import lance_context._written as written

    store = ContextStore.open(store_path, embedder=None, compaction=CompactionPolicy(enabled=False))
    for i in range(written.MAX_FILES + 40):
        store.add(text(f"message {i}", run_id=f"s{i % 7}"))
    assert len(written._TABLES) == written.MAX_FILES  # the newest files only, never one per add
    assert 0 < written._bytes <= written.MAX_BYTES


def test_an_explicit_compaction_is_not_starved_by_writers_that_keep_compacting(
    store_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each time it is about to commit, another writer merges first and adds more; it still returns.

    Its retry merges what is left of the fragments it first found (here nothing: the other
    writer merged them), instead of planning over the other writer's new fragments and
    losing to it again on every attempt (8 attempts, then ``CommitConflictError``).
    """
    from lance_context import _maintenance

    no_auto = CompactionPolicy(enabled=False)
    ours = ContextStore.open(store_path, embedder=None, compaction=no_auto)
    other = ContextStore.open(store_path, embedder=None, compaction=no_auto)  # another process's
    for i in range(6):
        ours.add(text(f"m{i}", run_id=f"s{i % 2}", id=f"m{i}"))
    real = _maintenance.sorted_compaction
    attempts = 0
    inside_other = False

    def other_writer_first(ds: Any, target: int, **options: Any) -> Any:
        nonlocal attempts, inside_other
        planned = real(ds, target, **options)
        if inside_other:  # the other writer's own compaction
            return planned
        attempts += 1
        inside_other = True
        other.compact()  # merges what we planned to merge: our commit will conflict
        other.add([text(f"o{attempts}a", run_id="s0", id=f"o{attempts}a")])  # and two small fragments
        other.add([text(f"o{attempts}b", run_id="s0", id=f"o{attempts}b")])
        inside_other = False
        return planned

    monkeypatch.setattr(_maintenance, "sorted_compaction", other_writer_first)
    ours.compact()
    monkeypatch.undo()
    assert attempts == 2  # the first attempt lost to the other writer, the retry did not
    assert [r.id for r in ours.records("s0")] == ["m0", "m2", "m4", "o1a", "o1b", "o2a", "o2b"]
    assert [r.id for r in ours.records("s1")] == ["m1", "m3", "m5"]
    # the other writer merged the six first fragments and then o1a and o1b; the fragments
    # written after the call began are left to their writer's own maintenance
    assert [f.metadata.physical_rows for f in lance.dataset(store_path).get_fragments()] == [6, 2, 1, 1]


def test_an_explicit_compaction_that_lands_is_not_reported_as_unwritten_when_index_upkeep_loses(
    store_path: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from lance_context import CommitConflictError, _maintenance

    store = ContextStore.open(store_path, embedder=None, compaction=CompactionPolicy(enabled=False))
    for i in range(4):
        store.add(text(f"m{i}", run_id="s", id=f"m{i}"))

    def other_writers_keep_winning(*args: Any, **kwargs: Any) -> None:
        raise CommitConflictError("could not build the store's indexes: it conflicted with another writer")

    monkeypatch.setattr(_maintenance, "build_indexes", other_writers_keep_winning)
    with caplog.at_level(logging.INFO, logger="lance_context"):
        store.compact()
    assert [f.metadata.physical_rows for f in lance.dataset(store_path).get_fragments()] == [4]
    assert "compacted; index upkeep was left to a later write" in caplog.text
    assert [r.id for r in store.records("s")] == ["m0", "m1", "m2", "m3"]


def test_an_upsert_keeping_order_keeps_the_place_of_the_copy_reads_show_after_a_compaction(
    store_path: str,
) -> None:
    """An id added twice (as two concurrent adds can) is read as its newest copy; so it stays.

    The compaction sorts rows by session, so here the older copy's row ends up last in the
    file: the place kept must not depend on that.
    """
    store = ContextStore.open(store_path, embedder=None, compaction=CompactionPolicy(enabled=False))
    store.add(text("first copy", run_id="b", id="x"))
    store.add(text("between", run_id="a", id="m"))
    store.add(text("second copy", run_id="a", id="x"))
    assert [r.text for r in store.records()] == ["between", "second copy"]
    store.compact()
    rows = lance.dataset(store_path).to_table(columns=["id", "run_id"]).to_pylist()
    assert rows[-1] == {"id": "x", "run_id": "b"}  # the older copy is physically last
    store.upsert(text("edited", run_id="a", id="x"), keep_order=True)
    assert [r.text for r in store.records()] == ["between", "edited"]


def test_a_vector_index_build_is_not_starved_by_writers_that_keep_compacting(
    store_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each time it is about to commit, another writer adds records whose own compactions merge first.

    The first attempt covered the small fragments those merges rewrite, and loses; the retry
    covers only the settled ones (``fanout**3`` rows or more, here 8), which such merges
    leave alone, and commits, reusing the partitions trained once. An attempt that covers
    every fragment can lose again (here the next one did too). The rows left out are still
    found, searched exactly.
    """
    from lance_context import _vector_index

    policy = CompactionPolicy(enabled=False, fanout=2, max_rows_per_fragment=16)
    ours = ContextStore.open(store_path, embedder=HashingEmbedder(16), compaction=policy)
    tiered = CompactionPolicy(fanout=2, max_rows_per_fragment=16)  # its adds merge small fragments
    other = ContextStore.open(store_path, embedder=HashingEmbedder(16), compaction=tiered)
    ours.add([text(f"bulk note number {i}", run_id="s", id=f"b{i}") for i in range(16)])  # one fragment
    for i in range(3):
        ours.add(text(f"small note {i} about zebras", run_id="s", id=f"m{i}"))
    trainings, attempts = [], 0
    real_partitions, real_segments = _vector_index._partitions, _vector_index._segments

    def counted(ds: Any) -> Any:
        trainings.append(int(ds.version))
        return real_partitions(ds)

    def other_writer_first(ds: Any, name: str) -> Any:
        nonlocal attempts
        attempts += 1
        for i in range(4):
            other.add(text(f"other note {attempts}.{i}", run_id="s", id=f"o{attempts}.{i}"))
        return real_segments(ds, name)

    monkeypatch.setattr(_vector_index, "_partitions", counted)
    monkeypatch.setattr(_vector_index, "_segments", other_writer_first)
    ours.build_vector_index()
    monkeypatch.undo()
    assert attempts == 2 and len(trainings) == 1
    (index,) = [i for i in lance.dataset(store_path).describe_indices() if i.name == "embedding_idx"]
    assert index.num_rows_indexed == 16  # the settled fragment alone
    kept = {str(segment.uuid) for i in lance.dataset(store_path).describe_indices() for segment in i.segments}
    indices = os.path.join(store_path, "_indices")
    holding = {name for name in os.listdir(indices) if os.listdir(os.path.join(indices, name))}
    assert holding == kept  # the lost build's files were deleted
    hits = ours.search("small note 2 about zebras", k=1, mode="vector")
    assert [h.record.id for h in hits] == ["m2"]  # an unindexed row, found exactly
    assert ours.count() == 16 + 3 + 2 * 4
