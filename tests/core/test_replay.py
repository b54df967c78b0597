"""Recording searches and replaying them, exactly or against today, through the public API."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import lance
import pytest

from lance_context import (
    CompactionPolicy,
    ContextStore,
    FusionOptions,
    HashingEmbedder,
    ReadOnlyError,
    SearchNotFoundError,
    SearchResults,
    VersionNotFoundError,
)

from .conftest import text

FACTS = [
    ("f1", "I am allergic to peanuts and cashews", "health"),
    ("f2", "We fly to Porto on May 3", "travel"),
    ("f3", "My sister Ines lives in Lisbon", "family"),
    ("f4", "Peanut butter is in the pantry", "food"),
    ("f5", "Book the lighthouse tour in Porto", "travel"),
]


@pytest.fixture
def facts(store: ContextStore) -> ContextStore:
    store.add(
        [
            text(t, run_id="chat", id=i, metadata={"topic": topic, "n": n})
            for n, (i, t, topic) in enumerate(FACTS)
        ]
    )
    return store


def test_a_recorded_search_is_a_list_with_its_log_id(facts: ContextStore) -> None:
    plain = facts.search("peanuts", k=2)
    recorded = facts.search("peanuts", k=2, record=True)
    assert isinstance(recorded, SearchResults) and isinstance(recorded, list)
    assert plain.search_id is None and recorded.search_id is not None
    assert recorded == plain and recorded[0].record.id == plain[0].record.id
    entry = facts.search_log()[0]
    assert entry.id == recorded.search_id and entry.query == "peanuts" and entry.k == 2
    assert entry.ids == [h.record.id for h in recorded]
    assert entry.version == facts.version() and entry.branch == "main"
    assert entry.embedder == "hashing" and entry.dimension == 32 and entry.query_vector is not None
    assert recorded.search_id in str(entry) and "'peanuts' (vector, k=2)" in str(entry)
    json.dumps(entry.to_dict())


def test_recording_changes_nothing_a_reader_sees(facts: ContextStore) -> None:
    version, versions, records = facts.version(), len(facts.versions()), facts.records()
    facts.record_searches = True
    for query in ("peanuts", "Porto", "Lisbon"):
        facts.search(query, k=3)
    facts.search("Porto", mode="text", k=2)
    assert facts.version() == version and len(facts.versions()) == versions
    assert facts.records() == records and facts.run_ids() == ["chat"]
    assert facts.diff(version).added == []
    assert os.path.isdir(os.path.join(facts.uri, "_lance_context", "search_log.lance"))
    log = facts.search_log()
    assert [e.query for e in log] == ["Porto", "Lisbon", "Porto", "peanuts"]  # newest first
    assert [e.mode for e in facts.search_log(limit=2)] == ["text", "vector"]
    facts.record_searches = False
    facts.search("nothing recorded", k=1)
    assert len(facts.search_log()) == 4
    assert facts.search("peanuts", k=1, record=True).search_id == facts.search_log(limit=1)[0].id


def test_replay_is_exact_after_writes_a_compaction_and_a_reembed(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=HashingEmbedder(32), compaction=CompactionPolicy(fanout=4))
    for n, (record_id, content, topic) in enumerate(FACTS):
        store.add(text(content, run_id="chat", id=record_id, metadata={"topic": topic, "n": n}))
    since = store.get("f2").created_at  # type: ignore[union-attr]
    recorded = [
        store.search("peanuts", k=3, record=True),
        store.search("Porto", k=2, mode="text", record=True),
        store.search("lighthouse in Porto", k=3, mode="hybrid", alpha=0.6, record=True),
        store.search("Porto lighthouse", k=3, mode="hybrid", record=True,
                     fusion=FusionOptions(method="minmax", weights={"text": 0.5, "vector": 0.5})),
        store.search("food", k=2, mmr=True, fetch_k=5, lambda_mult=0.3, record=True),
        store.search("Porto", k=4, run_id="chat", roles=["user"], since=since,
                     where={("metadata", "topic"): {"$in": ["travel", "food"]}}, record=True),
        store.search([0.1] * 32, k=2, record=True),
    ]  # fmt: skip
    for n in range(40):  # many later writes, compacted along the way
        store.add(text(f"later note {n} about peanuts and Porto", run_id=f"s{n % 3}"))
    store.delete("f1")
    store.upsert(text("We fly to Porto on May 4", run_id="chat", id="f2"))
    store.compact()
    store.reembed(HashingEmbedder(48))
    assert store.dimension == 48

    logged = {e.id: e for e in store.search_log()}
    assert logged[recorded[3].search_id or ""].options["fusion"]["method"] == "minmax"
    for hits in recorded:
        assert hits.search_id is not None
        replay = store.replay(hits.search_id)
        assert replay.identical and replay.ids == [h.record.id for h in hits]
        assert [h.score for h in replay.hits] == pytest.approx([h.score for h in hits])
        assert "the same results, in the same order" in str(replay)
    reopened = ContextStore.open(store_path, embedder=HashingEmbedder(48))
    assert reopened.replay(recorded[4].search_id or "").identical  # from another store object


def test_replay_at_latest_explains_each_change(facts: ContextStore) -> None:
    hits = facts.search("peanuts Porto", k=3, record=True)
    gone, edited = hits[0].record.id, hits[1].record.id
    facts.delete(gone)
    facts.upsert(text("an entirely different text", run_id="chat", id=edited))
    facts.add(text("Summary: peanuts, Porto, peanuts Porto", run_id="chat", id="sum"))

    replay = facts.replay(hits.search_id or "", at="latest")

    assert not replay.identical and replay.version == facts.version()
    reasons = {c.id: c.reason for c in replay.changes}
    assert (reasons["sum"], reasons[gone], reasons[edited]) == (
        "added_since",
        "deleted_since",
        "changed_since",
    )
    assert set(reasons.values()) <= {"added_since", "deleted_since", "changed_since", "displaced"}
    for change in replay.changes:
        if change.reason == "displaced":
            assert change.by and set(change.by) <= {"sum", gone, edited, *replay.ids}
    shown = str(replay)
    assert f"then (main@{replay.search.version}):" in shown and "what changed:" in shown
    assert "entered at #" in shown and "added since" in shown and "deleted since" in shown
    json.dumps(replay.to_dict())
    assert facts.replay(hits.search_id or "").identical  # the logged version itself is untouched


def test_after_a_model_change_ranks_moved_because_the_embedder_changed(facts: ContextStore) -> None:
    hits = facts.search("where does my sister live", k=5, record=True)
    facts.reembed(HashingEmbedder(16))
    replay = facts.replay(hits.search_id or "", at="latest")
    assert replay.embedder_changed
    assert replay.changes and {c.reason for c in replay.changes} == {"embedder_changed"}
    assert sorted(replay.ids) == sorted(h.record.id for h in hits)  # same records, new scores
    vector = facts.search([0.2] * 16, k=2, record=True)
    facts.reembed(HashingEmbedder(24))
    with pytest.raises(Exception, match="query vector of the model"):
        facts.replay(vector.search_id or "", at="latest")
    assert facts.replay(vector.search_id or "").identical


def test_replay_errors_say_what_to_do(facts: ContextStore, tmp_path: Path) -> None:
    with pytest.raises(SearchNotFoundError, match="search_log"):
        facts.replay("nope")
    reader = ContextStore.open(facts.uri, embedder=HashingEmbedder(32), read_only=True)
    with pytest.raises(ReadOnlyError):
        reader.search("peanuts", record=True)
    hits = facts.search("peanuts", k=1, record=True)
    assert reader.replay(hits.search_id or "").identical  # a read-only store replays
    branch = facts.branch("tmp")
    on_branch = branch.search("Porto", k=1, record=True)
    assert facts.search_log()[0].branch == "tmp"
    assert facts.replay(on_branch.search_id or "").identical  # replayed on its branch from main
    facts.delete_branch("tmp")
    with pytest.raises(VersionNotFoundError):
        facts.replay(on_branch.search_id or "")


def test_cleanup_keeps_the_log_and_says_when_a_version_is_gone(facts: ContextStore) -> None:
    hits = facts.search("peanuts", k=2, record=True)
    facts.add(text("more", run_id="chat"))
    facts.compact()
    facts.cleanup(older_than=timedelta(0))
    # what Lance does to files it does not know once they are a week old: the log is not its to delete
    lance.dataset(facts.uri).cleanup_old_versions(older_than=timedelta(0), delete_unverified=True)
    assert [e.id for e in facts.search_log()] == [hits.search_id]
    with pytest.raises(VersionNotFoundError, match="Tag the versions"):
        facts.replay(hits.search_id or "")


async def test_searches_recorded_at_once_on_a_new_store_are_all_logged(store: ContextStore) -> None:
    import asyncio

    store.add([text(f"fact {i} about ferries") for i in range(6)])
    hits = await asyncio.gather(*(store.aio.search("ferries", k=2, record=True) for _ in range(8)))
    ids = {h.search_id for h in hits}
    assert len(ids) == 8 and ids <= {entry.id for entry in store.search_log()}  # the log's creation races
    assert all(store.replay(search_id) for search_id in ids)


async def test_adds_at_once_each_return_their_own_version(store: ContextStore) -> None:
    import asyncio

    records = [text(f"turn {i}") for i in range(8)]
    versions = await asyncio.gather(*(store.aio.add(r) for r in records))
    assert len(set(versions)) == 8
    for record, version in zip(records, versions, strict=True):
        holds = {r.id for r in store.at_version(version).records()}
        before = {r.id for r in store.at_version(version - 1).records()}
        assert record.id in holds and record.id not in before  # the version its own commit made
