"""A handle on a branch deleted and made again refuses it, as a fresh read of the old branch would.

A branch made again under its name numbers its versions anew and may reach (or pass) the
version an open handle read. Every read through the old handle (its session tail cache and
a LangGraph saver's latest-checkpoint cache included) must then refuse with the public
``VersionNotFoundError`` rather than serve the deleted branch or silently switch to the new
one; a handle opened afterwards reads the new branch.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint

from lance_context import ContextStore, VersionNotFoundError
from lance_context.langgraph import LanceCheckpointSaver

from .conftest import text

_REMADE = r"branch 'side' was deleted and made again"


def contents(store: ContextStore, run_id: str | None = None, **kw: Any) -> list[object]:
    return [r.content for r in store.records(run_id, **kw)]


def _main(store: ContextStore) -> tuple[int, int]:
    store.add(text("m1"))
    early = store.add(text("m2"))
    later = store.add(text("m3"))
    return early, later


def _refused(*reads: Callable[[], object]) -> None:
    for read in reads:
        with pytest.raises(VersionNotFoundError, match=_REMADE) as caught:
            read()
        assert type(caught.value) is VersionNotFoundError


def _remake(store: ContextStore, from_version: int, adds: int) -> ContextStore:
    store.delete_branch("side")
    new = store.branch("side", from_version=from_version)
    for n in range(adds):
        new.add(text(f"new {n}"))
    return new


def test_reads_and_the_tail_cache_refuse_a_branch_made_again_to_the_same_version(store: ContextStore) -> None:
    early, later = _main(store)
    old = store.branch("side", from_version=early)
    old.add(text("old 1"))
    old.add(text("old 2"))
    assert contents(old, "s1", last=2) == ["old 1", "old 2"]  # now in the session tail cache
    pinned = old.at_version(old.version())
    new = _remake(store, later, 1)
    assert new.version() == old._state.handle.snapshot.version  # the same number on another branch
    _refused(
        lambda: contents(old, "s1", last=2),
        lambda: contents(old),
        old.version,
        old.count,
        old.versions,
        lambda: contents(pinned),
        lambda: old.add(text("through the old handle")),
    )
    fresh = ContextStore.open(store.uri, branch="side", embedder=None)
    assert contents(fresh, "s1", last=2) == ["m3", "new 0"] == contents(new, "s1", last=2)


@pytest.mark.parametrize("start", ["overlapping", "after"])
def test_a_branch_made_again_past_the_old_handle_is_refused_not_followed(
    store: ContextStore, start: str
) -> None:
    early, later = _main(store)
    old = store.branch("side", from_version=early)
    old.add(text("old 1"))
    assert contents(old, "s1", last=1) == ["old 1"]
    if start == "after":  # the new branch has no manifest of the version the old handle read
        for n in range(3):
            later = store.add(text(f"m{4 + n}"))
    new = _remake(store, later, 3)
    assert new.version() > old._state.handle.snapshot.version
    _refused(lambda: contents(old, "s1", last=1), old.version, lambda: old.checkout(1))
    assert contents(ContextStore.open(store.uri, branch="side", embedder=None))[-1] == "new 2"


def test_cleanup_and_other_writers_on_the_same_branch_are_followed(store: ContextStore) -> None:
    early, _ = _main(store)
    side = store.branch("side", from_version=early)
    reader = ContextStore.open(store.uri, branch="side", embedder=None)
    for word in "abcd":
        side.add(text(word))
    assert contents(reader, "s1", last=2) == ["c", "d"]
    side.add(text("e"))
    side.cleanup(older_than=timedelta(0), keep_versions=1)  # removes the manifest the reader read
    side.add(text("f"))
    assert contents(reader, "s1", last=2) == ["e", "f"] == contents(side, "s1", last=2)
    assert reader.version() == side.version()
    assert contents(reader.at_version(side.version())) == contents(side)


def test_a_checkpoint_saver_on_a_branch_made_again_refuses_its_cached_thread(store: ContextStore) -> None:
    early, later = _main(store)
    saver = LanceCheckpointSaver(store=store.branch("side", from_version=early))
    config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    for step in range(2):
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"value": step}
        saver.put(config, checkpoint, {"step": step}, {})  # type: ignore[typeddict-item]
    found = saver.get_tuple(config)  # now cached
    assert found is not None and found.checkpoint["channel_values"] == {"value": 1}
    _remake(store, later, 1)
    _refused(lambda: saver.get_tuple(config))
    fresh = LanceCheckpointSaver(uri=store.uri, cached_threads=0)
    fresh.store.checkout_branch("side")
    assert fresh.get_tuple(config) is None  # the new branch has no checkpoint of that thread


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_refused_branch_stays_refused_when_the_new_one_grows_past_it(
    where: str, store_path: str, request: pytest.FixtureRequest
) -> None:
    if where == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        uri, options = bucket.uri(), bucket.storage_options
    else:
        uri, options = store_path, None
    store = ContextStore.open(uri, storage_options=options, embedder=None)
    early, _ = _main(store)
    old = store.branch("side", from_version=early)
    for n in range(3):
        old.add(text(f"old {n}"))
    assert contents(old, "s1", last=1) == ["old 2"]
    new = _remake(store, early, 0)  # behind the old handle: seen on any store
    _refused(lambda: contents(old, "s1", last=1))
    for n in range(6):
        new.add(text(f"new {n}"))
    _refused(lambda: contents(old, "s1", last=1), old.version)  # never follows the new branch
    fresh = ContextStore.open(uri, branch="side", storage_options=options, embedder=None)
    assert contents(fresh, "s1", last=1) == ["new 5"]
