"""Maintenance and opening leave no needless versions or looks behind them.

The version log is what users read (``versions()``, ``lance-context log``): building the
three scalar and full-text indexes used to write three "index" versions at a time, even
on an empty store (a fresh store's ``compact()`` went from version 1 to 4, and every
``reembed()`` or ``forget()`` added three). They are now built in one ``CreateIndex``
commit, and none is written when there is nothing to build. Opening reads its schema from
the snapshot it just opened instead of looking for newer versions twice more, and the
governance steps that only need version numbers list them (``version_refs``) instead of
reading every manifest (``versions``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import lance
import pytest

from lance_context import (
    ContextStore,
    EncryptionError,
    EncryptionPolicy,
    HashingEmbedder,
    IndexPolicy,
    RetentionPolicy,
)
from lance_context._dataset import DatasetHandle

from .conftest import text

INDEXES = {"run_id_idx", "id_idx", "search_text_idx"}


def indexes(store: ContextStore) -> set[str]:
    ds = lance.dataset(store.uri)
    if store.branch_name != "main":
        ds = ds.checkout_version((store.branch_name, None))
    return {index.name for index in ds.describe_indices()}


def operations_after(store: ContextStore, version: int) -> list[str]:
    return [v.operation for v in store.versions() if v.version > version]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], list[object]]:
    """``counted("versions")``: the calls of that ``LanceDataset`` method from now on."""

    def count(name: str) -> list[object]:
        calls: list[object] = []
        original = getattr(lance.LanceDataset, name)

        def counting(self: lance.LanceDataset, *args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(lance.LanceDataset, name, counting)
        return calls

    return count


# ---------------------------------------------------------------------- index versions
def test_compacting_an_empty_store_writes_no_version(store: ContextStore) -> None:
    store.compact()
    store.compact()
    assert store.version() == 1  # it was 4: three index builds on no rows
    assert [v.operation for v in store.versions()] == ["create"]
    store.add(text("first words"))
    assert [h.record.text for h in store.search("words", mode="text")] == ["first words"]


def test_compaction_builds_every_index_in_one_version(store: ContextStore) -> None:
    store.add([text(f"note {i} about apples", id=f"n{i}", run_id=f"s{i % 3}") for i in range(10)])
    before = store.version()
    store.compact()
    assert operations_after(store, before) == ["index"]  # it was three
    assert indexes(store) == INDEXES
    hits = store.search("apples", mode="text", k=10)
    assert len(hits) == 10
    assert [r.id for r in store.records("s1")] == ["n1", "n4", "n7"]
    assert store.get("n5") is not None
    built = store.version()
    store.compact()  # every index is current: nothing to build or refresh
    assert store.version() == built


def test_rows_added_after_the_build_are_folded_into_the_indexes(store: ContextStore) -> None:
    store.add([text(f"old note {i}", id=f"o{i}") for i in range(5)])
    store.compact()
    store.add([text(f"new note {i} pears", id=f"p{i}") for i in range(5)])
    before = store.version()
    store.compact()
    assert operations_after(store, before) == ["index"]  # the refresh
    ds = lance.dataset(store.uri)
    for name in INDEXES:
        assert ds.stats.index_stats(name)["num_unindexed_rows"] == 0, name
    assert sorted(h.record.id for h in store.search("pears", mode="text", k=10)) == [
        f"p{i}" for i in range(5)
    ]


def test_reembedding_rebuilds_the_indexes_in_one_version(store: ContextStore) -> None:
    store.add([text(f"note {i}", id=f"n{i}") for i in range(6)])
    store.compact()
    before = store.version()
    store.reembed(HashingEmbedder(16))
    assert operations_after(store, before) == ["reembed", "index"]  # it was reembed and three
    assert indexes(store) == INDEXES
    assert store.search("note 3", mode="hybrid", k=1)[0].record.id == "n3"


def test_maintenance_after_writes_builds_the_indexes_in_one_version(store_path: str) -> None:
    store = ContextStore.open(
        store_path, embedder=HashingEmbedder(8), indexing=IndexPolicy(scalar_refresh_rows=4)
    )
    for i in range(6):
        store.add(text(f"m{i}"))
    assert [v.operation for v in store.versions()].count("index") == 1
    assert indexes(store) == INDEXES


def test_forget_rebuilds_the_indexes_in_one_version(store: ContextStore) -> None:
    store.add([text(f"note {i} secret", id=f"n{i}") for i in range(5)])
    store.compact()
    report = store.forget(["n2"])
    written = report.versions_written["main"]
    assert [v.operation for v in store.versions() if v.version in written] == ["forget", "index"]
    assert indexes(store) == INDEXES
    assert "n2" not in {h.record.id for h in store.search("secret", mode="text", k=10)}


def test_a_branch_builds_its_own_indexes_in_one_version(store: ContextStore) -> None:
    store.add([text(f"note {i}", id=f"n{i}") for i in range(4)])
    branch = store.branch("draft")
    branch.add(text("branch only words", id="b"))
    before = branch.version()
    branch.compact()
    assert operations_after(branch, before) == ["compact", "index"]
    assert indexes(branch) == INDEXES
    assert indexes(store) == set()  # main is untouched
    assert [h.record.id for h in branch.search("branch only", mode="text", k=1)] == ["b"]


# ---------------------------------------------------------------------- opening
@pytest.fixture
def looks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The looks for a newer version (``DatasetHandle.latest``) made from now on."""
    calls: list[str] = []
    original = DatasetHandle.latest

    def latest(self: DatasetHandle) -> lance.LanceDataset:
        calls.append(self.branch)
        return original(self)

    monkeypatch.setattr(DatasetHandle, "latest", latest)
    yield calls


