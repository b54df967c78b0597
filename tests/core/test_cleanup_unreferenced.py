"""``cleanup(unreferenced=True)``: the files no version references go, however new.

A write killed between writing its data file and committing (or an index refresh that
lost a race to another writer) leaves files no manifest names. Lance keeps
such files for 7 days, since they may belong to a write still in progress; the option
removes them at once, and removes nothing any version (tagged or not) still reads. A merge
or a first index build that loses a race deletes its own files, unless the commit
reported lost had in fact landed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import lance
import pytest

from lance_context import CompactionPolicy, ContextRecord, ContextStore, InvalidFilterError


def _data_files(uri: str) -> set[str]:
    return set(os.listdir(os.path.join(uri, "data")))


def _killed_before_commit(store: ContextStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """An add whose process dies after its data file is written, before the commit."""

    def dies(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed before the commit")

    monkeypatch.setattr(lance.LanceDataset, "commit", staticmethod(dies))
    with pytest.raises(KeyboardInterrupt):
        store.add(ContextRecord.from_content("never acknowledged " * 500, run_id="chat"))
    monkeypatch.undo()


def _two_messages(uri: str) -> ContextStore:
    """Versions 2 (tagged ``first``) and 3, one message each."""
    store = ContextStore.open(uri, embedder=None)
    store.add(ContextRecord.from_content("first", run_id="chat"))
    store.tag("first")
    store.add(ContextRecord.from_content("second", run_id="chat"))
    return store


def test_the_files_of_a_write_killed_before_its_commit_go_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = str(tmp_path / "memory.lance")
    store = _two_messages(uri)
    committed = _data_files(uri)
    _killed_before_commit(store, monkeypatch)
    left = _data_files(uri) - committed
    assert len(left) == 1  # the dead write's data file, named by no version

    store.cleanup(timedelta(0))  # Lance keeps an unverified file for 7 days
    assert left <= _data_files(uri)

    stats = store.cleanup(timedelta(0), unreferenced=True)
    assert stats["bytes_removed"] > 0
    assert not left & _data_files(uri)
    assert [r.text for r in store.records("chat")] == ["first", "second"]
    assert [r.text for r in store.at_version("first").records("chat")] == ["first"]  # tagged: kept
    reopened = ContextStore.open(uri, embedder=None)
    assert [r.text for r in reopened.records("chat")] == ["first", "second"]


def test_a_wrong_unreferenced_argument_is_refused_and_removes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = str(tmp_path / "memory.lance")
    store = _two_messages(uri)
    _killed_before_commit(store, monkeypatch)
    files, versions = _data_files(uri), [v.version for v in store.versions()]
    with pytest.raises(InvalidFilterError, match="unreferenced must be True or False, got 'yes'"):
        store.cleanup(timedelta(0), unreferenced="yes")  # type: ignore[arg-type]
    assert _data_files(uri) == files and [v.version for v in store.versions()] == versions


def _six_messages(uri: str) -> ContextStore:
    """Six one-message appends over two sessions, nothing merged or indexed."""
    store = ContextStore.open(uri, embedder=None, compaction=CompactionPolicy(enabled=False))
    for i in range(6):
        store.add(ContextRecord.from_content(f"message {i}", run_id=f"s{i % 2}"))
    return store


def test_a_merge_that_loses_to_another_writers_merge_leaves_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers compact the same fragments; the loser deletes what it wrote at once."""
    uri = str(tmp_path / "memory.lance")
    one = _six_messages(uri)
    two = ContextStore.open(uri, embedder=None, compaction=CompactionPolicy(enabled=False))
    real = lance.LanceDataset.commit
    raced: list[int] = []

    def other_writer_first(base: object, *args: object, **kwargs: object) -> object:
        if not raced:  # the other writer's merge commits between this one's plan and commit
            raced.append(len(_data_files(uri)))
            monkeypatch.setattr(lance.LanceDataset, "commit", staticmethod(real))
            two.compact()
        return real(base, *args, **kwargs)

    monkeypatch.setattr(lance.LanceDataset, "commit", staticmethod(other_writer_first))
    one.compact()  # its merge conflicts; retried on the merged version, nothing is left to merge
    monkeypatch.undo()
    assert raced == [7]  # six appends and this writer's merged file, not yet committed
    assert [v.operation for v in one.versions()].count("compact") == 1
    one.cleanup(timedelta(0))  # no unreferenced=True: nothing unverified is left to remove
    latest = lance.dataset(uri)
    assert _data_files(uri) == {f.path for fragment in latest.get_fragments() for f in fragment.data_files()}
    assert [r.text for r in one.records("s0")] == ["message 0", "message 2", "message 4"]


