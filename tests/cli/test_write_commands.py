"""tag, branch, restore, compact, cleanup, reembed, export and import on copies of the store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder

from ._stores import LONG_RECORDS, Built
from .conftest import InProcess

TRIP = "langchain.history:trip"


def _store(uri: str, branch: str = "main") -> ContextStore:
    return ContextStore.open(uri, read_only=True, embedder=None, branch=branch)


def test_tag_create_list_and_delete(in_process: InProcess, store_copy: Callable[[], Built]) -> None:
    built = store_copy()
    made = in_process("tag", built.uri, "first-answer", "--version", str(built.answered))
    assert made.code == 0 and made.out.strip() == f"tagged main@{built.answered} as first-answer"
    assert _store(built.uri).tags() == {"before-answer": built.tagged, "first-answer": built.answered}
    listed = in_process("tag", built.uri, "--json").json()
    assert listed["first-answer"] == {"branch": "main", "version": built.answered}
    again = in_process("tag", built.uri, "first-answer")
    assert again.code == 2 and "already names main@" in again.err
    unasked = in_process("tag", built.uri, "first-answer", "--delete")
    assert unasked.code == 2 and "pass --yes" in unasked.err
    assert "first-answer" in _store(built.uri).tags()
    deleted = in_process("tag", built.uri, "first-answer", "--delete", "--yes")
    assert deleted.code == 0 and "first-answer" not in _store(built.uri).tags()
    on_branch = in_process("tag", built.uri, "patagonia", "--branch", "what-if")
    assert on_branch.code == 0 and _store(built.uri, "what-if").tags() == {"patagonia": built.tagged + 1}
    shown = in_process("show", built.uri, TRIP, "--tag", "patagonia", "--branch", "what-if").out
    assert "Try Patagonia in October." in shown
    found = in_process("show", built.uri, TRIP, "--tag", "patagonia")  # the tag names its branch
    assert found.code == 0 and "Try Patagonia in October." in found.out and "what-if@" in found.out
    missing = in_process("diff", built.uri, "no-such-tag")
    assert missing.code == 1 and "patagonia" in missing.err  # every branch's tags are listed


def test_branch_create_list_and_delete(in_process: InProcess, store_copy: Callable[[], Built]) -> None:
    built = store_copy()
    made = in_process("branch", built.uri, "rewrite", "--from", "before-answer")
    assert made.code == 0 and made.out.strip() == f"created branch rewrite from main@{built.tagged}"
    listed = in_process("branch", built.uri, "--json").json()
    assert listed["rewrite"] == {"parent": "main", "version": built.tagged} and listed["main"] is None
    assert _store(built.uri, "rewrite").count(TRIP) == 4
    assert in_process("branch", built.uri, "rewrite").code == 2
    refused = in_process("branch", built.uri, "rewrite", "--delete")
    assert refused.code == 2 and "rewrite" in _store(built.uri).branches()
    assert in_process("branch", built.uri, "rewrite", "--delete", "-y").code == 0
    assert "rewrite" not in _store(built.uri).branches()


def test_restore_asks_then_makes_a_past_version_the_latest(
    in_process: InProcess, store_copy: Callable[[], Built]
) -> None:
    built = store_copy()
    refused = in_process("restore", built.uri, "before-answer")
    assert refused.code == 2 and "pass --yes" in refused.err and _store(built.uri).version() == built.latest
    done = in_process("restore", built.uri, "before-answer", "--yes")
    assert (
        done.code == 0 and done.out.strip() == f"restored main@{built.tagged} as version {built.latest + 1}"
    )
    store = _store(built.uri)
    assert store.version() == built.latest + 1 and store.count() == 4
    assert store.at_version(built.latest).count() > 4  # history kept


def test_restore_of_one_session_leaves_the_others(
    in_process: InProcess, store_copy: Callable[[], Built]
) -> None:
    built = store_copy()
    before = _store(built.uri)
    others = {run_id: before.count(run_id) for run_id in before.run_ids() if run_id != TRIP}
    assert others and before.count(TRIP) > 4
    asked = in_process("restore", built.uri, "before-answer", "--session", "trip")
    assert (
        asked.code == 2 and f"Make session {TRIP} what it was at main@{built.tagged} (4 records" in asked.err
    )
    done = in_process("restore", built.uri, "before-answer", "--session", "trip", "--yes")
    assert done.code == 0 and done.out.strip() == (
        f"restored session {TRIP} as of main@{built.tagged} as version {built.latest + 1}"
    )
    store = _store(built.uri)
    assert store.count(TRIP) == 4 and {r: store.count(r) for r in others} == others


def test_restore_of_one_session_after_a_reembed_embeds_it_with_todays_model(
    in_process: InProcess, tmp_path: Path
) -> None:
    uri = str(tmp_path / "reembedded.lance")
    store = ContextStore.open(uri, embedder=HashingEmbedder(8))
    store.add(
        [
            ContextRecord(run_id="s1", text_payload="peanut allergy"),
            ContextRecord(run_id="s2", text_payload="tea"),
        ]
    )
    then = store.version()
    store.delete(run_id="s1")
    store.reembed(HashingEmbedder(16), progress=False)
    done = in_process("restore", uri, str(then), "--session", "s1", "--yes")
    assert done.code == 0, done.err
    (back,) = _store(uri).records("s1")
    assert back.text == "peanut allergy" and back.embedding is not None and back.embedding.shape == (16,)
    assert ContextStore.open(uri).search("peanut allergy", k=1, run_id="s1")[0].record.id == back.id


def test_compact_cleanup_and_reembed(in_process: InProcess, store_copy: Callable[[], Built]) -> None:
    built = store_copy()
    compacted = in_process("compact", built.uri, "--json").json()
    assert compacted["fragments_after"] < compacted["fragments_before"]
    assert _store(built.uri).count() == _store(built.uri).at_version(built.latest).count()
    refused = in_process("cleanup", built.uri, "--older-than", "0s")
    assert refused.code == 2 and "pass --yes" in refused.err
    bad = in_process("cleanup", built.uri, "--older-than", "soon", "--yes")
    assert bad.code == 2 and "is not a duration" in bad.err
    cleaned = in_process("cleanup", built.uri, "--older-than", "0s", "--yes", "--json").json()
    assert cleaned["old_versions"] > 0 and cleaned["bytes_removed"] > 0
    gone, kept = in_process.many(
        ["show", built.uri, TRIP, "--version", "5"],
        ["show", built.uri, TRIP, "--tag", "before-answer", "--json"],
    )
    assert gone.code == 1 and "version 5" in gone.err
    assert kept.json()["records"] == 4  # tagged versions survive cleanup
    reembedded = in_process("reembed", built.uri, "--embedder", "hashing:16", "--yes")
    assert reembedded.code == 0 and "re-embedded" in reembedded.out and "hashing" in reembedded.out
    info, hits = in_process.many(
        ["info", built.uri, "--json"], ["search", built.uri, "cherry blossoms", "-k", "2", "--json"]
    )
    assert (info.json()["embedder"], info.json()["dimension"]) == ("hashing", 16)
    assert hits.json()["hits"][0]["run_id"] == TRIP


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_export_then_import_round_trips(
    in_process: InProcess, built: Built, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"memory.{suffix}"
    exported = in_process("export", built.uri, str(out))
    assert exported.code == 0 and f"exported 153 records of main@{built.latest}" in exported.out
    assert in_process("export", built.uri, str(out)).code == 2  # never overwrites without --force
    unknown, nowhere = in_process.many(
        ("export", built.uri, str(tmp_path / "memory.csv")),
        ("export", built.uri, str(tmp_path / "missing" / f"memory.{suffix}")),
    )
    assert unknown.code == 2 and "cannot tell the format from 'memory.csv'" in unknown.err
    assert nowhere.code == 2 and "does not exist" in nowhere.err and ".partial" not in nowhere.err
    assert not (tmp_path / "memory.csv").exists()
    target = str(tmp_path / "copy.lance")
    on_branch = in_process("import", target, str(out), "--branch", "what-if")
    assert on_branch.code == 1 and "a new store has only 'main'" in on_branch.err
    assert not Path(target).exists()
    imported = in_process("import", target, str(out))
    assert imported.code == 0 and "imported 153 records" in imported.out
    source, copy = _store(built.uri), _store(target)
    assert copy.versions()[-1].operation == "add"  # all records in one commit
    originals = {r.id: r for r in source.records()}
    copies = {r.id: r for r in copy.records()}
    assert originals.keys() == copies.keys()
    for record_id, original in originals.items():
        twin = copies[record_id]
        assert (
            twin.run_id,
            twin.role,
            twin.content_type,
            twin.text_payload,
            twin.binary_payload,
            twin.metadata,
            twin.created_at,
        ) == (
            original.run_id,
            original.role,
            original.content_type,
            original.text_payload,
            original.binary_payload,
            original.metadata,
            original.created_at,
        )
        assert (twin.embedding is None) == (original.embedding is None)
        if original.embedding is not None:
            assert np.array_equal(twin.embedding, original.embedding)  # not re-embedded
    assert copy.records(TRIP) == source.records(TRIP)  # same order, images included
    again = in_process("import", target, str(out))
    assert again.code == 2 and "already exist" in again.err
    replaced = in_process("import", target, str(out), "--yes")
    assert replaced.code == 0 and _store(target).count() == 153


def test_export_one_session_as_of_a_version(in_process: InProcess, built: Built, tmp_path: Path) -> None:
    out = tmp_path / "trip.jsonl"
    result = in_process(
        "export", built.uri, str(out), "--session", "trip", "--tag", "before-answer", "--no-embeddings"
    )
    assert result.code == 0 and "exported 4 records" in result.out
    prefixed = in_process("export", built.uri, str(tmp_path / "notes.parquet"), "--prefix", "notes:")
    assert prefixed.code == 0 and f"exported {LONG_RECORDS + 2} records" in prefixed.out
    lines = out.read_text().splitlines()
    assert '"lance_context_export": 1' in lines[0] and len(lines) == 5
    target = str(tmp_path / "fresh.lance")
    assert in_process("import", target, str(out), "--embedder", "hashing:8").code == 0
    store = ContextStore.open(target, read_only=True)
    assert store.count(TRIP) == 4 and store.dimension == 8
    assert all(r.embedding is not None for r in store.records(TRIP) if r.text_payload)
    mismatch = in_process(
        "import", str(tmp_path / "other.lance"), str(tmp_path / "trip.jsonl"), "--embedder", "nonsense"
    )
    assert mismatch.code == 2 and "unknown embedder 'nonsense'" in mismatch.err
    recorded = str(tmp_path / "recorded.lance")  # no --embedder: the one the export names embeds again
    assert in_process("import", recorded, str(out)).code == 0
    again = ContextStore.open(recorded, read_only=True)
    assert again.embedder is not None and again.dimension == _store(built.uri).dimension
    assert all(r.embedding is not None for r in again.records(TRIP) if r.text_payload)
    with_vectors = tmp_path / "with-vectors.jsonl"
    assert in_process("export", built.uri, str(with_vectors), "--session", "trip").code == 0
    narrow = str(tmp_path / "narrow.lance")
    refused = in_process("import", narrow, str(with_vectors), "--embedder", "hashing:8")
    assert refused.code == 1 and "pass --drop-embeddings" in refused.err and not Path(narrow).exists()
    (tmp_path / "plain.jsonl").write_text('{"a": 1}\n')
    foreign = in_process("import", str(tmp_path / "foreign.lance"), str(tmp_path / "plain.jsonl"))
    assert foreign.code == 1 and "is not a lance-context export" in foreign.err
