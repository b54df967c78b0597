"""tag, branch, restore, cleanup, snapshot and import-snapshot given what a user gives them.

Each refusal is one line on stderr with exit code 2 (a usage problem) or 1 (nothing to
act on) and writes nothing; --json prints JSON on every path; a tag on another branch
is named as such; cleanup --include-tagged removes the tags of the versions it deletes
and no others (checked against Lance's own cleanup). The commands run in this process
through ``main`` (the console script's entry point) to keep the many small cases fast.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import lance
import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder

from ..conftest import S3Bucket
from .conftest import Cli, Ran, snapshot

HUGE = str(10**23)


@pytest.fixture(autouse=True)
def _narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


def _build(uri: str, storage_options: dict[str, str] | None = None) -> ContextStore:
    """Versions 2 (tag ``first``) and 3 on main; branch what-if from 2 with tag ``wt``."""
    memory = ContextStore.open(uri, storage_options=storage_options, embedder=HashingEmbedder(16))
    memory.add([ContextRecord.from_content(f"trip {i}", role="user", run_id="trip") for i in range(3)])
    memory.tag("first")
    memory.add([ContextRecord.from_content("peanuts", role="user", run_id="user-42")])
    memory.branch("what-if", from_version="first").tag("wt")
    return memory


@pytest.fixture
def store(tmp_path: Path) -> str:
    uri = str(tmp_path / "memory.lance")
    _build(uri)
    return uri


def _one_error(ran: Ran, code: int, *words: str) -> None:
    assert ran.code == code, ran
    assert ran.err.count("\n") == 1 and ": error: " in ran.err and "Traceback" not in ran.err, ran.err
    for word in words:
        assert word in ran.err, ran.err


def _tags(uri: str) -> dict[str, tuple[str, int]]:
    return {n: (i.get("branch") or "main", i["version"]) for n, i in lance.dataset(uri).tags.list().items()}


def test_bad_numbers_names_and_conflicting_options_are_usage_errors_that_write_nothing(
    cli: Cli, store: str
) -> None:
    before = snapshot(store)
    _one_error(cli("tag", store, "x", "-V", "0"), 2, "numbered from 1, got 0")
    _one_error(cli("tag", store, "x", "-V", "000"), 2, "numbered from 1")
    _one_error(cli("branch", store, "b", "--from", "0"), 2, "--from", "numbered from 1")
    _one_error(cli("restore", store, "0", "--yes"), 2, "VERSION", "numbered from 1")
    _one_error(cli("import-snapshot", Path(store).parent / "new.lance", store, "-V", "0"), 2, "from 1")
    _one_error(cli("tag", store, "first", "-d", "-V", "2", "--yes"), 2, "leave out --version")
    _one_error(cli("branch", store, "what-if", "-d", "--from", "2", "--yes"), 2, "leave out --from")
    _one_error(cli("tag", store, "bad name"), 2, "NAME", "invalid tag name 'bad name'")
    _one_error(cli("branch", store, "über"), 2, "NAME", "invalid branch name 'über'")
    assert snapshot(store) == before
    assert not (Path(store).parent / "new.lance").exists()


def test_numbers_beyond_any_version_are_refused_in_one_line(cli: Cli, store: str, tmp_path: Path) -> None:
    before = snapshot(store)
    _one_error(cli("snapshot", store, tmp_path / "snap.lance", "-V", HUGE), 1, f"version {HUGE} does not")
    _one_error(cli("import-snapshot", tmp_path / "copy.lance", store, "-V", HUGE), 1, "does not exist")
    _one_error(cli("restore", store, HUGE, "--yes"), 1, "does not exist")
    _one_error(cli("tag", store, "x", "-V", HUGE), 1, "does not exist")
    assert snapshot(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.lance"]
    kept = cli("cleanup", store, "--older-than", "0", "--keep-versions", HUGE, "--yes", "--json")
    assert kept.code == 0 and json.loads(kept.out)["old_versions"] == 0, kept
    assert [v.version for v in ContextStore.open(store, read_only=True, embedder=None).versions()] == [
        1,
        2,
        3,
    ]


def test_tag_and_branch_print_json_on_every_path(cli: Cli, store: str) -> None:
    made = cli("tag", store, "v3", "--json")
    assert made.code == 0 and json.loads(made.out) == {"tag": "v3", "branch": "main", "version": 3}
    gone = cli("tag", store, "v3", "--delete", "--yes", "--json")
    assert json.loads(gone.out) == {"deleted": "v3", "branch": "main", "version": 3}
    grown = cli("branch", store, "alt", "--from", "first", "--json")
    assert json.loads(grown.out) == {"branch": "alt", "parent": "main", "version": 2}
    cut = cli("branch", store, "alt", "--delete", "--yes", "--json")
    assert json.loads(cut.out) == {"deleted": "alt"}
    assert "v3" not in _tags(store) and "alt" not in lance.dataset(store).branches.list()


def test_a_tag_on_another_branch_is_followed_from_main_and_named_otherwise(cli: Cli, store: str) -> None:
    also = cli("tag", store, "wt-too", "-V", "wt")  # -b left at main: the tag's own branch
    assert also.code == 0 and also.out == "tagged what-if@2 as wt-too\n", also
    grown = cli("branch", store, "from-wt", "--from", "wt")
    assert grown.code == 0 and grown.out == "created branch from-wt from what-if@2\n", grown
    before = snapshot(store)
    _one_error(cli("tag", store, "x", "-b", "what-if", "-V", "first"), 2, "on branch 'main'", "pass -b main")
    _one_error(cli("branch", store, "y", "-b", "what-if", "--from", "first"), 2, "pass -b main")
    _one_error(cli("restore", store, "wt", "--yes"), 2, "tag 'wt' is on branch 'what-if'", "pass -b what-if")
    refused = cli("restore", store, "first", "-b", "what-if", "--yes")
    _one_error(refused, 2, "pass -b main")
    assert "checkout_branch" not in refused.err and snapshot(store) == before
    out = Path(store).parent / "copy.lance"
    _one_error(cli("snapshot", store, out, "-b", "what-if", "-t", "first"), 2, "pass -b main")
    assert not out.exists()
    exported = cli("snapshot", store, out, "-t", "wt")  # from main: the tag's own branch
    assert exported.code == 0 and exported.out.startswith(f"wrote what-if@2 to {out}"), exported


def test_restoring_the_latest_version_is_refused_and_writes_nothing(cli: Cli, store: str) -> None:
    before = snapshot(store)
    _one_error(cli("restore", store, "3", "--yes"), 1, "main@3 is already the latest", "nothing was changed")
    _one_error(cli("restore", store, "3", "-s", "trip", "--yes"), 1, "already the latest")
    _one_error(cli("restore", store, "wt", "-b", "what-if", "--yes"), 1, "what-if@2 is already the latest")
    assert snapshot(store) == before
    done = cli("restore", store, "first", "--yes")
    assert done.code == 0 and done.out == "restored main@2 as version 4\n"


def test_restore_shows_a_session_name_without_its_control_characters(cli: Cli, tmp_path: Path) -> None:
    uri = str(tmp_path / "memory.lance")
    memory = ContextStore.open(uri, embedder=HashingEmbedder(16))
    evil = "notes\x1b[2J\u202e"
    memory.add(ContextRecord.from_content("one", run_id=evil))
    memory.add(ContextRecord.from_content("two", run_id=evil))
    done = cli("restore", uri, "2", "-s", evil, "--yes")
    assert done.code == 0, done
    assert "\x1b" not in done.out and "\u202e" not in done.out and "notes\\x1b[2J\\u202e" in done.out
    assert [r.text for r in memory.records(evil)] == ["one"]


def test_long_tag_and_branch_names_stay_on_one_line_at_80_columns(cli: Cli, store: str) -> None:
    name, branch = "t" * 60 + "-" + "x" * 60, "b" * 100
    assert cli("branch", store, branch).code == 0
    assert cli("tag", store, name, "-b", branch).code == 0
    assert f"{name}  {branch}@3" in cli("tag", store).out.splitlines()
    assert f"{branch}  from main@3" in cli("branch", store).out.splitlines()


def _lance_cleanup(uri: str, untag: list[str], keep: int) -> list[int]:
    """What Lance itself keeps when those tags go first: the reference for the command."""
    ds = lance.dataset(uri)
    for name in untag:
        ds.tags.delete(name)
    ds.cleanup_old_versions(older_than=timedelta(0), retain_versions=keep, error_if_tagged_old_versions=False)
    return sorted(v["version"] for v in lance.dataset(uri).versions())


def test_cleanup_include_tagged_removes_only_the_tags_of_versions_it_deletes(
    cli: Cli, tmp_path: Path
) -> None:
    uri = str(tmp_path / "memory.lance")
    memory = ContextStore.open(uri, embedder=HashingEmbedder(16))
    for i in range(5):  # versions 2-6
        memory.add(ContextRecord.from_content(f"note {i}", run_id="notes"))
    memory.tag("old", 2)
    memory.tag("kept", 5)  # among the newest two: cleanup keeps it, and so its tag
    memory.tag("latest", 6)  # the latest is never deleted
    reference = str(tmp_path / "reference.lance")
    shutil.copytree(uri, reference)
    asked = cli("cleanup", uri, "--older-than", "0", "--keep-versions", "2", "--include-tagged")
    _one_error(asked, 2, "up to 4 versions", "and 1 tag (old)", "pass --yes")
    done = cli("cleanup", uri, "--older-than", "0", "--keep-versions", "2", "--include-tagged", "--yes")
    assert done.code == 0 and done.out.endswith("; tags removed: old\n"), done
    assert _tags(uri) == {"kept": ("main", 5), "latest": ("main", 6)}
    left = sorted(v.version for v in ContextStore.open(uri, read_only=True, embedder=None).versions())
    assert left == [5, 6] == _lance_cleanup(reference, ["old"], 2)
    again = json.loads(cli("cleanup", uri, "--older-than", "0", "--include-tagged", "--yes", "--json").out)
    assert sorted(again) == ["bytes_removed", "old_versions", "tags_removed"]
    assert again["old_versions"] == 1 and again["tags_removed"] == ["kept"]
    assert _tags(uri) == {"latest": ("main", 6)}


def test_write_commands_refuse_the_same_way_on_s3(cli: Cli, s3_bucket: S3Bucket) -> None:
    uri = s3_bucket.uri("memory")
    memory = _build(uri, s3_bucket.storage_options)
    opts = [arg for key, value in s3_bucket.storage_options.items() for arg in ("-o", f"{key}={value}")]
    _one_error(cli("tag", uri, "x", "-V", "0", *opts), 2, "numbered from 1")
    _one_error(cli("restore", uri, "3", "--yes", *opts), 1, "already the latest")
    _one_error(cli("restore", uri, "wt", "--yes", *opts), 2, "pass -b what-if")
    _one_error(cli("tag", s3_bucket.uri("nothing"), "x", *opts), 1, "no store at")
    assert memory.version() == 3 and set(memory.tags()) == {"first"}
    made = cli("tag", uri, "v2", "-V", "2", "--json", *opts)
    assert json.loads(made.out) == {"tag": "v2", "branch": "main", "version": 2}
    assert s3_bucket.secret_access_key not in made.out


def test_a_hashing_dimension_too_large_to_store_is_refused(cli: Cli, store: str) -> None:
    before = snapshot(store)
    _one_error(cli("reembed", store, "-e", "hashing:100000000", "--yes"), 2, "from 2 to 65,536")
    assert snapshot(store) == before


def test_cleanup_unreferenced_asks_first_then_removes_what_no_version_reads(
    cli: Cli, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = ContextStore.open(store, embedder=HashingEmbedder(16))
    before = set((Path(store) / "data").iterdir())

    def dies(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed before the commit")

    monkeypatch.setattr(lance.LanceDataset, "commit", staticmethod(dies))
    with pytest.raises(KeyboardInterrupt):  # a write killed before its commit leaves its file
        memory.add(ContextRecord.from_content("never acknowledged", run_id="trip"))
    monkeypatch.undo()
    left = set((Path(store) / "data").iterdir()) - before
    assert len(left) == 1
    _one_error(
        cli("cleanup", store, "--retention", "default", "--unreferenced", "--yes"),
        2,
        "--keep-versions and --unreferenced go with --older-than",
    )
    asked = cli("cleanup", store, "--older-than", "30d", "--unreferenced")  # no version that old
    _one_error(asked, 2, "Delete the files no version references", "nothing else writes", "pass --yes")
    assert left <= set((Path(store) / "data").iterdir())
    done = json.loads(cli("cleanup", store, "--older-than", "30d", "--unreferenced", "--yes", "--json").out)
    assert done["old_versions"] == 0 and done["bytes_removed"] > 0
    assert not left & set((Path(store) / "data").iterdir())
    assert [r.text for r in ContextStore.open(store, embedder=None).records("trip")] == [
        "trip 0",
        "trip 1",
        "trip 2",
    ]