def test_opening_an_existing_store_looks_for_newer_versions_no_more(
    store: ContextStore, looks: list[str]
) -> None:
    store.add(text("hello"))
    looks.clear()
    ContextStore.open(store.uri)
    assert looks == []  # it was two: one in open(), one more for the encryption marker


def test_opening_an_encrypted_store_checks_its_key_without_another_look(
    store_path: str, looks: list[str]
) -> None:
    key, other = b"k" * 32, b"o" * 32
    ContextStore.open(store_path, embedder=None, encryption=EncryptionPolicy(key=key)).add(text("sealed"))
    looks.clear()
    reopened = ContextStore.open(store_path, encryption=EncryptionPolicy(key=key))
    assert looks == []
    assert [r.text for r in reopened.records()] == ["sealed"]
    with pytest.raises(EncryptionError, match="not the key given"):
        ContextStore.open(store_path, encryption=EncryptionPolicy(key=other))


def test_a_store_opened_earlier_still_reads_what_others_wrote_since(store: ContextStore) -> None:
    reader = ContextStore.open(store.uri)
    store.add(text("written after the reader opened", id="late"))
    assert [r.id for r in reader.records()] == ["late"]
    assert [r.id for r in reader.at_version(store.version()).records()] == ["late"]
    draft = reader.branch("draft")
    assert [r.id for r in draft.records()] == ["late"]
    assert reader.search("written after", k=1)[0].record.id == "late"


# ---------------------------------------------------------------------- version numbers
def test_forget_lists_version_numbers_without_reading_manifests(
    store: ContextStore, counted: Callable[[str], list[object]]
) -> None:
    for i in range(4):
        store.add(text(f"m{i}", id=f"m{i}"))
    read = counted("versions")
    store.forget(["m1"])
    assert read == []  # it read every manifest three times


def test_retention_reads_the_manifests_once_per_branch(
    store: ContextStore, counted: Callable[[str], list[object]]
) -> None:
    for i in range(4):
        store.add(text(f"m{i}"))
    read = counted("versions")
    later = datetime.now(timezone.utc) + timedelta(days=3)
    report = store.apply_retention(
        RetentionPolicy(keep_all=timedelta(0), hourly=None, daily=timedelta(0)), now=later
    )
    assert report.removed["main"] and len(read) == 1  # the ages; the versions left are only listed


def test_a_merge_whose_fork_point_was_erased_lists_the_older_versions(
    store: ContextStore, counted: Callable[[str], list[object]]
) -> None:
    store.add(text("hello", id="h"))
    store.add(text("a secret", run_id="alice"))
    fork = store.version()
    branch = store.branch("what-if")
    store.add(text("later", id="l"))
    store.forget(run_id="alice")
    branch.add(text("on the branch", id="b"))
    read = counted("versions")
    assert store.review("what-if").plan.base == ("main", fork - 1)
    assert [(c.kind, c.id) for c in store.merge("what-if").changes] == [("added", "b")]
    assert read == []
