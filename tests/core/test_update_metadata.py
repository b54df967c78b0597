"""``update_metadata``: change stored records' metadata in place, never undoing another write."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lance_context import (
    ContextRecord,
    ContextStore,
    EncryptionPolicy,
    HashingEmbedder,
    InvalidRecordError,
)


@pytest.fixture
def store(tmp_path: Path) -> ContextStore:
    store = ContextStore.open(str(tmp_path / "store"), embedder=HashingEmbedder(16))
    store.add(
        [ContextRecord(id=f"m{i}", run_id="s", text_payload=f"turn {i}", metadata={"n": i}) for i in range(3)]
    )
    store.add(ContextRecord(id="other", run_id="t", text_payload="elsewhere"))
    return store


def test_keys_are_set_in_place_and_everything_else_is_kept(store: ContextStore) -> None:
    before = {r.id: r for r in store.records("s")}
    version = store.update_metadata(["m1", "missing"], {"label": "kept", "n": 10})
    assert version == store.version()
    after = {r.id: r for r in store.records("s")}
    assert list(after) == ["m0", "m1", "m2"]  # its place in the session is kept
    assert after["m1"].metadata == {"n": 10, "label": "kept"}
    assert after["m1"].text == "turn 1" and after["m1"].created_at == before["m1"].created_at
    assert np.array_equal(after["m1"].embedding, before["m1"].embedding)  # type: ignore[arg-type]
    assert after["m0"] == before["m0"] and store.count() == 4
    assert [h.record.id for h in store.search("turn 1", k=1, mode="text")] == ["m1"]  # still indexed
    assert store.records("s", where={"metadata.label": "kept"})[0].id == "m1"


def test_a_function_gets_each_records_metadata(store: ContextStore) -> None:
    store.update_metadata(["m0", "m2"], lambda meta: {**meta, "n": meta["n"] + 100})
    assert [r.metadata["n"] for r in store.records("s")] == [100, 1, 102]


def test_nothing_stored_writes_nothing(store: ContextStore) -> None:
    before = store.version()
    assert store.update_metadata("missing", {"x": 1}) == before == store.version()


@pytest.mark.parametrize(
    ("ids", "patch", "message"),
    [
        (3, {"x": 1}, "ids must be an id or an iterable"),
        ([3], {"x": 1}, "ids must be strings"),
        ("m0", "x", "patch must be a dict"),
        ("m0", lambda meta: None, "must return the metadata dict"),
        ("m0", {"x": float("nan")}, "NaN"),
    ],
)
def test_bad_input_writes_nothing(store: ContextStore, ids: Any, patch: Any, message: str) -> None:
    before = store.version()
    with pytest.raises(InvalidRecordError, match=message):
        store.update_metadata(ids, patch)
    assert store.version() == before and store.get("m0").metadata == {"n": 0}  # type: ignore[union-attr]


def test_a_write_committed_meanwhile_is_patched_not_undone(store: ContextStore, monkeypatch: Any) -> None:
    """Another handle rewrites m1 after this update read it: the update runs again on its write."""
    other = ContextStore.open(store.uri, embedder=HashingEmbedder(16))
    handle, real, calls = store._state.handle, store._state.handle.commit, []

    def commit(*args: Any, **kwargs: Any) -> Any:
        if not calls:
            calls.append(
                other.upsert(ContextRecord(id="m1", run_id="s", text_payload="edited", metadata={"n": 7}))
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(handle, "commit", commit)
    store.update_metadata("m1", lambda meta: {**meta, "seen": True})
    assert calls  # the other write landed between this update's read and its commit
    found = ContextStore.open(store.uri, embedder=HashingEmbedder(16)).get("m1")
    assert found is not None and (found.text, found.metadata) == ("edited", {"n": 7, "seen": True})


def test_a_copy_added_meanwhile_is_patched_too(store: ContextStore, monkeypatch: Any) -> None:
    """Another handle add()s m1 again after this update read it: the copy reads show is patched."""
    other = ContextStore.open(store.uri, embedder=HashingEmbedder(16))
    handle, real, calls = store._state.handle, store._state.handle.commit, []

    def commit(*args: Any, **kwargs: Any) -> Any:
        if not calls:  # an append: Lance rebases the update over it without a conflict
            calls.append(
                other.add(ContextRecord(id="m1", run_id="s", text_payload="again", metadata={"n": 8}))
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(handle, "commit", commit)
    store.update_metadata("m1", lambda meta: {**meta, "n": meta["n"] * 10})
    assert calls
    fresh = ContextStore.open(store.uri, embedder=HashingEmbedder(16))
    found = fresh.get("m1")
    # as the add, then the update: the update patches the newest copy, the one reads show
    assert found is not None and (found.text, found.metadata) == ("again", {"n": 80})
    assert [r.text for r in fresh.records("s", where={"metadata.n": 80})] == ["again"]
    assert fresh.records("s", where={"metadata.n": 10}) == []  # no copy left with the older patch only


def test_an_encrypted_store_patches_sealed_metadata(tmp_path: Path) -> None:
    policy = EncryptionPolicy(key=os.urandom(32))
    sealed = ContextStore.open(str(tmp_path / "sealed"), embedder=None, encryption=policy)
    sealed.add(ContextRecord(id="a", run_id="s", text_payload="secret", metadata={"n": 1}))
    sealed.update_metadata("a", {"n": 2})
    found = ContextStore.open(str(tmp_path / "sealed"), embedder=None, encryption=policy).get("a")
    assert found is not None and (found.text, found.metadata) == ("secret", {"n": 2})
