"""``upsert(replace_where=...)``: an object kept as several records is rewritten in one commit.

Concurrent writers are made to commit on top of one version every time: both wait at a
barrier in the core's ``commit_seq``, after reading the same snapshot.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from lance_context import ContextRecord, ContextStore, EncryptionPolicy, InvalidFilterError, _writer


def _parts(item: str, writer: str, names: list[str]) -> list[ContextRecord]:
    return [
        ContextRecord(
            id=f"{item}-{name}", run_id="items", text_payload=f"{writer} {name}", metadata={"item": item}
        )
        for name in names
    ]


def _item(store: ContextStore, item: str) -> dict[str, str]:
    return {r.id: r.text or "" for r in store.records(where={"metadata.item": item})}


@pytest.fixture
def store(tmp_path: Path) -> ContextStore:
    store = ContextStore.open(str(tmp_path / "store"), embedder=None)
    store.add(_parts("a", "old", ["main", "x", "y"]) + _parts("b", "old", ["main", "x"]))
    return store


def test_the_matching_records_not_written_are_deleted_in_the_same_commit(store: ContextStore) -> None:
    before = store.version()
    version = store.upsert(_parts("a", "new", ["main", "z"]), replace_where={"metadata.item": "a"})
    assert version == before + 1 == store.version()
    assert _item(store, "a") == {"a-main": "new main", "a-z": "new z"}
    assert _item(store, "b") == {"b-main": "old main", "b-x": "old x"}  # outside the filter
    diff = store.diff(before, version)
    assert sorted(r.id for r in diff.removed) == ["a-main", "a-x", "a-y"]
    assert sorted(r.id for r in diff.added) == ["a-main", "a-z"]
    old = ContextStore.open(store.uri, embedder=None).checkout(before)
    assert _item(old, "a") == {"a-main": "old main", "a-x": "old x", "a-y": "old y"}


def test_no_records_deletes_what_the_filter_matches(store: ContextStore) -> None:
    store.upsert([], replace_where={"metadata.item": "b"})
    assert _item(store, "b") == {} and len(_item(store, "a")) == 3


def test_a_bad_filter_writes_nothing(store: ContextStore) -> None:
    before = store.version()
    for bad, message in [
        ("a", "replace_where must be a filter dict"),
        ({"metadata.item": {"$bad": 1}}, "bad"),
    ]:
        with pytest.raises(InvalidFilterError, match=message):
            store.upsert(_parts("a", "new", ["main"]), replace_where=bad)  # type: ignore[arg-type]
    assert store.version() == before and _item(store, "a")["a-main"] == "old main"


def _at_once(monkeypatch: pytest.MonkeyPatch, uri: str, item: str, writes: dict[str, list[str]]) -> None:
    """Two handles upsert ``item`` with their own parts, both committing on top of one version."""
    barrier, real, local = threading.Barrier(len(writes), timeout=20), _writer.commit_seq, threading.local()

    def commit_seq(read_version: int, rows: int) -> int:
        if getattr(local, "waiting", False):
            local.waiting = False
            barrier.wait()
        return real(read_version, rows)

    monkeypatch.setattr(_writer, "commit_seq", commit_seq)
    handles = {writer: ContextStore.open(uri, embedder=None) for writer in writes}

    def write(writer: str) -> None:
        local.waiting = True
        handles[writer].upsert(_parts(item, writer, writes[writer]), replace_where={"metadata.item": item})

    threads = [threading.Thread(target=write, args=(w,)) for w in writes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.parametrize("item", ["a", "new"])
def test_concurrent_rewrites_of_one_object_leave_one_writers_parts(
    store: ContextStore, monkeypatch: pytest.MonkeyPatch, item: str
) -> None:
    """A stored object (its writers conflict) and a new one (Lance rebases both as compatible)."""
    writes = {"first": ["main", "p", "q"], "second": ["main", "r"]}
    for _ in range(3):
        _at_once(monkeypatch, store.uri, item, writes)
        found = ContextStore.open(store.uri, embedder=None)
        parts = _item(found, item)
        winner = parts[f"{item}-main"].split()[0]
        assert parts == {f"{item}-{name}": f"{winner} {name}" for name in writes[winner]}
        assert found.count() == len(parts) + (5 if item == "new" else 2)  # nothing else touched


def test_a_filter_on_sealed_metadata_is_refused_before_writing(tmp_path: Path) -> None:
    sealed = ContextStore.open(
        str(tmp_path / "sealed"), embedder=None, encryption=EncryptionPolicy(key=os.urandom(32))
    )
    sealed.add(_parts("a", "old", ["main", "x"]))
    before = sealed.version()
    with pytest.raises(InvalidFilterError, match="item"):
        sealed.upsert(_parts("a", "new", ["main"]), replace_where={"metadata.item": "a"})
    assert sealed.version() == before and _ids(sealed) == ["a-main", "a-x"]
    sealed.upsert(_parts("a", "new", ["main"]), replace_where={"run_id": "items", "id": {"$prefix": "a-"}})
    assert _ids(sealed) == ["a-main"] and sealed.get("a-main").text == "new main"  # type: ignore[union-attr]


def _ids(store: ContextStore) -> list[str]:
    return sorted(r.id for r in store.records())


def test_replace_keeps_a_record_another_writer_appended_meanwhile(
    store: ContextStore, monkeypatch: Any
) -> None:
    """``replace()`` of a session is a rewrite from what its caller read: a concurrent append is not lost."""
    other = ContextStore.open(store.uri, embedder=None)
    handle, real, appended = store._state.handle, store._state.handle.commit, []

    def commit(*args: Any, **kwargs: Any) -> Any:
        if not appended:
            appended.append(other.add(ContextRecord(id="late", run_id="items", text_payload="late")))
        return real(*args, **kwargs)

    monkeypatch.setattr(handle, "commit", commit)
    store.replace("items", _parts("a", "new", ["main"]))
    assert appended
    assert sorted(r.id for r in ContextStore.open(store.uri, embedder=None).records("items")) == [
        "a-main",
        "late",
    ]
