"""Versions are the heart of the product: checkout, tags, restore, branches, diff, cleanup."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

from lance_context import (
    ContextRecord,
    ContextStore,
    EmbedderMismatchError,
    HashingEmbedder,
    InvalidFilterError,
    ReadOnlyVersionError,
    VersionNotFoundError,
)
from lance_context._manifests import LocalManifests, latest_local_version
from lance_context.adapters import RecordChanges

from .conftest import text


def contents(store: ContextStore, run_id: str | None = None) -> list[object]:
    return [r.content for r in store.records(run_id)]


def test_checkout_shows_exactly_the_past_and_blocks_writes(store: ContextStore) -> None:
    v1 = store.add(text("one"))
    store.add(text("two"))
    store.checkout(v1)
    assert contents(store) == ["one"]
    assert store.count() == 1 and store.version() == v1
    assert [h.record.content for h in store.search("two one", k=5)] == ["one"]
    with pytest.raises(ReadOnlyVersionError) as info:
        store.add(text("three"))
    message = str(info.value)
    assert "checkout_latest()" in message and "restore(" in message and "branch(" in message
    with pytest.raises(ReadOnlyVersionError):
        store.delete(ids=["x"])
    store.checkout_latest()
    assert contents(store) == ["one", "two"]
    store.add(text("three"))
    assert contents(store) == ["one", "two", "three"]


def test_at_version_is_a_separate_read_only_view(store: ContextStore) -> None:
    v1 = store.add(text("one"))
    store.add(text("two"))
    view = store.at_version(v1)
    assert contents(view) == ["one"]
    assert contents(store) == ["one", "two"]
    with pytest.raises(
        ReadOnlyVersionError, match=r"read-only view of version \d+ \(at_version\(\)\)"
    ) as info:
        view.add(text("x"))
    assert "checkout_latest" not in str(info.value)  # it would not make the view writable


def test_missing_versions_and_tags(store: ContextStore) -> None:
    with pytest.raises(VersionNotFoundError, match="version 999"):
        store.checkout(999)
    with pytest.raises(VersionNotFoundError, match="no tag named 'nope'"):
        store.checkout("nope")
    for wrong in (-1, 0):
        with pytest.raises(VersionNotFoundError, match="numbered from 1"):
            store.checkout(wrong)
    with pytest.raises(VersionNotFoundError, match=f"version {2**64} does not exist"):
        store.checkout(2**64)
    with pytest.raises(KeyError):
        store.at_version("nope")


def test_tags(store: ContextStore) -> None:
    v1 = store.add(text("one"))
    store.tag("first")
    store.add(text("two"))
    assert store.tags() == {"first": v1}
    store.checkout("first")
    assert contents(store) == ["one"]
    store.checkout_latest()
    assert [i.tags for i in store.versions() if i.version == v1] == [("first",)]
    store.delete_tag("first")
    assert store.tags() == {}
    with pytest.raises(InvalidFilterError, match="invalid tag name"):
        store.tag("bad name'")


def test_restore_makes_the_past_the_new_latest(store: ContextStore) -> None:
    v1 = store.add(text("one"))
    v2 = store.add(text("two"))
    store.checkout(v1)
    restored = store.restore(v1)  # allowed while checked out
    assert restored > v2
    assert store.version() == restored
    assert contents(store) == ["one"]
    assert contents(store.at_version(v2)) == ["one", "two"]  # history intact
    assert store.versions()[-1].operation == "restore"
    store.add(text("after"))
    assert contents(store) == ["one", "after"]


def test_branches_are_isolated_both_ways(store: ContextStore) -> None:
    v1 = store.add(text("shared"))
    store.add(text("main only"))
    fork = store.branch("experiment", from_version=v1)
    assert contents(fork) == ["shared"]
    fork.add(text("branch only"))
    store.add(text("main again"))
    assert contents(fork) == ["shared", "branch only"]
    assert contents(store) == ["shared", "main only", "main again"]
    assert store.branches() == ["main", "experiment"]
    reopened = ContextStore.open(store.uri, branch="experiment")
    assert contents(reopened) == ["shared", "branch only"]
    store.checkout_branch("experiment")
    assert contents(store) == ["shared", "branch only"]
    store.checkout_branch("main")
    assert contents(store) == ["shared", "main only", "main again"]


def test_branch_from_checked_out_version_and_tags_on_branch(store: ContextStore) -> None:
    v1 = store.add(text("one"))
    store.add(text("two"))
    store.checkout(v1)
    fork = store.branch("alt")
    assert contents(fork) == ["one"]
    fork.add(text("alt-two"))
    fork.tag("alt-tip")
    assert fork.tags() == {"alt-tip": fork.version()}
    assert "alt-tip" not in store.tags()
    fork.checkout("alt-tip")
    assert contents(fork) == ["one", "alt-two"]


def test_branch_names(store: ContextStore) -> None:
    store.add(text("x"))
    store.branch("b1")
    with pytest.raises(InvalidFilterError, match="already exists"):
        store.branch("b1")
    with pytest.raises(InvalidFilterError, match="already exists"):
        store.branch("main")
    with pytest.raises(VersionNotFoundError, match="no branch named"):
        ContextStore.open(store.uri, branch="nope")
    store.delete_branch("b1")
    assert store.branches() == ["main"]


def test_refusals_that_a_retry_cannot_fix_say_what_to_do(store: ContextStore) -> None:
    store.add(text("x"))
    store.tag("first")
    with pytest.raises(InvalidFilterError, match=r"a tag named 'first' already exists \(on main@2\)"):
        store.tag("first")
    branch = store.branch("b")
    branch.add(text("y"))
    branch.tag("tip")
    with pytest.raises(InvalidFilterError, match=r"branch 'b' has tags \(\['tip'\]\)"):
        store.delete_branch("b")
    with pytest.raises(VersionNotFoundError, match=r"tag 'tip' belongs to branch 'b', not 'main'"):
        store.delete_tag("tip")  # main does not list it, and does not delete it either
    assert branch.tags() == {"tip": branch.version()}
    branch.delete_tag("tip")
    for bad in ("a..b", "a.", "a.lock"):  # names Lance refuses as references, refused first
        with pytest.raises(InvalidFilterError, match="without '..' and not ending in"):
            store.tag(bad)
        with pytest.raises(InvalidFilterError, match="invalid branch name"):
            store.branch(bad)
    branch.branch("c")
    with pytest.raises(InvalidFilterError, match=r"branch 'b' has branches made from it \(\['c'\]\)"):
        store.delete_branch("b")
    store.delete_branch("c")
    store.delete_branch("b")
    assert store.branches() == ["main"] and store.tags() == {"first": 2}


def test_diff(store: ContextStore) -> None:
    v1 = store.add([text("a", id="a"), text("b", id="b")])
    store.add(text("c", id="c"))
    store.delete(ids=["a"])
    store.upsert(text("b2", id="b"))
    change = store.diff(v1)
    assert sorted(r.content for r in change.added) == ["b2", "c"]
    assert sorted(r.content for r in change.removed) == ["a", "b"]
    assert change.from_version == v1 and change.to_version == store.version()
    reverse = store.diff(store.version(), v1)
    assert sorted(r.content for r in reverse.added) == ["a", "b"]
    before = store.version()
    store.upsert(text("c2", id="c"), keep_order=True)  # same id and position, new content
    in_place = store.diff(before)
    assert [r.content for r in in_place.added] == ["c2"] and [r.content for r in in_place.removed] == ["c"]
    assert store.diff(before, before).added == []
    compacted = store.version()
    store.compact()  # every row moves to a new file: nothing changed
    assert store.version() > compacted
    assert store.diff(compacted).added == [] and store.diff(compacted).removed == []


def test_restore_one_session_puts_its_records_back_where_they_were(store: ContextStore) -> None:
    store.add([text("a", id="a"), text("b", id="b"), text("c", id="c"), text("x", id="x", run_id="s2")])
    then = store.version()
    store.delete(ids=["b"])
    store.upsert(text("a2", id="a"))
    store.add([text("d", id="d"), text("y", id="y", run_id="s2")])
    store.checkout(then)  # works from a checked-out past version too

    restored = store.restore(then, run_id="s1")

    assert store.version() == restored and store.versions()[-1].operation == "restore"
    assert [r.content for r in store.records("s1")] == ["a", "b", "c"]
    assert [r.content for r in store.records("s2")] == ["x", "y"]  # another session keeps its own
    assert [r.id for r in store.diff(then).added] == ["y"] and store.diff(then).removed == []
    with pytest.raises(InvalidFilterError):
        store.restore(then, run_id="")


def test_restore_one_session_keeps_index_text_and_moved_ids_and_embeds_again_after_a_reembed(
    store_path: str,
) -> None:
    store = ContextStore.open(store_path, embedder=HashingEmbedder(8))
    store.add([
        ContextRecord.from_content("sure", run_id="s1", id="turn", search_text="Ana: zebra giraffe sure"),
        text("moves later", id="mover"),
    ])  # fmt: skip
    then = store.version()
    store.upsert(text("now in s2", id="mover", run_id="s2"))  # an id another session holds since
    store.add(text("later", id="later"))
    store.reembed(HashingEmbedder(16), progress=False)
    without_model = ContextStore.open(store_path, embedder=None)
    before = without_model.version()
    with pytest.raises(EmbedderMismatchError, match="needs today's model to embed them again"):
        without_model.restore(then, run_id="s1")  # would leave the records without vectors
    assert without_model.version() == before

    store.restore(then, run_id="s1")

    assert [r.id for r in store.records("s1")] == ["turn"] and [r.id for r in store.records("s2")] == [
        "mover"
    ]
    assert [h.record.id for h in store.search("zebra", mode="text")] == ["turn"]  # indexed as written
    assert store.records("s1")[0].embedding.shape == (16,)  # type: ignore[union-attr]  # today's model


def test_versions_describe_operations(store: ContextStore) -> None:
    store.add(text("a", id="a"))
    store.upsert(text("a2", id="a"))
    store.delete(ids=["a"])
    ops = [v.operation for v in store.versions()]
    assert ops[0] == "create"
    assert ops[-3:] == ["add", "upsert", "delete"]
    assert store.versions()[-1].rows == 0


def test_time_travel_survives_compaction_and_cleanup_keeps_tagged(store: ContextStore) -> None:
    first = store.add(text("first"))
    store.tag("keep")
    for i in range(20):
        store.add(text(f"m{i}"))
    middle = store.version()
    store.compact()
    assert len(contents(store.at_version(first))) == 1
    assert len(contents(store.at_version(middle))) == 21
    time.sleep(0.05)
    stats = store.cleanup(older_than=timedelta(seconds=0))
    assert stats["old_versions"] > 0
    assert contents(store.at_version("keep")) == ["first"]  # tagged version kept
    with pytest.raises(VersionNotFoundError):
        store.checkout(middle)
    assert len(contents(store)) == 21


def test_cleanup_without_keep_tagged_drops_old_tags(store: ContextStore) -> None:
    store.add(text("a"))
    store.tag("old")
    store.add(text("b"))
    time.sleep(0.05)
    store.cleanup(older_than=timedelta(seconds=0), keep_tagged=False)
    assert store.tags() == {}
    assert contents(store) == ["a", "b"]


def test_cleanup_without_keep_tagged_keeps_the_tags_of_the_versions_it_keeps(store: ContextStore) -> None:
    first = store.add(text("a"))
    store.tag("gone", first)
    for word in "bcd":
        store.add(text(word))
    store.tag("newer", store.version() - 1)
    store.tag("latest")
    time.sleep(0.05)
    store.cleanup(older_than=timedelta(seconds=0), keep_tagged=False, keep_versions=2)
    assert set(store.tags()) == {"newer", "latest"}  # their versions are kept, so are they
    assert contents(store.at_version("newer")) == ["a", "b", "c"]
    with pytest.raises(VersionNotFoundError):
        store.checkout(first)


def test_reopen_in_a_new_process_and_time_travel(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=HashingEmbedder(32))
    v1 = store.add(text("one"))
    store.add(text("two"))
    store.tag("t1", v1)
    script = textwrap.dedent(
        f"""
        from lance_context import ContextStore
        store = ContextStore.open({store_path!r})
        print(store.embedder.name, store.embedder.dimension)
        print([r.content for r in store.records()])
        print([r.content for r in store.at_version("t1").records()])
        store.add(store.records()[0].__class__.from_content("three", run_id="s1"))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["hashing 32", "['one', 'two']", "['one']"]
    assert contents(store) == ["one", "two", "three"]


