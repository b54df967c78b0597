"""Edge cases of checkout, tags, branches and restore: refusals that write nothing, stale handles."""

from __future__ import annotations

import multiprocessing
from typing import Any

import numpy as np
import pytest

from lance_context import (
    ContextStore,
    EmbedderMismatchError,
    HashingEmbedder,
    InvalidFilterError,
    ReadOnlyError,
    VersionNotFoundError,
)

from .conftest import text


def contents(store: ContextStore, run_id: str | None = None) -> list[object]:
    return [r.content for r in store.records(run_id)]


def test_a_read_only_store_or_view_changes_no_tag_and_no_branch(store: ContextStore) -> None:
    first = store.add(text("one"))
    store.tag("kept")
    store.add(text("two"))
    store.branch("side")
    reader = ContextStore.open(store.uri, read_only=True, embedder=None)
    view = store.at_version(first)
    before = (store.tags(), store.branches(), [v.version for v in store.versions()])
    for refused in (reader, view):
        for call, action in (
            (lambda s=refused: s.tag("new"), "create tag 'new'"),
            (lambda s=refused: s.tag("new", first), "create tag 'new'"),
            (lambda s=refused: s.delete_tag("kept"), "delete tag 'kept'"),
            (lambda s=refused: s.delete_branch("side"), "delete branch 'side'"),
        ):
            with pytest.raises(ReadOnlyError, match=f"cannot {action}: this store was opened read_only"):
                call()
    assert (store.tags(), store.branches(), [v.version for v in store.versions()]) == before
    store.checkout(first).tag("checked-out")  # a writable store names the version it has checked out
    assert store.tags() == {"kept": first, "checked-out": first}


def test_a_refused_session_restore_keeps_the_version_checked_out(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=HashingEmbedder(8))
    then = store.add(text("one"))
    store.add(text("two"))
    reader = ContextStore.open(store_path, read_only=True, embedder=None).checkout(then)
    with pytest.raises(ReadOnlyError, match="cannot restore session 's1'"):
        reader.restore(then, run_id="s1")
    assert reader.version() == then and contents(reader) == ["one"]

    store.reembed(HashingEmbedder(16), progress=False)
    without_model = ContextStore.open(store_path, embedder=None).checkout(then)
    latest = store.version()
    with pytest.raises(EmbedderMismatchError):
        without_model.restore(then, run_id="s1")
    assert without_model.version() == then and contents(without_model) == ["one"]
    assert store.version() == latest


def test_a_handle_on_a_branch_deleted_and_made_again_refuses_the_old_one(store: ContextStore) -> None:
    fork_point = store.add(text("main one"))
    store.add(text("main two"))
    old = store.branch("side")
    for word in ("a", "b", "c", "d"):
        old.add(text(f"old {word}"))
    old_version = old.version()
    store.delete_branch("side")
    new = store.branch("side", from_version=fork_point)
    assert new.version() < old_version  # the new branch's versions are behind what the old handle read
    for call in (old.records, old.version, lambda: old.add(text("through the old handle"))):
        with pytest.raises(VersionNotFoundError, match=r"branch 'side' was deleted and made again") as caught:
            call()
        assert type(caught.value) is VersionNotFoundError  # a public error class, not a private one
    assert contents(ContextStore.open(store.uri, branch="side")) == ["main one"]  # nothing written
    assert contents(new) == ["main one"]
    new.add(text("new side"))
    assert contents(new) == ["main one", "new side"]


def _remake_branch(uri: str, fork_point: int) -> None:
    store = ContextStore.open(uri, embedder=None)
    store.delete_branch("side")
    store.branch("side", from_version=fork_point)
    store.tag("from-child", fork_point)
    store.restore(fork_point)


def test_changes_made_by_another_process_are_seen_and_a_replaced_branch_refused(store: ContextStore) -> None:
    fork_point = store.add(text("main one"))
    store.add(text("main two"))
    old = store.branch("side")
    for word in ("a", "b", "c"):
        old.add(text(f"old {word}"))
    assert contents(old)[-1] == "old c"
    child = multiprocessing.get_context("spawn").Process(target=_remake_branch, args=(store.uri, fork_point))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    assert store.tags() == {"from-child": fork_point}
    assert contents(store) == ["main one"] and store.versions()[-1].operation == "restore"
    with pytest.raises(VersionNotFoundError, match=r"branch 'side' was deleted and made again"):
        old.add(text("through the old handle"))
    assert contents(ContextStore.open(store.uri, branch="side")) == ["main one"]


def test_numpy_version_numbers_are_version_numbers(store: ContextStore) -> None:
    first: Any = np.int64(store.add([text("one", id="one")]))  # as read from a table of versions
    store.add(text("two", id="two"))
    assert store.checkout(first).version() == int(first)
    assert contents(store.checkout_latest().at_version(first)) == ["one"]
    store.tag("first", first)
    assert store.tags() == {"first": int(first)}
    assert [r.id for r in store.diff(first).added] == ["two"]
    latest: Any = np.int32(store.version())
    assert [r.id for r in store.diff(latest, first).removed] == ["two"]
    assert contents(store.branch("from-numpy", from_version=first)) == ["one"]
    store.restore(first)
    assert contents(store) == ["one"]
    with pytest.raises(VersionNotFoundError, match="expected a version number or tag name"):
        store.checkout(np.bool_(True))  # type: ignore[arg-type]  # a flag is no version


def test_deleting_main_says_it_cannot_be(store: ContextStore) -> None:
    store.add(text("x"))
    with pytest.raises(InvalidFilterError, match="the main branch cannot be deleted"):
        store.delete_branch("main")
    assert store.branches() == ["main"] and contents(store) == ["x"]


def test_a_branch_made_again_up_to_the_version_an_old_handle_read_is_not_written_through_it(
    store: ContextStore,
) -> None:
    store.add(text("m1"))
    early = store.add(text("m2"))
    later = store.add(text("m3"))
    old = store.branch("side", from_version=early)
    old.add(text("old 1"))
    old.add(text("old 2"))
    store.delete_branch("side")
    new = store.branch("side", from_version=later)
    new.add(text("new 1"))
    assert new.version() == old._state.handle._ds.version  # the same number, another branch
    for write in (lambda: old.add(text("via the old handle")), lambda: old.delete(run_id="s1")):
        with pytest.raises(VersionNotFoundError, match=r"branch 'side' was deleted and made again"):
            write()
    assert contents(ContextStore.open(store.uri, branch="side")) == ["m1", "m2", "m3", "new 1"]


def test_restore_returns_its_own_version_when_another_writer_commits_right_after(store: ContextStore) -> None:
    first = store.add(text("one"))
    store.add(text("two"))
    other = ContextStore.open(store.uri, embedder=None)
    handle = store._state.handle
    write = handle.write

    def write_then_another_commit(*args: Any, **kwargs: Any) -> Any:
        result = write(*args, **kwargs)
        other.add(text("concurrent"))  # lands between the restore and the store reading its latest
        return result

    handle.write = write_then_another_commit  # type: ignore[method-assign]
    restored = store.restore(first)
    handle.write = write  # type: ignore[method-assign]

    assert contents(store.at_version(restored)) == ["one"]
    assert contents(store) == ["one", "concurrent"]


def test_a_view_refuses_a_branch_saying_it_is_a_view(store: ContextStore) -> None:
    first = store.add(text("one"))
    with pytest.raises(ReadOnlyError, match="read-only view"):
        store.at_version(first).branch("from-a-view")
    assert store.branches() == ["main"]
