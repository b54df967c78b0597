"""Edge cases of governance: forget, retention, snapshots and encryption asked the unusual thing.

Each test pins what a user relies on when a call is given an empty or wrong argument, or
runs beside another handle: a specific error and nothing written, or nothing lost.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import lance
import pytest

from lance_context import (
    ContextStore,
    EncryptionError,
    EncryptionPolicy,
    HashingEmbedder,
    InvalidFilterError,
    NotAContextStoreError,
    RetentionPolicy,
    VersionNotFoundError,
    _files,
    _maintenance,
)

from .conftest import text
from .test_forget import holding, local_files

SECRET = "EDGE-SECRET-PAYLOAD-0001 about zebras"


@pytest.mark.parametrize("where", [{}, {"$and": []}, {"$and": [{}]}])
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_where_with_no_condition_is_refused_not_read_as_everything(
    store: ContextStore, store_path: str, where: dict[str, Any], dry_run: bool
) -> None:
    store.add([text("one", run_id="a"), text("two", run_id="b")])
    before, files = store.version(), local_files(store_path)
    with pytest.raises(InvalidFilterError, match="puts no condition"):
        store.forget(where=where, dry_run=dry_run)
    assert store.version() == before and local_files(store_path) == files
    assert [r.text for r in store.records()] == ["one", "two"]
    # with another condition, an empty where adds none: only that condition selects
    assert store.forget(run_id="a", where=where, dry_run=True).records == 1


def test_apply_retention_refuses_what_is_not_a_policy_or_an_aware_time(store: ContextStore) -> None:
    for i in range(3):
        store.add(text(f"m{i}", run_id="s"))
    versions = [v.version for v in store.versions()]
    calls: list[tuple[Any, Any, str]] = [
        (timedelta(days=1), None, "takes a RetentionPolicy"),
        ("default", None, "takes a RetentionPolicy"),
        (RetentionPolicy(), datetime.now() + timedelta(days=30), "timezone-aware"),  # naive
        (RetentionPolicy(), "2030-01-01", "timezone-aware"),
    ]
    for policy, now, message in calls:
        for dry_run in (True, False):
            with pytest.raises(InvalidFilterError, match=message):
                store.apply_retention(policy, now=now, dry_run=dry_run)
    assert [v.version for v in store.versions()] == versions


def test_a_retention_dry_run_names_the_tags_the_run_removes(store: ContextStore) -> None:
    for i in range(4):
        store.add(text(f"m{i}", run_id="s"))
    store.tag("old", 2)
    drop_all = RetentionPolicy(keep_all=timedelta(0), hourly=None, daily=timedelta(0), keep_tagged=False)
    later = datetime.now(timezone.utc) + timedelta(days=1)
    planned = store.apply_retention(drop_all, now=later, dry_run=True)
    assert store.tags() == {"old": 2}
    report = store.apply_retention(drop_all, now=later)
    assert planned.tags_removed == report.tags_removed == ("old",)
    assert planned.removed == report.removed and store.tags() == {}


def test_a_handle_opened_before_a_key_rotation_does_not_seal_with_the_old_key(tmp_path: Path) -> None:
    path, old, new = str(tmp_path / "s.lance"), os.urandom(32), os.urandom(32)
    rotating = ContextStore.open(path, embedder=HashingEmbedder(16), encryption=EncryptionPolicy(key=old))
    rotating.add(text("before the rotation", run_id="s"))
    stale = ContextStore.open(path, embedder=HashingEmbedder(16), encryption=EncryptionPolicy(key=old))
    rotated = rotating.rotate_key(EncryptionPolicy(key=new))
    with pytest.raises(EncryptionError, match="key was changed"):
        stale.add(text("sealed with a retired key", run_id="s"))
    assert rotating.version() == rotated  # nothing was written
    reader = ContextStore.open(path, embedder=HashingEmbedder(16), encryption=EncryptionPolicy(key=new))
    assert [r.text for r in reader.records()] == ["before the rotation"]
    rotating.add(text("after the rotation", run_id="s"))  # the rotating handle seals with the new key
    assert [r.text for r in reader.records()] == ["before the rotation", "after the rotation"]


def test_a_branch_merged_after_a_key_rotation_reads_with_the_new_key_alone(tmp_path: Path) -> None:
    path, old, new = str(tmp_path / "s.lance"), os.urandom(32), os.urandom(32)
    store = ContextStore.open(path, embedder=HashingEmbedder(16), encryption=EncryptionPolicy(key=old))
    store.add(text("main one", run_id="s"))
    store.branch("side").add(text("side one", run_id="s"))
    store.rotate_key(EncryptionPolicy(key=new))

    store.merge("side")

    reader = ContextStore.open(path, embedder=HashingEmbedder(16), encryption=EncryptionPolicy(key=new))
    assert [r.text for r in reader.records()] == ["main one", "side one"]


def test_a_single_previous_key_not_in_a_tuple_is_refused_clearly() -> None:
    with pytest.raises(EncryptionError, match=r"previous_keys=\(old_key,\)"):
        EncryptionPolicy(key=os.urandom(32), previous_keys=os.urandom(32))  # type: ignore[arg-type]


def test_importing_with_a_wrong_key_copies_nothing(tmp_path: Path) -> None:
    key = os.urandom(32)
    source = ContextStore.open(str(tmp_path / "src.lance"), embedder=HashingEmbedder(16),
                               encryption=EncryptionPolicy(key=key))  # fmt: skip
    source.add(text("sealed words", run_id="s"))
    dest = tmp_path / "copy.lance"
    with pytest.raises(EncryptionError, match="not the key given"):
        ContextStore.import_(source.uri, str(dest), encryption=EncryptionPolicy(key=os.urandom(32)))
    assert not dest.exists()
    copy = ContextStore.import_(source.uri, str(dest), encryption=EncryptionPolicy(key=key))
    assert [r.text for r in copy.records()] == ["sealed words"]


def test_importing_from_where_no_store_is_says_so_and_creates_nothing(
    store: ContextStore, tmp_path: Path
) -> None:
    store.add(text("mine", run_id="s"))
    before = store.version()
    missing = str(tmp_path / "nothing-here.lance")
    with pytest.raises(NotAContextStoreError, match="nothing to import"):
        ContextStore.import_(missing, str(tmp_path / "copy.lance"))
    with pytest.raises(NotAContextStoreError, match="nothing to import"):
        ContextStore.import_(missing, store)
    assert not (tmp_path / "copy.lance").exists() and not Path(missing).exists()
    assert store.version() == before


def test_a_snapshot_is_not_written_inside_the_store_it_copies(store: ContextStore, store_path: str) -> None:
    store.add([text("kept", run_id="k"), text(SECRET, run_id="alice")])
    with pytest.raises(InvalidFilterError, match="inside the store's own folder"):
        store.export(os.path.join(store_path, "backup.lance"))
    assert not os.path.exists(os.path.join(store_path, "backup.lance"))
    assert store.forget(run_id="alice").verified


def _read_after_forget(uri: str, ready: Any, done: Any, out: Any) -> None:
    """In a spawned process: open, read (caching the tail), then read again after the forget."""
    store = ContextStore.open(uri, embedder=HashingEmbedder(32))
    early = store.versions()[1].version
    store.records("alice", last=5)
    store.search("zebras", mode="text", k=5)
    ready.set()
    done.wait(120)
    seen = [r.text for r in store.records()] + [r.text for r in store.records("alice", last=5)]
    for mode in ("text", "vector", "hybrid"):
        seen += [h.record.text for h in store.search("zebras", mode=mode, k=5)]
    for info in store.versions():
        seen += [r.text for r in store.at_version(info.version).records()]
    try:
        store.at_version(early + 1).records()
        gone = False
    except VersionNotFoundError:
        gone = True
    out.put((seen, gone))


def test_another_process_no_longer_sees_forgotten_text_at_any_version(
    store: ContextStore, store_path: str
) -> None:
    store.add(text("keeper about zebras", run_id="k"))
    store.add(text(SECRET, run_id="alice"))
    store.add(text("keeper two about zebras", run_id="k"))
    store.compact()
    context = multiprocessing.get_context("spawn")
    ready, done, out = context.Event(), context.Event(), context.Queue()
    reader = context.Process(target=_read_after_forget, args=(store_path, ready, done, out))
    reader.start()
    try:
        assert ready.wait(120)
        assert store.forget(run_id="alice").verified
        done.set()
        seen, gone = out.get(timeout=120)
    finally:
        reader.join(30)
    assert gone and seen and not [t for t in seen if t and "EDGE-SECRET" in t]
    assert {"keeper about zebras", "keeper two about zebras"} <= set(seen)
    assert holding(local_files(store_path), [SECRET.encode()]) == {}


def test_a_diff_across_a_key_rotation_shows_no_change(tmp_path: Path) -> None:
    path, old, new = str(tmp_path / "s.lance"), os.urandom(32), os.urandom(32)
    store = ContextStore.open(path, embedder=HashingEmbedder(16), encryption=EncryptionPolicy(key=old))
    before = store.add(text("kept as it was", run_id="s"))
    store.rotate_key(EncryptionPolicy(key=new))
    store.add(text("written after", run_id="s"))

    changes = store.diff(before)

    assert [r.text for r in changes.added] == ["written after"] and changes.removed == []


def test_a_file_another_writer_removes_during_the_scan_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lance_context import _files

    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16))
    store.add(text("forget me please", run_id="victim"))
    store.add(text("keep me", run_id="kept"))
    temporary = tmp_path / "s.lance" / "data" / ".tmpwriting"
    temporary.write_bytes(b"a writer's file, renamed away before the scan reads it")
    raw = _files.Files.raw

    def vanishing(self: Any, path: str, size: int) -> bytes:
        if path.endswith(".tmpwriting"):
            temporary.unlink()
        return raw(self, path, size)

    monkeypatch.setattr(_files.Files, "raw", vanishing)
    report = store.forget(run_id="victim")
    assert report.verified and report.records == 1
    assert [r.text for r in store.records()] == ["keep me"]


def _indexed_store(store_path: str, **options: Any) -> ContextStore:
    """A store with its full-text, scalar and vector indexes built, and one search logged."""
    store = ContextStore.open(store_path, embedder=HashingEmbedder(16), **options)
    store.add([text(SECRET, run_id="dave", id="d1")] + [text(f"note {i}", run_id="keep") for i in range(40)])
    store.compact()
    store.build_vector_index()
    assert "embedding_idx" in {i.name for i in lance.dataset(store_path).describe_indices()}
    assert [h.record.id for h in store.search("zebras", k=3, run_id="dave", record=True)] == ["d1"]
    return store


def _other_writers_keep_winning(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
    """``module.name`` (an index build, or its commit) always loses to another writer's commit."""
    from lance_context import CommitConflictError

    def lose(*args: Any, **kwargs: Any) -> None:
        raise CommitConflictError("could not build the index: it conflicted with another writer")

    monkeypatch.setattr(module, name, lose)