def test_cleanup_keeps_the_newest_versions_asked_for(store: ContextStore) -> None:
    versions = [store.add(text(f"m{i}")) for i in range(5)]
    time.sleep(0.05)
    store.cleanup(older_than=timedelta(seconds=0), keep_versions=3)
    assert len(contents(store.at_version(versions[-2]))) == 4
    with pytest.raises(VersionNotFoundError):
        store.checkout(versions[0])


def test_commits_say_which_sessions_they_may_have_changed(store: ContextStore) -> None:
    start = store.add(text("one", run_id="s1"))
    store.add([text("two", run_id="s2"), text("three", run_id="s3")])
    changes = store.changes_between(start, store.version())
    assert changes is not None and changes.sessions == {"s2", "s3"}
    mark = store.version()
    store.compact()
    assert store.version() > mark
    assert store.changes_between(mark, store.version()) == RecordChanges()  # maintenance only
    moved = text("moves from s3 to s1", run_id="s1")
    moved.id = store.records("s3")[0].id
    for write, touched in (
        (lambda: store.upsert(text("four", run_id="s1")), {"s1"}),
        (lambda: store.upsert(moved), {"s1", "s3"}),  # an upsert names the session an id left
        (lambda: store.delete(run_id="s2"), {"s2"}),
    ):
        mark = store.version()
        write()
        changes = store.changes_between(mark, store.version())
        assert changes is not None and changes.sessions == touched
    mark = store.version()
    store.restore(mark - 1)
    assert store.changes_between(mark, store.version()) is None  # not known: everything may have changed
    assert store.changes_between(store.version(), store.version() - 1) is None
    mark = store.add([text("wide", run_id=f"s{i}") for i in range(65)])  # too many sessions to list
    assert store.changes_between(mark - 1, mark) is None


