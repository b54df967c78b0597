"""Merging a branch into another, and reviewing it first, through the public API."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lance_context import (
    ContextRecord,
    ContextStore,
    HashingEmbedder,
    InvalidFilterError,
    MergeConflictError,
    ReadOnlyError,
    VersionNotFoundError,
)

from .conftest import text


def ids(store: ContextStore, run_id: str | None = None) -> list[str]:
    return [r.id for r in store.records(run_id, with_vectors=False)]


def texts(store: ContextStore, run_id: str) -> list[str | None]:
    return [r.text for r in store.records(run_id, with_vectors=False)]


@pytest.fixture
def forked(store: ContextStore) -> tuple[ContextStore, ContextStore]:
    """main with three messages of session s1 and a note in s2, and a branch forked there."""
    store.add([text("I am allergic to peanuts", id="m1"), text("We fly to Porto on May 3", id="m2")])
    store.add([text("I love lighthouses", id="m3"), text("note", run_id="s2", id="n1")])
    return store, store.branch("work")


def test_merge_applies_adds_changes_and_deletes_as_one_version(
    forked: tuple[ContextStore, ContextStore],
) -> None:
    main, work = forked
    work.add(text("Summary: peanut allergy, Porto on May 3", id="sum", role="assistant"))
    work.upsert(text("I love lighthouses and old harbours", id="m3"))
    work.delete(["m1", "n1"])
    before = main.version()

    result = main.merge("work")

    assert result.merged and result.version == before + 1 == main.version()
    assert main.versions()[-1].operation == "merge"
    touched = main.changes_between(before, result.version)
    assert touched is not None and touched.sessions == {"s1", "s2"}  # caches of other sessions survive
    assert ids(main, "s1") == ["m2", "sum", "m3"]  # the branch's upsert moved m3 to the end, as on the branch
    assert main.get("m3").text == "I love lighthouses and old harbours"  # type: ignore[union-attr]
    assert main.get("m1") is None and ids(main, "s2") == []
    assert [(c.kind, c.id) for c in result.changes] == [
        ("added", "sum"), ("changed", "m3"), ("deleted", "m1"), ("deleted", "n1")
    ]  # fmt: skip
    assert {s.run_id: [c.id for c in s.deleted] for s in main.review("work").plan.sessions} == {}
    assert ids(work) == ids(main)  # nothing else differs
    assert main.get("sum").embedding is not None  # type: ignore[union-attr]  # vectors come along


def test_a_branch_that_only_deletes_merges_both_ways(forked: tuple[ContextStore, ContextStore]) -> None:
    main, work = forked
    work.delete("m2")  # a clean-up job on a branch: deletes and nothing else

    result = main.merge("work")

    assert result.merged and [(c.kind, c.id) for c in result.changes] == [("deleted", "m2")]
    assert ids(main, "s1") == ["m1", "m3"] and ids(main, "s2") == ["n1"]
    main.delete("n1")
    back = main.merge("main", into="work")  # and main's own delete goes the other way
    assert [(c.kind, c.id) for c in back.changes] == [("deleted", "n1")]
    assert ids(work) == ids(main) == ["m1", "m3"]


def test_appends_on_both_sides_keep_each_sides_order_target_first(
    forked: tuple[ContextStore, ContextStore],
) -> None:
    main, work = forked
    work.add(text("branch 1", id="b1"))
    main.add(text("main 1", id="a1"))
    work.add([text("branch 2", id="b2"), text("branch 3", id="b3")])
    main.add(text("main 2", id="a2"))

    main.merge("work")
    main.add(text("main 3", id="a3"))

    assert ids(main, "s1") == ["m1", "m2", "m3", "a1", "a2", "b1", "b2", "b3", "a3"]
    assert ids(main, "s1")[-1] == "a3"  # later appends still sort after the merged records
    assert main.records("s1", last=2)[0].id == "b3"


def test_merging_twice_changes_nothing_and_later_changes_merge_alone(
    forked: tuple[ContextStore, ContextStore],
) -> None:
    main, work = forked
    work.add(text("first", id="b1"))
    work.delete("m2")
    main.merge("work")
    version, snapshot = main.version(), ids(main)

    again = main.merge("work")
    assert not again.merged and again.version == version == main.version()
    assert again.changes == [] and ids(main) == snapshot
    assert "nothing to merge" in str(again)

    work.add(text("second", id="b2"))
    third = main.merge("work")
    assert [(c.kind, c.id) for c in third.changes] == [("added", "b2")]
    assert ids(main, "s1") == ["m1", "m3", "b1", "b2"]


def test_a_record_changed_on_both_sides_is_a_conflict(forked: tuple[ContextStore, ContextStore]) -> None:
    main, work = forked
    main.upsert(text("allergic to peanuts and cashews", id="m1"))
    work.upsert(text("allergic to peanuts (confirmed)", id="m1"))
    main.delete("m2")
    work.upsert(text("Porto, May 3, 10:40", id="m2"))
    work.add(text("unrelated", id="b1"))
    before = main.version()

    with pytest.raises(MergeConflictError) as failed:
        main.merge("work")
    assert main.version() == before and main.get("b1") is None  # nothing written
    conflicts = {c.id: (c.ours, c.theirs) for c in failed.value.conflicts}
    assert conflicts == {
        "m1": ("allergic to peanuts and cashews", "allergic to peanuts (confirmed)"),
        "m2": (None, "Porto, May 3, 10:40"),
    }
    assert "on_conflict='ours'" in str(failed.value)

    review = main.review("work")
    assert [c.id for c in review.conflicts] == ["m1", "m2"]
    assert [c.id for c in review.plan.changes] == ["b1"]

    other = main.branch("other")  # main as it is now, to merge the other way below
    ours = main.merge("work", on_conflict="ours")
    assert main.get("m1").text == "allergic to peanuts and cashews"  # type: ignore[union-attr]
    assert main.get("m2") is None and main.get("b1") is not None
    assert len(ours.conflicts) == 2 and "2 conflicts kept ours" in str(ours)
    # resolved: the branch's versions of m1 and m2 were merged (and not taken), so they stay out
    assert not main.merge("work", on_conflict="theirs").merged

    theirs = main.merge("work", into="other", on_conflict="theirs")
    assert {c.id for c in theirs.changes} == {"m1", "m2", "b1"}
    assert other.get("m1").text == "allergic to peanuts (confirmed)"  # type: ignore[union-attr]
    assert other.get("m2").text == "Porto, May 3, 10:40"  # type: ignore[union-attr]
    assert not main.merge("work", into="other").merged  # resolved: nothing left to merge


def test_the_same_change_on_both_sides_is_no_conflict(forked: tuple[ContextStore, ContextStore]) -> None:
    main, work = forked
    for side in (main, work):
        side.delete("m1")
        side.add(text("same new record", id="same", created_at=main.get("m2").created_at))  # type: ignore[union-attr]
    result = main.merge("work")
    assert result.conflicts == [] and not result.merged


def test_an_update_in_place_on_the_branch_keeps_the_target_position(
    forked: tuple[ContextStore, ContextStore],
) -> None:
    main, work = forked
    work.upsert(text("allergic to peanuts (edited)", id="m1"), keep_order=True)
    main.add(text("later on main", id="a1"))
    main.merge("work")
    assert ids(main, "s1") == ["m1", "m2", "m3", "a1"]
    assert texts(main, "s1")[0] == "allergic to peanuts (edited)"


def test_branches_of_branches_and_main_into_a_branch(forked: tuple[ContextStore, ContextStore]) -> None:
    main, work = forked
    work.add(text("on work", id="w1"))
    deeper = work.branch("deeper")
    deeper.add(text("on deeper", id="d1"))
    main.add(text("on main", id="a1"))

    assert [c.id for c in main.merge("deeper").changes] == ["w1", "d1"]  # everything since main forked
    assert ids(main, "s1")[-3:] == ["a1", "w1", "d1"]
    into_work = main.merge("main", into="work")  # main's news reach the branch, the other way round
    assert [c.id for c in into_work.changes] == ["a1", "d1"]
    assert ids(work, "s1")[-3:] == ["w1", "a1", "d1"]


def test_bad_merges_say_what_to_do(store: ContextStore, forked: tuple[ContextStore, ContextStore]) -> None:
    main, _ = forked
    with pytest.raises(VersionNotFoundError, match="no branch named 'nope'"):
        main.merge("nope")
    with pytest.raises(InvalidFilterError, match="into itself"):
        main.merge("main")
    with pytest.raises(InvalidFilterError, match="on_conflict"):
        main.merge("work", on_conflict="mine")  # type: ignore[arg-type]
    reader = ContextStore.open(main.uri, embedder=HashingEmbedder(32), read_only=True)
    with pytest.raises(ReadOnlyError):
        reader.merge("work")
    past = ContextStore.open(main.uri, embedder=HashingEmbedder(32)).checkout(2)
    with pytest.raises(ReadOnlyError, match="checkout_latest"):
        past.merge("work")


def test_review_writes_nothing_and_predicts_the_merged_results(
    forked: tuple[ContextStore, ContextStore],
) -> None:
    main, work = forked
    work.add(text("Summary: Ada is allergic to peanuts; avoid satay", id="sum", role="assistant"))
    work.delete("m1")
    work.upsert(text("I love lighthouses, especially in Porto", id="m3"))
    main.add(text("peanut butter is in the pantry", id="a1"))
    queries = ["which food is Ada allergic to", "lighthouses in Porto", "pantry"]
    versions, branch_versions = len(main.versions()), len(work.versions())

    review = main.review("work", queries=queries, k=2)

    assert len(main.versions()) == versions and len(work.versions()) == branch_versions
    assert [(s.run_id, [c.id for c in s.added], [c.id for c in s.changed], [c.id for c in s.deleted])
            for s in review.sessions] == [("s1", ["sum"], ["m3"], ["m1"])]  # fmt: skip
    food = review.queries[0]
    assert (food.branch[0].id, food.branch[0].mark) == ("sum", "+")
    assert "sum" in food.added
    shown = str(review)
    assert "work@" in shown and " into main@" in shown and "+ [assistant] Summary: Ada is allergic" in shown
    assert "- [user] I am allergic to peanuts" in shown and "~ [user] I love lighthouses" in shown
    json.dumps(review.to_dict())

    main.merge("work")
    for query_review in review.queries:  # vector search: the prediction is exact
        after = main.search(query_review.query, k=2)
        assert [h.id for h in query_review.merged] == [h.record.id for h in after]
        assert [h.score for h in query_review.merged] == pytest.approx([h.score for h in after])


def test_summaries_show_control_characters_escaped_so_columns_line_up() -> None:
    from lance_context._mergeplan import summarize

    assert summarize("ok \x1b[31mred\x07", "text/plain", None) == "ok \\x1b[31mred\\x07"
    assert len(summarize("\x1b" * 100, "text/plain", None, width=20)) == 20


def test_merging_an_unchanged_branch_again_keeps_what_the_target_did_since(
    forked: tuple[ContextStore, ContextStore],
) -> None:
    main, work = forked
    work.add(text("Summary: peanut allergy", id="sum", role="assistant"))
    assert main.merge("work").merged
    main.delete(["sum"])  # main drops the merged summary
    main.upsert(text("We fly to Porto on May 4", id="m2"))

    again = main.merge("work")  # the branch changed nothing since it was merged

    assert not again.merged and again.changes == [] and again.conflicts == []
    assert main.get("sum") is None and main.get("m2").text == "We fly to Porto on May 4"  # type: ignore[union-attr]
    # what the branch changes after the merge still comes over, and only that
    work.upsert(text("I love lighthouses and old harbours", id="m3"))
    later = main.merge("work")
    assert [(c.kind, c.id) for c in later.changes] == [("changed", "m3")]
    assert main.get("sum") is None and main.get("m3").text == "I love lighthouses and old harbours"  # type: ignore[union-attr]


def test_merging_the_target_back_into_the_branch_starts_from_the_last_merge(
    forked: tuple[ContextStore, ContextStore],
) -> None:
    main, work = forked
    work.add(text("from the branch", id="b1"))
    main.merge("work")
    main.add(text("on main after the merge", id="a1"))
    work.delete(["b1"])  # the branch drops its own record after it was merged

    back = work.merge("main", into="work")  # main's history since the merge comes over; b1 stays gone

    assert [(c.kind, c.id) for c in back.changes] == [("added", "a1")]
    assert work.get("b1") is None and work.get("a1") is not None
    forward = main.merge("work")  # and the branch's delete then reaches main
    assert [(c.kind, c.id) for c in forward.changes] == [("deleted", "b1")]


def test_a_new_vector_alone_is_a_change_that_review_diff_and_merge_carry(tmp_path: Any) -> None:
    store = ContextStore.open(str(tmp_path / "vectors"), embedder=None, dimension=4)
    store.add(ContextRecord(id="a", run_id="s1", text_payload="a", embedding=[1.0, 0.0, 0.0, 0.0]))
    fork = store.version()
    work = store.branch("work")
    work.upsert(
        ContextRecord(id="a", run_id="s1", text_payload="a", embedding=[0.0, 0.0, 0.0, 1.0]), keep_order=True
    )

    assert [(c.kind, c.id) for c in store.review("work").plan.changes] == [("changed", "a")]
    change = work.diff(fork)
    assert [r.id for r in change.added] == ["a"] and [r.id for r in change.removed] == ["a"]
    assert store.merge("work").merged
    assert store.get("a").embedding.tolist() == [0.0, 0.0, 0.0, 1.0]  # type: ignore[union-attr]
    assert store.search([0.0, 0.0, 0.0, 1.0], k=1)[0].record.id == "a"


def test_merging_a_change_to_an_id_main_stores_twice_leaves_one_copy(store: ContextStore) -> None:
    store.add(text("first", id="a"))
    store.add([text("second", id="a"), text("after", id="b")])  # add() of an id again: a second copy
    assert store.count() == 3
    work = store.branch("work")
    work.upsert(text("edited", id="a"))
    work.add(text("new", id="c"))
    assert work.count() == 3

    result = store.merge("work")

    assert result.merged and result.version == store.version()
    assert store.count() == work.count() == 3  # not two copies of "a" beside "b" and "c"
    assert [(r.id, r.text) for r in store.records("s1")] == [(r.id, r.text) for r in work.records("s1")]
    assert [h.record.text for h in store.search("edited", k=5, mode="text", run_id="s1")] == ["edited"]
    reopened = ContextStore.open(store.uri, embedder=None)
    assert reopened.count() == 3 and reopened.get("a").text == "edited"  # type: ignore[union-attr]
