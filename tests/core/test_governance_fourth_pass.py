"""Governance and review, fourth pass: bugs a user hits around model changes, imports and history."""

from __future__ import annotations

from pathlib import Path

import lance
import numpy as np
import pytest
from lance.file import LanceFileSession
from langchain_core.embeddings import DeterministicFakeEmbedding

from lance_context import (
    ContextStore,
    EmbedderMismatchError,
    HashingEmbedder,
    InvalidFilterError,
    LangChainEmbedder,
    RetentionPolicy,
    StoreError,
)
from lance_context import _forget as forget_module

from .conftest import text


def other_model(dimension: int = 32) -> LangChainEmbedder:
    """A second model with the same vector size as ``HashingEmbedder(dimension)``."""
    return LangChainEmbedder(DeterministicFakeEmbedding(size=dimension))


def embedded_by(store: ContextStore, model: LangChainEmbedder, run_id: str) -> list[bool]:
    """For each record of a session: does its vector come from ``model``?"""
    records = store.records(run_id=run_id)
    expected = model.embed_texts([str(r.content) for r in records])
    return [r.embedding is not None and np.allclose(r.embedding, want) for r, want in zip(records, expected)]


def test_restoring_a_session_after_a_reembed_to_a_model_of_the_same_size_embeds_it_again(
    store_path: str,
) -> None:
    store = ContextStore.open(store_path, embedder=HashingEmbedder(32))
    store.add([text("apple pie", id="a"), text("banana bread", id="b"), text("other", run_id="s2")])
    before = store.version()
    model = other_model()
    store.reembed(model)
    store.restore(before, run_id="s1")
    # the restored records hold vectors of today's model, not the hashing ones of `before`
    assert embedded_by(store, model, "s1") == [True, True]
    assert store.search("apple pie", k=1, run_id="s1")[0].record.id == "a"


def test_restoring_a_session_across_a_model_change_without_the_model_is_refused(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=HashingEmbedder(32))
    store.add([text("apple pie", id="a")])
    before = store.version()
    store.reembed(other_model())
    reopened = ContextStore.open(store_path)  # no embedder: it cannot embed the records again
    latest = reopened.version()
    with pytest.raises(EmbedderMismatchError, match="hashing"):
        reopened.restore(before, run_id="s1")
    assert reopened.version() == latest


def test_importing_a_past_version_checks_the_model_that_version_was_embedded_with(tmp_path: Path) -> None:
    source = ContextStore.open(str(tmp_path / "a.lance"), embedder=HashingEmbedder(32))
    source.add([text("apple pie", id="a"), text("banana bread", id="b")])
    hashed = source.version()
    model = other_model()
    source.reembed(model)
    snapshot = str(tmp_path / "snap.lance")
    source.export(snapshot, version=hashed, history=True)

    # the version imported holds hashing vectors: a store of the other model refuses them
    modern = ContextStore.open(str(tmp_path / "modern.lance"), embedder=model)
    modern.add(text("kept", run_id="o"))
    latest = modern.version()
    with pytest.raises(EmbedderMismatchError, match="hashing"):
        ContextStore.import_(snapshot, into=modern, version=hashed)
    assert modern.version() == latest and modern.count() == 1

    # and a hashing store takes them, though the snapshot's latest version is of the other model
    hashing = ContextStore.open(str(tmp_path / "hashing.lance"), embedder=HashingEmbedder(32))
    hashing.add(text("kept", run_id="o"))
    ContextStore.import_(snapshot, into=hashing, version=hashed)
    assert sorted(r.id for r in hashing.records(run_id="s1")) == ["a", "b"]
    assert hashing.search("apple pie", k=1, run_id="s1")[0].record.id == "a"


