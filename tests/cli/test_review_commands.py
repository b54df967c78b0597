"""``review``, ``merge``, ``searches`` and ``replay`` on a store with a consolidation branch."""

from __future__ import annotations

from pathlib import Path

import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder

from .conftest import InProcess, run_cli


@pytest.fixture
def store_uri(tmp_path: Path) -> str:
    uri = str(tmp_path / "memory.lance")
    store = ContextStore.open(uri, embedder=HashingEmbedder(32))
    store.add(
        [
            ContextRecord.from_content("Ada is allergic to peanuts", run_id="ada", id="a1"),
            ContextRecord.from_content("Ada likes green tea", run_id="ada", id="a2"),
        ]
    )
    branch = store.branch("consolidate")
    branch.add(ContextRecord.from_content("Ada: allergic to peanuts and shellfish", run_id="ada", id="a3"))
    branch.delete(ids=["a1"])
    store.add(ContextRecord.from_content("Bob likes coffee", run_id="bob", id="b1"))
    store.search("allergic peanuts", k=2, record=True)
    return uri


def test_review_shows_the_plan_and_each_query_before_and_after(in_process: InProcess, store_uri: str) -> None:
    shown, as_json = in_process.many(
        ("review", store_uri, "consolidate", "-q", "what is Ada allergic to", "-k", "2"),
        ("review", store_uri, "consolidate", "-q", "what is Ada allergic to", "-k", "2", "--json"),
    )
    assert shown.code == 0, shown.err
    assert "1 added, 0 changed, 1 deleted, 0 conflicts" in shown.out
    assert "+ [user] Ada: allergic to peanuts and shellfish" in shown.out
    assert "- [user] Ada is allergic to peanuts" in shown.out
    assert "'what is Ada allergic to' (vector, top 2)" in shown.out
    data = as_json.json()
    assert [q["query"] for q in data["queries"]] == ["what is Ada allergic to"]
    assert ContextStore.open(store_uri, read_only=True, embedder=None).version() == 3  # nothing written


def test_merge_asks_then_writes_one_version(store_uri: str) -> None:
    # a real subprocess: this command group's entry point, asking with stdin not a terminal
    refused = run_cli("merge", store_uri, "consolidate")
    assert refused.code == 2 and "pass --yes" in refused.err
    assert ContextStore.open(store_uri, read_only=True, embedder=None).version() == 3
    merged = run_cli("merge", store_uri, "consolidate", "--yes")
    assert merged.code == 0, merged.err
    assert "merged consolidate@4 into main, now main@4: 1 added, 0 changed, 1 deleted" in merged.out
    after = ContextStore.open(store_uri, read_only=True, embedder=None)
    assert [r.id for r in after.records("ada")] == ["a2", "a3"] and after.version() == 4
    again = run_cli("merge", store_uri, "consolidate", "--yes", "--json").json()
    assert again["merged"] is False and again["version"] == 4  # merging twice writes nothing


def test_searches_list_the_log_and_replay_explains_changes(in_process: InProcess, store_uri: str) -> None:
    listed = in_process("searches", store_uri, "--json").json()
    assert [(e["query"], e["mode"], e["k"]) for e in listed] == [("allergic peanuts", "vector", 2)]
    search_id = listed[0]["id"]
    same = in_process("replay", store_uri, search_id)
    assert same.code == 0 and "the same results, in the same order" in same.out
    assert in_process("merge", store_uri, "consolidate", "--yes").code == 0
    changed = in_process("replay", store_uri, search_id, "--at", "latest")
    assert changed.code == 0, changed.err
    assert "'Ada is allergic to peanuts' left (was #1): deleted since" in changed.out
    missing = in_process("replay", store_uri, "nope")
    assert missing.code == 1 and missing.err.count("\n") == 1 and "nope" in missing.err
    assert f"`lance-context searches {store_uri}` lists the recorded ones" in missing.err
    bad = in_process("replay", store_uri, search_id, "--at", "soon")
    assert bad.code == 2 and "give logged, latest or a version number" in bad.err


def test_a_conflicting_merge_says_which_flag_decides(in_process: InProcess, store_uri: str) -> None:
    store = ContextStore.open(store_uri, embedder=HashingEmbedder(32))
    store.upsert(ContextRecord.from_content("Ada likes black tea", run_id="ada", id="a2"))
    ContextStore.open(store_uri, embedder=HashingEmbedder(32), branch="consolidate").upsert(
        ContextRecord.from_content("Ada likes jasmine tea", run_id="ada", id="a2")
    )
    before = store.version()
    refused = in_process("merge", store_uri, "consolidate", "--yes")
    assert refused.code == 1 and refused.err.count("\n") == 1
    assert "1 records changed on both main and consolidate since they forked" in refused.err
    assert "--on-conflict ours" in refused.err and "on_conflict=" not in refused.err
    assert ContextStore.open(store_uri, read_only=True, embedder=None).version() == before
    taken = in_process("merge", store_uri, "consolidate", "--on-conflict", "theirs", "--yes")
    assert taken.code == 0, taken.err
    assert (
        ContextStore.open(store_uri, read_only=True, embedder=None).get("a2").text == "Ada likes jasmine tea"
    )  # type: ignore[union-attr]


def test_diff_and_log_show_records_replaced_in_place_on_either_branch(
    in_process: InProcess, tmp_path: Path
) -> None:
    uri = str(tmp_path / "places.lance")
    store = ContextStore.open(uri, embedder=HashingEmbedder(16))
    store.add(
        [
            ContextRecord(id="a", run_id="s1", text_payload="a"),
            ContextRecord(id="b", run_id="s1", text_payload="b"),
        ]
    )
    branch = store.branch("x")
    # both sides replace a in place on top of the same version: same (id, seq), new files on each
    store.upsert(ContextRecord(id="a", run_id="s1", text_payload="a on main"), keep_order=True)
    branch.upsert(ContextRecord(id="a", run_id="s1", text_payload="a on x"), keep_order=True)
    branch.upsert(ContextRecord(id="b", run_id="s1", text_payload="b on x"), keep_order=True)
    diff, log = in_process.many(["diff", uri, "main", "x", "--json"], ["log", uri, "--branch", "x", "--json"])
    assert diff.code == 0, diff.err
    (session,) = diff.json()["sessions"]
    assert sorted(r["text"] for r in session["added"]) == ["a on x", "b on x"]
    assert sorted(r["text"] for r in session["removed"]) == ["a on main", "b"]
    assert log.code == 0, log.err
    upserts = [v for v in log.json() if v["operation"] == "upsert"]
    assert [(v["added"], v["removed"], v["sessions"]) for v in upserts] == [(1, 1, ["s1"])] * 2