def _index_dirs_with_files(uri: str) -> set[str]:
    root = os.path.join(uri, "_indices")
    return {d for d in os.listdir(root) if any(files for _, _, files in os.walk(os.path.join(root, d)))}


def _on_commit_of(kind: type, then: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Run ``then`` once, just before the first commit of a ``kind`` operation (a race lost to it)."""
    real = lance.LanceDataset.commit
    ran: list[int] = []

    def commit(base: object, transaction: Any, *args: object, **kwargs: object) -> object:
        if not ran and isinstance(getattr(transaction, "operation", None), kind):
            ran.append(1)
            monkeypatch.setattr(lance.LanceDataset, "commit", staticmethod(real))
            then()
        return real(base, transaction, *args, **kwargs)

    monkeypatch.setattr(lance.LanceDataset, "commit", staticmethod(commit))
    return ran


def test_an_index_build_that_loses_to_another_writers_leaves_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = str(tmp_path / "memory.lance")
    one = _six_messages(uri)
    assert not os.path.exists(os.path.join(uri, "_indices"))  # too few rows to index yet
    two = ContextStore.open(uri, embedder=None, compaction=CompactionPolicy(enabled=False))
    ran = _on_commit_of(lance.LanceOperation.CreateIndex, two.compact, monkeypatch)
    one.compact()  # its index build conflicts; retried, it finds the indexes built
    monkeypatch.undo()
    assert ran == [1]
    assert [v.operation for v in one.versions()].count("index") == 1
    one.cleanup(timedelta(0))  # no unreferenced=True: nothing unverified is left to remove
    named = {str(s.uuid) for index in lance.dataset(uri).describe_indices() for s in index.segments}
    assert _index_dirs_with_files(uri) == named
    assert [h.record.text for h in one.search("message 4", k=1, mode="text", run_id="s0")] == ["message 4"]


def test_a_merge_reported_lost_after_it_landed_keeps_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge whose commit landed but came back as a conflict keeps the files its version reads.

    Lance recognises its own commit after an answer lost on the way back from S3
    (``tests/reliability``); this stands for any path where a landed commit looks lost.
    """
    uri = str(tmp_path / "memory.lance")
    store = _six_messages(uri)
    real = lance.LanceDataset.commit
    landed: list[int] = []

    def answer_lost(base: object, transaction: Any, *args: object, **kwargs: object) -> object:
        new = real(base, transaction, *args, **kwargs)
        if not landed and isinstance(transaction.operation, lance.LanceOperation.Rewrite):
            landed.append(int(new.version))
            raise OSError(f"Retryable commit conflict for version {new.version}: preempted. Please retry.")
        return new

    monkeypatch.setattr(lance.LanceDataset, "commit", staticmethod(answer_lost))
    store.compact()
    monkeypatch.undo()
    assert len(landed) == 1
    merged = lance.dataset(uri, version=landed[0])
    for fragment in merged.get_fragments():
        for data_file in fragment.data_files():
            assert os.path.exists(os.path.join(uri, "data", data_file.path))
    assert merged.count_rows() == 6
    assert [r.text for r in store.records("s0")] == ["message 0", "message 2", "message 4"]