def test_forgetting_a_record_a_branch_of_a_branch_was_made_after(store_path: str, tmp_path: Path) -> None:
    store = ContextStore.open(store_path, embedder=HashingEmbedder(32))
    store.add(text("kept everywhere", id="k1"))
    first = store.branch("first")
    first.add(text("quokka passphrase on the branch only", id="secret"))
    first.add(text("more on the branch"))
    second = first.branch("second")  # made from a version of `first` that holds the record
    second.add(text("on the second branch"))
    store.add(text("main goes on"))

    report = store.forget("secret")

    assert report.records == 1 and report.verified
    assert set(report.versions_expired) == {"first", "second"}
    for name, expected in (
        ("first", ["kept everywhere", "more on the branch"]),
        ("second", ["kept everywhere", "more on the branch", "on the second branch"]),
    ):
        branch = ContextStore.open(store_path, branch=name)
        assert [r.content for r in branch.records()] == expected
        assert branch.search("quokka passphrase", mode="text", k=5) == []
    assert not any(b"quokka passphrase" in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    # the branches still merge: the second into the first, then the first into main
    assert store.merge("second", into="first").merged
    assert store.merge("first").merged
    assert [r.content for r in store.records()][-2:] == ["more on the branch", "on the second branch"]


def test_branches_of_branches_all_made_where_a_forgotten_record_was_still_merge(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=HashingEmbedder(32))
    store.add(text("kept everywhere", id="k1"))
    store.add(text("quokka passphrase", id="secret", run_id="gone"))
    first = store.branch("first")
    first.add(text("first's note"))
    second = first.branch("second")
    second.add(text("second's note"))
    third = second.branch("third")  # every fork point now holds the record
    third.add(text("third's note"))
    store.add(text("main goes on"))

    report = store.forget(run_id="gone")
    assert report.verified and set(report.versions_expired) == {"main", "first", "second", "third"}

    # every fork point is gone: the newest version older than them all (on main) is the base
    assert store.merge("third", into="second").merged
    assert store.merge("second", into="first").merged
    result = store.merge("first")
    assert result.merged and not result.conflicts
    assert [r.content for r in store.records()] == [
        "kept everywhere", "main goes on", "first's note", "second's note", "third's note"
    ]  # fmt: skip


def test_importing_a_backup_into_the_store_it_came_from_keeps_the_conversation_in_order(
    store_path: str, tmp_path: Path
) -> None:
    store = ContextStore.open(store_path, embedder=HashingEmbedder(32))
    store.add([text("turn 1", id="t1"), text("turn 2", id="t2"), text("turn 3", id="t3")])
    backup = str(tmp_path / "backup.lance")
    store.export(backup)
    store.add(text("turn 4", id="t4"))
    store.delete("t2")  # lost by mistake: the backup brings it back

    before = store.version()
    ContextStore.import_(backup, into=store)

    assert store.version() == before + 1  # one new version
    # the turns the store still held keep their places; the one brought back comes after them
    assert [r.id for r in store.records(run_id="s1")] == ["t1", "t3", "t4", "t2"]
    assert store.get("t2") is not None and store.get("t2").content == "turn 2"  # type: ignore[union-attr]


def test_an_import_cut_short_leaves_no_store_behind_and_runs_again(
    store_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ContextStore.open(store_path, embedder=HashingEmbedder(32))
    for i in range(4):
        store.add(text(f"turn {i}", id=f"t{i}"))
    snapshot = str(tmp_path / "snap.lance")
    store.export(snapshot, version=1, history=True)
    upload = LanceFileSession.upload_file
    manifests = []

    def flaky(self: LanceFileSession, local: str, path: str) -> None:
        if path.startswith("_versions/"):
            manifests.append(path)
            if len(manifests) == 3:  # the connection drops while the versions are being copied
                raise OSError("connection reset")
        upload(self, local, path)

    monkeypatch.setattr(LanceFileSession, "upload_file", flaky)
    dest = str(tmp_path / "restored.lance")
    with pytest.raises(StoreError, match="connection reset"):
        ContextStore.import_(snapshot, into=dest)
    with pytest.raises(ValueError):
        lance.dataset(dest)  # nothing half-copied that a reader or a second import would take for a store
    monkeypatch.setattr(LanceFileSession, "upload_file", upload)

    copy = ContextStore.import_(snapshot, into=dest)  # the same import, run again, copies it whole
    assert [v.version for v in copy.versions()] == [v.version for v in store.versions()]
    assert [r.id for r in copy.records()] == ["t0", "t1", "t2", "t3"]


@pytest.mark.parametrize("flag", ["no", 0, None, "False"])
def test_forget_and_retention_refuse_a_dry_run_that_is_not_a_bool(store_path: str, flag: object) -> None:
    store = ContextStore.open(store_path, embedder=HashingEmbedder(32))
    store.add(text("kept", id="k"))
    latest = store.version()
    with pytest.raises(InvalidFilterError, match="dry_run must be True or False"):
        store.forget("k", dry_run=flag)  # type: ignore[arg-type]
    with pytest.raises(InvalidFilterError, match="dry_run must be True or False"):
        store.apply_retention(RetentionPolicy(), dry_run=flag)  # type: ignore[arg-type]
    assert store.version() == latest and store.get("k") is not None


def test_a_forget_cut_short_before_the_search_log_step_is_finished_by_running_it_again(
    store_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ContextStore.open(store_path, embedder=HashingEmbedder(32))
    store.add([text("kept", run_id="s1"), text("numbat passphrase zeta", id="gone-0001", run_id="user-gone")])
    kept = store.search("kept", k=1, record=True, run_id="s1")
    store.search("numbat passphrase zeta", k=1, record=True, run_id="user-gone")
    store.search("anything", k=1, record=True, where={"id": "gone-0001"})

    def killed(*args: object, **kwargs: object) -> int:
        raise KeyboardInterrupt  # the process dies after the history rewrite, before the log's step

    monkeypatch.setattr(forget_module, "purge_search_log", killed)
    with pytest.raises(KeyboardInterrupt):
        store.forget(run_id="user-gone")
    monkeypatch.undo()

    # the records are gone already; running the same forget again finishes the search log
    report = ContextStore.open(store_path, embedder=HashingEmbedder(32)).forget(run_id="user-gone")
    assert report.records == 0 and report.searches_removed == 1
    again = ContextStore.open(store_path, embedder=HashingEmbedder(32)).forget("gone-0001")
    assert again.searches_removed == 1
    assert [e.id for e in store.search_log()] == [kept.search_id]
    assert not any(b"numbat passphrase" in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
