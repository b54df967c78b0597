"""A session read opens only the unindexed files that hold the session, and never misses a row."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from pathlib import Path

import lance
import pytest

from lance_context import CompactionPolicy, ContextRecord, ContextStore, IndexPolicy, _sessionfiles
from lance_context._known import Facts
from lance_context._sessionfiles import session_fragments

SESSIONS = ("alice", "bob", "carol", "dave")


def _open(uri: str) -> ContextStore:
    return ContextStore.open(
        uri,
        embedder=None,
        compaction=CompactionPolicy(enabled=False),
        indexing=IndexPolicy(
            scalar_refresh_rows=16, refresh_unindexed_rows=100_000, refresh_unindexed_share=1.0
        ),
    )


def _holders(ds: lance.LanceDataset) -> dict[str, set[int]]:
    """Each session's fragments, read from every row."""
    table = ds.to_table(columns=["run_id"], with_row_address=True)
    found: dict[str, set[int]] = defaultdict(set)
    for address, run_id in zip(table["_rowaddr"].to_pylist(), table["run_id"].to_pylist(), strict=True):
        found[run_id].add(address >> 32)
    return found


@pytest.mark.parametrize("reader", ["the writing process", "another process"])
def test_a_session_read_opens_the_indexed_files_and_only_the_unindexed_files_that_hold_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    uri = str(tmp_path / "s.lance")
    store, other = _open(uri), _open(uri)
    said: dict[str, list[str]] = defaultdict(list)
    for n in range(40):  # one message per add: one fragment each; the indexes come at 16 rows
        session = SESSIONS[n % len(SESSIONS)]
        said[session].append(f"{session} {n}")
        store.add(ContextRecord(run_id=session, text_payload=said[session][-1]))
    if reader == "another process":  # it knows nothing of the files: it reads them once to learn
        monkeypatch.setattr(_sessionfiles, "_KNOWN", OrderedDict())
    ds = lance.dataset(uri)
    facts = Facts.of(ds)
    assert len(facts.indexes["run_id_idx"]) < len(facts.fragments) - 10  # most appends are unindexed
    holders = _holders(ds)
    for session in SESSIONS:
        chosen = session_fragments(ds, facts, session)
        assert chosen is not None
        ids = {int(f.fragment_id) for f in chosen}
        assert holders[session] <= ids  # every file holding the session is read
        unindexed = ids - facts.indexes["run_id_idx"]
        assert unindexed == holders[session] - facts.indexes["run_id_idx"]  # and no other unindexed one
        assert [r.text for r in store.records(session)] == said[session]
        assert [r.text for r in store.records(session, last=3)] == said[session][-3:]
    nobody = session_fragments(ds, facts, "nobody")
    assert nobody is not None and {int(f.fragment_id) for f in nobody} <= facts.indexes["run_id_idx"]

    # another handle's writes: new files, learned on the next read
    for n in range(40, 52):
        session = SESSIONS[n % 2]
        said[session].append(f"{session} {n}")
        other.add(ContextRecord(run_id=session, text_payload=said[session][-1]))
    other.add(
        [
            ContextRecord(run_id="erin", text_payload="erin first"),
            ContextRecord(run_id="bob", text_payload="bob 52"),
        ]
    )
    said["bob"].append("bob 52")
    for session in (*SESSIONS, "erin"):
        assert [r.text for r in store.records(session)] == (said[session] or ["erin first"])
        assert [r.text for r in store.records(session, last=2)] == (said[session] or ["erin first"])[-2:]


def test_a_deleted_row_stays_readable_at_the_versions_that_had_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = str(tmp_path / "s.lance")
    store = _open(uri)
    for n in range(24):
        store.add(ContextRecord(run_id=SESSIONS[n % 2], text_payload=f"{SESSIONS[n % 2]} {n}"))
    secret = ContextRecord(run_id="carol", text_payload="carol's only message")
    store.add([ContextRecord(run_id="dave", text_payload="dave's"), secret])  # one file, two sessions
    for n in range(3):
        store.add(ContextRecord(run_id="alice", text_payload=f"alice late {n}"))
    before = store.version()
    store.delete(ids=[secret.id])
    monkeypatch.setattr(_sessionfiles, "_KNOWN", OrderedDict())  # a reader that learns at the latest version
    assert [r.text for r in store.records("dave")] == ["dave's"]  # learns what it can at the latest version
    assert store.records("carol") == []
    then = store.checkout(before)
    assert [r.text for r in then.records("carol")] == ["carol's only message"]
    assert [r.text for r in then.records("carol", last=5)] == ["carol's only message"]


def test_files_merged_by_compaction_are_read_only_for_the_sessions_they_hold(tmp_path: Path) -> None:
    uri = str(tmp_path / "s.lance")
    store = ContextStore.open(
        uri,
        embedder=None,
        compaction=CompactionPolicy(fanout=3, max_rows_per_fragment=1_000),
        indexing=IndexPolicy(
            scalar_refresh_rows=16, refresh_unindexed_rows=100_000, refresh_unindexed_share=1.0
        ),
    )
    said: dict[str, list[str]] = defaultdict(list)
    for n in range(70):
        session = SESSIONS[(n // 3) % len(SESSIONS)]  # runs of three: merged files hold few sessions
        said[session].append(f"{session} {n}")
        store.add(ContextRecord(run_id=session, text_payload=said[session][-1]))
    ds = lance.dataset(uri)
    facts = Facts.of(ds)
    merged = [f for f, rows in facts.fragments if rows > 1 and f not in facts.indexes["run_id_idx"]]
    assert merged  # compaction wrote files the session index does not cover yet
    holders = _holders(ds)
    for session in SESSIONS:
        chosen = session_fragments(ds, facts, session)
        assert chosen is not None
        assert {int(f.fragment_id) for f in chosen} - facts.indexes["run_id_idx"] == (
            holders[session] - facts.indexes["run_id_idx"]
        )
        assert [r.text for r in store.records(session)] == said[session]
        assert [r.text for r in store.records(session, last=4)] == said[session][-4:]
