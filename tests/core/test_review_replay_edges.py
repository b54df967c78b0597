"""Edge cases of review, merge and replay: conflicts kept, encrypted stores, versions gone."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from lance_context import (
    ContextStore,
    EncryptionPolicy,
    HashingEmbedder,
    InvalidFilterError,
    MergeConflictError,
    SearchError,
    VersionNotFoundError,
)
from lance_context._fingerprints import row_changes

from .conftest import text

KEY, NEW_KEY = bytes(range(32)), bytes(range(1, 33))


def ids(store: ContextStore) -> list[str]:
    return [r.id for r in store.records(with_vectors=False)]


def sealed(path: str, key: bytes = KEY, previous: tuple[bytes, ...] = ()) -> ContextStore:
    policy = EncryptionPolicy(key=key, previous_keys=previous)
    return ContextStore.open(path, embedder=HashingEmbedder(32), encryption=policy)


def files_holding(root: str, needle: bytes) -> list[str]:
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as handle:
                if needle in handle.read():
                    found.append(os.path.relpath(os.path.join(folder, name), root))
    return found


# ---------------------------------------------------------------------------------- merge


def test_conflicts_kept_ours_are_resolved_so_merging_again_writes_nothing(store: ContextStore) -> None:
    store.add([text("I am allergic to peanuts", id="a"), text("We fly on May 3", id="b")])
    work = store.branch("work")
    store.upsert(text("I am allergic to peanuts and cashews", id="a"))
    work.upsert(text("allergic to peanuts (checked)", id="a"))
    before = store.version()

    kept = store.merge("work", on_conflict="ours")  # the only difference is the conflict

    assert [c.id for c in kept.conflicts] == ["a"] and kept.changes == []
    assert kept.merged and kept.version == before + 1  # the resolution is recorded
    assert store.get("a").text == "I am allergic to peanuts and cashews"  # type: ignore[union-attr]
    again = store.merge("work")  # on_conflict="fail": nothing left to decide
    assert not again.merged and again.conflicts == [] and store.version() == kept.version
    assert store.review("work").conflicts == []
    back = store.merge("main", into="work")  # the branch takes the target's resolution
    assert [c.id for c in back.changes] == ["a"]
    assert work.get("a").text == "I am allergic to peanuts and cashews"  # type: ignore[union-attr]


def test_the_same_change_on_both_sides_of_an_encrypted_store_is_no_conflict(store_path: str) -> None:
    store = sealed(store_path)
    store.add([text("I am allergic to peanuts", id="a"), text("We fly on May 3", id="b")])
    work = store.branch("work")
    same = text("I am allergic to peanuts and cashews", id="a")
    store.upsert(same)
    work.upsert(same)  # sealed again, with a fresh nonce: other bytes, the same record

    result = store.merge("work")

    assert result.conflicts == [] and not result.merged


def test_merging_an_encrypted_branch_back_brings_nothing_that_only_moved(store_path: str) -> None:
    store = sealed(store_path)
    store.add([text("one", id="a"), text("two", id="b")])
    work = store.branch("work")
    work.add(text("three", id="c"))
    work.upsert(text("one, edited", id="a"))
    assert store.merge("work").merged  # the merge seals the branch's records again for main

    back = store.merge("main", into="work")

    assert not back.merged and back.changes == [], [str(c) for c in back.changes]


def test_a_key_rotation_on_the_target_conflicts_with_nothing(store_path: str) -> None:
    store = sealed(store_path)
    store.add([text("one", id="a"), text("two", id="b"), text("three", id="c")])
    work = store.branch("work")
    work.upsert(text("two, edited on the branch", id="b"))
    store.rotate_key(EncryptionPolicy(key=NEW_KEY, previous_keys=(KEY,)))
    rotated = sealed(store_path, NEW_KEY, (KEY,))

    result = rotated.merge("work")  # on_conflict="fail"

    assert [(c.kind, c.id) for c in result.changes] == [("changed", "b")]
    assert rotated.get("b").text == "two, edited on the branch"  # type: ignore[union-attr]
    assert [r.text for r in rotated.records(with_vectors=False)] == [
        "one",
        "three",
        "two, edited on the branch",
    ]


def test_row_changes_given_the_cipher_see_through_a_key_rotation(store_path: str) -> None:
    store = sealed(store_path)
    store.add([text("one", id="a"), text("two", id="b")])
    before = store.version()
    store.rotate_key(EncryptionPolicy(key=NEW_KEY, previous_keys=(KEY,)))
    rotated = sealed(store_path, NEW_KEY, (KEY,))
    handle, cipher = rotated._state.handle, rotated._state.cipher

    blind = row_changes(handle.at(before), handle.at(rotated.version()))
    seen = row_changes(handle.at(before), handle.at(rotated.version()), cipher=cipher)

    assert len(blind[0]) == 2  # without the key, sealed again looks like changed
    assert seen == ({}, {})


def test_a_review_then_a_target_change_then_the_merge_loses_nothing(store: ContextStore) -> None:
    store.add([text("one", id="a"), text("two", id="b")])
    work = store.branch("work")
    work.upsert(text("one, branch", id="a"))
    work.add(text("three", id="c"))
    review = store.review("work")
    assert [c.id for c in review.plan.changes] == ["a", "c"] and review.conflicts == []
    store.upsert(text("one, main", id="a"))  # after the review, before the merge

    with pytest.raises(MergeConflictError):
        store.merge("work")  # the merge plans again: it never applies the stale review
    assert store.get("a").text == "one, main"  # type: ignore[union-attr]
    result = store.merge("work", on_conflict="ours")
    assert [c.id for c in result.changes] == ["c"] and ids(store) == ["b", "a", "c"]


# --------------------------------------------------------------------------------- review


def test_review_on_an_encrypted_store_refuses_what_search_refuses(store_path: str) -> None:
    store = sealed(store_path)
    store.add(text("I am allergic to peanuts", id="a", metadata={"topic": "health"}))
    work = store.branch("work")
    work.add(text("peanut allergy confirmed", id="b", metadata={"topic": "health"}))
    version = store.version()

    with pytest.raises(SearchError, match="mode='vector'"):
        store.review("work", ["peanuts"], mode="text")  # the index holds no plaintext: it found nothing
    with pytest.raises(InvalidFilterError, match="encrypted"):
        store.review("work", ["peanuts"], where={("metadata", "topic"): "health"})
    assert store.version() == version
    assert [h.id for h in store.review("work", ["peanuts"], k=2).queries[0].merged] != []


# --------------------------------------------------------------------------------- replay


def test_replay_refuses_a_version_number_below_one_clearly(store: ContextStore) -> None:
    store.add(text("I am allergic to peanuts", id="a"))
    hits = store.search("peanuts", k=1, record=True)
    for at in (-1, 0):
        with pytest.raises(SearchError, match="version number"):
            store.replay(hits.search_id or "", at=at)


def test_replay_at_latest_after_cleanup_removed_the_logged_version_says_so(store: ContextStore) -> None:
    store.add(text("I am allergic to peanuts", id="a"))
    hits = store.search("peanuts", k=1, record=True)
    store.add(text("peanut butter is in the pantry", id="b"))
    store.add(text("more", id="c"))
    store.cleanup(older_than=timedelta(0), keep_versions=1)

    for at in ("latest", store.version()):
        with pytest.raises(VersionNotFoundError, match="was logged at|cannot compare") as caught:
            store.replay(hits.search_id or "", at=at)  # type: ignore[arg-type]
        assert "tag the versions" in str(caught.value)


def test_an_encrypted_stores_search_log_keeps_no_query_text(store_path: str, tmp_path: Path) -> None:
    store = sealed(store_path)
    store.add(text("my card PIN is 4321", id="a", run_id="u1"))
    hits = store.search("what is MY-SECRET-QUESTION-77 about my PIN", k=1, record=True)

    log_root = os.path.join(store_path, "_lance_context")
    assert files_holding(log_root, b"MY-SECRET-QUESTION-77") == []
    entry = store.search_log()[0]
    assert entry.query is None and entry.query_vector is not None
    replay = store.replay(hits.search_id or "")  # the records it reads are opened with the key
    assert replay.identical and replay.ids == ["a"] and "my card PIN" in str(replay)
    store.delete("a")
    later = store.replay(hits.search_id or "", at="latest")
    assert [(c.id, c.reason) for c in later.changes] == [("a", "deleted_since")]
