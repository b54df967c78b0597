"""export, import, snapshot, import-snapshot and forget given bad input, as a new user gives it.

Each refusal is one line on stderr with exit code 2 (a usage problem) or 1 (nothing to
act on), and writes nothing. The commands run in this process through ``main`` (the
console script's entry point) to keep the many small cases fast. Last, the demos a new
user runs first (the quickstart, a scenario) given a path that already holds something.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder, InvalidFilterError

from .conftest import Cli, Ran, snapshot


@pytest.fixture
def store(tmp_path: Path) -> str:
    """Two sessions on main (versions 2 and 3), a tag on 2 and a branch from it."""
    uri = str(tmp_path / "memory.lance")
    memory = ContextStore.open(uri, embedder=HashingEmbedder(16))
    memory.add([ContextRecord.from_content(f"trip {i}", role="user", run_id="trip") for i in range(3)])
    memory.tag("first")
    memory.add([ContextRecord.from_content("peanuts", role="user", run_id="user-42")])
    memory.branch("what-if", from_version="first")
    return uri


def _one_error(ran: Ran, code: int, *words: str) -> None:
    assert ran.code == code, ran
    assert ran.err.count("\n") == 1 and ": error: " in ran.err, ran.err
    for word in words:
        assert word in ran.err, ran.err


def test_export_names_a_session_once_however_often_it_is_given(cli: Cli, store: str, tmp_path: Path) -> None:
    out = tmp_path / "trip.jsonl"
    done = cli("export", store, out, "-s", "trip", "-s", "trip")
    assert done.code == 0 and "exported 3 records" in done.out
    assert len(out.read_text().splitlines()) == 1 + 3  # the header and each record once
    back = cli("import", tmp_path / "copy.lance", out)
    assert back.code == 0, back.err
    assert ContextStore.open(str(tmp_path / "copy.lance"), embedder=None).count() == 3


def test_export_refusals_write_nothing(cli: Cli, store: str, tmp_path: Path) -> None:
    before = snapshot(store)
    out = tmp_path / "out.jsonl"
    _one_error(cli("export", store, out, "-s", "trip", "-p", "tr"), 2, "--session or --prefix, not both")
    _one_error(cli("export", store, out, "-p", "nobody"), 1, "'nobody'", "nothing was written")
    _one_error(cli("export", store, out, "-V", "0"), 2, "numbered from 1")
    _one_error(cli("export", store, "s3://bucket/out.jsonl"), 2, "export writes a local file")
    _one_error(cli("export", store, tmp_path), 2, "is a folder")
    _one_error(cli("export", store, Path(store) / "out.jsonl"), 2, "inside the store's folder")
    _one_error(cli("export", f"{store}/", f"file://{store}/data/out.jsonl"), 2, "inside the store's folder")
    assert not out.exists() and snapshot(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.lance"]


def test_export_and_import_take_file_uris(cli: Cli, store: str, tmp_path: Path) -> None:
    out = tmp_path / "all here.jsonl"
    assert cli("export", store, f"file://{out}").code == 0
    done = cli("import", tmp_path / "copy ü.lance", f"file://{out}")
    assert done.code == 0, done.err
    assert "imported 4 records" in done.out
    _one_error(cli("import", tmp_path / "x.lance", tmp_path / "missing.jsonl"), 2, "does not exist")
    _one_error(cli("import", tmp_path / "x.lance", "s3://bucket/all.jsonl"), 2, "not a local file")
    assert not (tmp_path / "x.lance").exists()


def test_import_refuses_a_file_that_is_not_an_export_without_creating_a_store(
    cli: Cli, tmp_path: Path
) -> None:
    binary = tmp_path / "photo.jsonl"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xf0\xff\x00binary")
    _one_error(cli("import", tmp_path / "new.lance", binary), 1, "is not a lance-context export")
    foreign = tmp_path / "sales.parquet"
    pq.write_table(pa.table({"amount": [1, 2]}), foreign)
    _one_error(cli("import", tmp_path / "new.lance", foreign), 1, "is not a lance-context export")
    assert not (tmp_path / "new.lance").exists()


def test_import_refuses_an_export_holding_an_id_twice_before_creating_the_store(
    cli: Cli, store: str, tmp_path: Path
) -> None:
    out = tmp_path / "trip.jsonl"
    assert cli("export", store, out, "-s", "trip").code == 0
    header, first, *rest = out.read_text().splitlines()
    out.write_text("\n".join([header, first, *rest, first]) + "\n")
    record = json.loads(first)["id"]
    _one_error(cli("import", tmp_path / "new.lance", out), 1, repr(record), "nothing was written")
    assert not (tmp_path / "new.lance").exists()


def test_snapshot_refusals_are_usage_errors_that_write_nothing(cli: Cli, store: str, tmp_path: Path) -> None:
    before = snapshot(store)
    new = tmp_path / "snap.lance"
    _one_error(cli("snapshot", store, new, "-V", "0"), 2, "give 1 or more")
    _one_error(cli("snapshot", store, new, "-b", "what-if", "--history"), 2, "--history copies main's")
    (tmp_path / "notes.txt").write_text("mine")
    _one_error(cli("snapshot", store, tmp_path / "notes.txt"), 2, "is a file")
    _one_error(cli("snapshot", store, tmp_path), 2, "already holds files")
    _one_error(cli("snapshot", store, Path(store) / "inner"), 2, "inside the store's folder")
    assert cli("snapshot", store, new).code == 0
    _one_error(cli("snapshot", store, f"{new}/"), 2, "already holds a store")
    assert snapshot(store) == before
    assert (tmp_path / "notes.txt").read_text() == "mine" and not (Path(store) / "inner").exists()


def test_import_snapshot_refuses_the_store_itself(cli: Cli, store: str, tmp_path: Path) -> None:
    before = snapshot(store)
    _one_error(cli("import-snapshot", store, f"file://{store}/", "--yes"), 2, "the same store")
    _one_error(cli("import-snapshot", tmp_path / "copy.lance", store, "-V", "0"), 2, "numbered from 1")
    _one_error(cli("import-snapshot", Path(store) / "inner", store), 2, "inside the snapshot's folder")
    assert snapshot(store) == before and not (tmp_path / "copy.lance").exists()
    with pytest.raises(InvalidFilterError, match="same place"):
        ContextStore.import_(f"{store}/", store)
    assert snapshot(store) == before


def test_forget_refuses_when_one_of_several_sessions_is_unknown(cli: Cli, store: str) -> None:
    before = snapshot(store)
    refused = cli("forget", store, "-s", "trip", "-s", "tirp", "--yes")
    _one_error(refused, 1, "session 'tirp'", "nothing was changed")
    _one_error(cli("forget", store, "--where", "{}", "--yes"), 2, "puts no condition on any field")
    _one_error(cli("forget", store, "--where", '{"$and": []}', "--yes"), 2, "puts no condition")
    assert snapshot(store) == before
    plan = cli("forget", store, "-s", "trip", "-s", "trip", "--dry-run")
    assert plan.code == 0 and "would erase 3 records" in plan.out


def test_import_snapshot_says_which_versions_it_copied(cli: Cli, store: str, tmp_path: Path) -> None:
    history = tmp_path / "history.lance"
    assert cli("snapshot", store, history, "-V", "2", "--history").code == 0
    whole = cli("import-snapshot", tmp_path / "whole.lance", history)
    assert (
        whole.code == 0
        and whole.out == f"copied to {tmp_path / 'whole.lance'}: versions 2-3, now 4 records at version 3\n"
    )
    one = cli("import-snapshot", tmp_path / "one.lance", history, "-V", "first")
    assert one.code == 0 and "version 2, now 3 records at version 2" in one.out


def test_import_snapshot_names_both_embedders_when_they_differ(cli: Cli, store: str, tmp_path: Path) -> None:
    other = str(tmp_path / "other.lance")
    ContextStore.open(other, embedder=HashingEmbedder(8)).add([ContextRecord.from_content("hi", role="user")])
    before = snapshot(store)
    refused = cli("import-snapshot", store, other, "--yes")
    _one_error(refused, 1, "hashing (8 dimensions)", "hashing (16 dimensions)", "nothing was merged")
    assert "EmbedderInfo" not in refused.err and snapshot(store) == before


@pytest.mark.parametrize("script", ["examples/quickstart.py", "integrations/langchain/fork_conversation.py"])
def test_a_demo_given_an_existing_path_refuses_and_leaves_it_alone(script: str, tmp_path: Path) -> None:
    # a second run on the same path used to FAIL (or, for the quickstart, delete the store)
    mine = tmp_path / "mine.lance"
    (mine / "data").mkdir(parents=True)
    (mine / "data" / "keep.txt").write_text("mine")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(root / script), str(mine)], capture_output=True, text=True, cwd=root, check=False
    )
    assert done.returncode == 1 and "already exists: give a new" in done.stderr, done
    assert (mine / "data" / "keep.txt").read_text() == "mine"


def test_an_import_whose_write_fails_leaves_no_new_store(cli: Cli, store: str, tmp_path: Path) -> None:
    out = tmp_path / "trip.jsonl"
    assert cli("export", store, out, "-s", "trip").code == 0
    header, first, *rest = out.read_text().splitlines()
    broken = json.loads(first)
    broken["embedding"] = broken["embedding"][:5]  # the store is made with the header's 16
    out.write_text("\n".join([header, json.dumps(broken), *rest]) + "\n")
    _one_error(cli("import", tmp_path / "new.lance", out), 1, "5 dimensions", "nothing was written")
    assert not (tmp_path / "new.lance").exists()
    # into an existing store the same failure leaves it as it was
    before = ContextStore.open(store, embedder=None).version()
    _one_error(cli("import", store, out, "--yes"), 1, "5 dimensions")
    assert ContextStore.open(store, embedder=None).version() == before