def test_a_forget_whose_index_rebuild_loses_to_other_writers_still_finishes_and_reports(
    store_path: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The records are erased once the rewrite commits: "nothing was written" would be false.

    The steps after the rebuild (the search log, the verification) run too.
    """
    store = _indexed_store(store_path)
    _other_writers_keep_winning(monkeypatch, _files, "build_vector_index")
    with caplog.at_level(logging.INFO, logger="lance_context"):
        report = store.forget(run_id="dave")
    assert report.record_ids == ("d1",) and report.searches_removed == 1
    assert report.verified, report.verification
    assert "rebuilding its indexes was left to a later write" in caplog.text
    assert store.search_log() == [] and store.get("d1") is None
    monkeypatch.undo()
    assert [h.record.run_id for h in store.search("note", k=3)] == ["keep"] * 3
    store.build_vector_index()
    assert "embedding_idx" in {i.name for i in lance.dataset(store_path).describe_indices()}


def test_a_key_rotation_whose_index_rebuild_loses_to_other_writers_returns_its_version(
    store_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _indexed_store(store_path, encryption=EncryptionPolicy(key=os.urandom(32)))
    _other_writers_keep_winning(monkeypatch, _files, "build_vector_index")
    version = store.rotate_key(EncryptionPolicy(key=os.urandom(32)))
    assert {v.version: v.operation for v in store.versions()}[version] == "rotate-key"
    assert store.get("d1") is not None and store.get("d1").text == SECRET  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["reembed", "bulk"])
def test_a_re_embedding_whose_index_rebuild_loses_to_other_writers_switches_the_model(
    store_path: str, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The new vectors are committed: the store (and this process) embed with the new model after."""
    from lance_context.adapters import BulkWorker

    store = ContextStore.open(store_path, embedder=HashingEmbedder(16))
    store.add([text(f"note {i} about zebras", id=f"n{i}") for i in range(8)])
    _other_writers_keep_winning(monkeypatch, _maintenance, "commit_or_discard")
    if how == "reembed":
        version = store.reembed(HashingEmbedder(8))
    else:
        writer = store.bulk()
        plan = writer.plan_reembed(HashingEmbedder(8))
        version = writer.commit_reembed(plan, [BulkWorker(plan).rewrite(s) for s in plan.slices])
    monkeypatch.undo()
    assert {v.version: v.operation for v in store.versions()}[version] == "reembed"
    store.add(text("a later note", id="later"))  # embedded with the new model
    assert store.dimension == 8 and store.get("later").embedding.shape == (8,)  # type: ignore[union-attr]
    assert [h.record.id for h in store.search("note 3 about zebras", k=1, mode="vector")] == ["n3"]