def test_a_store_knows_what_its_own_commits_changed_without_reading_them_back(
    store_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = ContextStore.open(store_path, embedder=HashingEmbedder(32))
    other = ContextStore.open(store_path, embedder=HashingEmbedder(32))
    writer.add(text("one", run_id="s1"))
    writer.compact()  # builds the indexes
    start = writer.add([text("two", run_id="s2"), text("three", run_id="s3")])
    writer.add(text("four", run_id="s1"))
    writer.compact()  # merges the new rows and refreshes the indexes
    writer.delete(run_id="s2")
    end = writer.version()
    read_back = [other.changes_between(v - 1, v) for v in range(start + 1, end + 1)]
    assert read_back.count(RecordChanges()) >= 2 and read_back[0] == RecordChanges(frozenset({"s1"}))
    assert read_back[-1] == RecordChanges(frozenset({"s2"}))

    def no_transaction_reads(*args: object) -> None:
        raise AssertionError("read a transaction this store committed itself")

    monkeypatch.setattr("lance_context._history.record_changes", no_transaction_reads)
    assert [writer.changes_between(v - 1, v) for v in range(start + 1, end + 1)] == read_back
    with pytest.raises(AssertionError, match="committed itself"):
        other.changes_between(start, end)  # the other handle has to read them


def test_new_versions_on_a_local_store_are_found_by_one_file_lookup(store_path: str) -> None:
    reader, writer = ContextStore.open(store_path), ContextStore.open(store_path)
    branch = writer.branch("side")
    for store in (reader, branch):
        store.version()
        manifests = store._state.handle._manifests
        assert manifests is not None and manifests.known
        assert manifests.exists(store.version()) and not manifests.exists(store.version() + 1)
    writer.add(text("from another handle"))
    branch.add(text("on the branch"))
    assert contents(reader) == ["from another handle"]
    assert contents(ContextStore.open(store_path).checkout_branch("side")) == ["on the branch"]
    assert not LocalManifests.find("s3://bucket/store.lance", "main", 1).known
    assert not LocalManifests.find(store_path + "-missing", "main", 1).known


def test_a_local_store_opens_at_the_latest_version_whatever_the_hint_says(store_path: str) -> None:
    writer = ContextStore.open(store_path)
    for word in ("one", "two", "three"):
        writer.add(text(word))
    latest = writer.version()
    hint = Path(store_path, "_versions", "latest_version_hint.json")
    assert latest_local_version(store_path, "main") == latest
    hint.write_text(json.dumps({"version": latest - 2}))  # lagging behind a commit in flight
    assert ContextStore.open(store_path).version() == latest
    assert contents(ContextStore.open(store_path)) == ["one", "two", "three"]
    for broken in ("not json", json.dumps({"version": "x"}), json.dumps({"version": 10**6})):
        hint.write_text(broken)  # unreadable, or naming a version that is not there: Lance decides
        assert latest_local_version(store_path, "main") is None
        assert ContextStore.open(store_path).version() == latest
    hint.unlink()
    assert ContextStore.open(store_path).version() == latest
    branch = writer.branch("side")
    branch.add(text("on the branch"))
    assert latest_local_version(store_path, "side") == branch.version()
    assert contents(ContextStore.open(store_path).checkout_branch("side"))[-1] == "on the branch"


def test_a_store_whose_hinted_version_was_cleaned_up_opens_at_the_latest(store_path: str) -> None:
    writer = ContextStore.open(store_path)
    for word in ("one", "two", "three"):
        writer.add(text(word))
    hint = Path(store_path, "_versions", "latest_version_hint.json")
    hint.write_text(json.dumps({"version": 1}))
    writer.cleanup(timedelta(0), keep_versions=1)
    hint.write_text(json.dumps({"version": 1}))
    assert latest_local_version(store_path, "main") is None
    assert contents(ContextStore.open(store_path)) == ["one", "two", "three"]


def test_a_reader_finds_new_versions_after_another_process_cleaned_up_its_own(store_path: str) -> None:
    reader, writer = ContextStore.open(store_path), ContextStore.open(store_path)
    reader.add(text("first"))
    assert contents(reader) == ["first"]
    for word in ("second", "third"):
        writer.add(text(word))
    writer.cleanup(timedelta(0), keep_versions=1)  # the reader's version and its successor are gone
    assert contents(reader) == ["first", "second", "third"]


def test_a_store_opened_by_a_relative_path_has_branches_readable_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    store = ContextStore.open("mem.lance", embedder=HashingEmbedder(8))
    store.add(text("hello", run_id="a"))
    store.branch("side").add(text("on the side", run_id="a"))
    assert store.uri == str(tmp_path / "work" / "mem.lance")

    monkeypatch.chdir(tmp_path)  # another working directory, as a CLI or a server would have
    side = ContextStore.open(str(tmp_path / "work" / "mem.lance"), branch="side", embedder=HashingEmbedder(8))
    assert [r.text for r in side.records("a")] == ["hello", "on the side"]


def test_a_store_on_a_deleted_branch_says_so(store: ContextStore) -> None:
    store.add(text("x"))
    gone = store.branch("gone")
    gone.add(text("y"))
    store.delete_branch("gone")
    for call in (gone.records, lambda: gone.add(text("z"))):
        with pytest.raises(VersionNotFoundError, match=r"branch 'gone' no longer exists") as raised:
            call()
        assert ".rs:" not in str(raised.value)  # no source location of Lance's in what a user reads
    assert [r.text for r in store.records()] == ["x"]
