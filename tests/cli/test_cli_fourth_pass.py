"""A fourth pass as a user meets the command line: no-op rewrites, names that read as numbers, pipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest

import lance_context
from lance_context import ContextRecord, ContextStore, HashingEmbedder, SearchError

from ._stores import Built
from .conftest import Cli, snapshot

#: The most hits one search returns (the core's bound, checked against it below).
MAX_HITS = 1_000_000
SRC = str(Path(lance_context.__file__).resolve().parents[1])


def _versions(uri: str) -> int:
    return len(ContextStore.open(uri, read_only=True).versions())


def test_reembed_with_the_store_embedder_writes_nothing_unless_forced(
    cli: Cli, store_copy: Callable[[], Built]
) -> None:
    store = store_copy()
    before = _versions(store.uri)
    same = cli(
        "reembed", store.uri, "-e", "hashing:32", "--yes"
    )  # the store was built with HashingEmbedder(32)
    assert same.code == 0, same.err
    assert "already from hashing (32 dimensions); nothing was written" in same.out
    assert _versions(store.uri) == before
    forced = cli("reembed", store.uri, "-e", "hashing:32", "--yes", "--force")
    assert forced.code == 0, forced.err
    assert "re-embedded" in forced.out and _versions(store.uri) > before


def test_reembed_force_fills_the_vectors_of_records_added_without_an_embedder(
    cli: Cli, tmp_path: Path
) -> None:
    uri = str(tmp_path / "m.lance")
    ContextStore.open(uri, embedder=HashingEmbedder(16)).add(ContextRecord.from_content("hello", run_id="a"))
    ContextStore.open(uri, embedder=None).add(ContextRecord.from_content("no vector yet", run_id="a"))
    assert [r.embedding is None for r in ContextStore.open(uri, embedder=None).records()] == [False, True]
    result = cli("reembed", uri, "-e", "hashing:16", "--yes", "--force")
    assert result.code == 0, result.err
    assert all(r.embedding is not None for r in ContextStore.open(uri, embedder=None).records())


def test_reembed_with_another_dimension_still_rewrites(cli: Cli, store_copy: Callable[[], Built]) -> None:
    store = store_copy()
    result = cli("reembed", store.uri, "-e", "hashing:16", "--yes")
    assert result.code == 0, result.err
    assert ContextStore.open(store.uri, read_only=True).dimension == 16


def test_a_tag_or_branch_name_of_digits_is_refused_and_nothing_is_written(
    cli: Cli, store_copy: Callable[[], Built]
) -> None:
    store = store_copy()
    before = snapshot(store.uri)
    for kind, name, number in (("tag", "12", 12), ("tag", "007", 7), ("branch", "2024", 2024)):
        result = cli(kind, store.uri, name)
        assert result.code == 2, result.err
        assert f"a {kind} name made only of digits would read as version {number}" in result.err
        assert "choose a name with a letter" in result.err
    assert snapshot(store.uri) == before
    assert cli("tag", store.uri, "v12").code == 0  # digits after a letter are fine


def test_a_digit_tag_made_through_the_core_can_still_be_deleted(
    cli: Cli, store_copy: Callable[[], Built]
) -> None:
    store = store_copy()
    ContextStore.open(store.uri, embedder=None).tag("12", store.tagged)  # the core accepts the name
    result = cli("tag", store.uri, "12", "--delete", "--yes")
    assert result.code == 0, result.err
    assert "12" not in ContextStore.open(store.uri, read_only=True).tags()


def test_numbers_and_ages_in_other_digits_are_refused_alike(
    cli: Cli, store_copy: Callable[[], Built]
) -> None:
    store = store_copy()
    before = snapshot(store.uri)
    age = cli("cleanup", store.uri, "--older-than", "\u0663d", "--yes")  # Arabic-Indic three
    assert age.code == 2 and "is not a duration" in age.err and "digits 0-9" in age.err
    count = cli("log", store.uri, "-n", "\uff13")  # fullwidth three
    assert count.code == 2 and "is not a whole number: write it with the digits 0-9" in count.err
    keep = cli("cleanup", store.uri, "--older-than", "1d", "--keep-versions", "\u0663", "--yes")
    assert keep.code == 2 and "digits 0-9" in keep.err
    version = cli("show", store.uri, "trip", "--version", "\u0663")
    assert version.code == 2 and "is not a version number" in version.err
    for args in (["tag", store.uri, "x", "--version", "\u0663"], ["restore", store.uri, "\u0663", "--yes"]):
        ref = cli(*args)  # no tag can hold such digits (tag names are ASCII): a mistyped number
        assert ref.code == 2 and "write version numbers with the digits 0-9" in ref.err, ref.err
    assert snapshot(store.uri) == before
    assert cli("cleanup", store.uri, "--older-than", "3d", "--yes").code == 0


def test_a_session_typed_composed_finds_one_stored_decomposed(cli: Cli, tmp_path: Path) -> None:
    uri = str(tmp_path / "m.lance")
    stored = unicodedata.normalize("NFD", "été")
    ContextStore.open(uri, embedder=HashingEmbedder(16)).add(
        ContextRecord.from_content("summer", run_id=stored)
    )
    result = cli("show", uri, unicodedata.normalize("NFC", "été"), "--json")
    assert result.code == 0, result.err
    assert '"run_id": "' + stored + '"' in result.out


def test_a_table_into_a_closed_pipe_exits_0_without_a_word(built: Built) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # like `| head` that has already quit: every write fails
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "COLUMNS": "200"}
    try:
        for args in (
            ["log", built.uri, "-n", "0"],
            ["sessions", built.uri],
            ["tag", built.uri],
            ["export", built.uri, "-"],  # plain text: Click itself made a closed pipe exit 1
        ):
            done = subprocess.run(
                [sys.executable, "-m", "lance_context._cli", *args],
                stdout=writer,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
                text=True,
                timeout=120,
                check=False,
            )
            assert (done.returncode, done.stderr) == (0, ""), args
    finally:
        os.close(writer)


def test_a_tag_named_main_is_refused_for_its_real_reason(cli: Cli, store_copy: Callable[[], Built]) -> None:
    store = store_copy()
    result = cli("tag", store.uri, "main")
    assert result.code == 2
    assert "main is the main branch's name" in result.err and "use 1-128 letters" not in result.err


def test_more_hits_than_a_search_returns_and_ports_out_of_range_are_usage_errors(
    cli: Cli, built: Built, tmp_path: Path
) -> None:
    for args in (
        ["search", built.uri, "cherry", "-k", str(MAX_HITS + 1)],
        ["review", built.uri, "what-if", "-q", "cherry", "-k", "99999999999999999999"],
        ["serve", built.uri, "--port", "65536"],
        ["serve", built.uri, "--port", "\u0663"],
        ["serve", built.uri, "--page-size", "501"],
    ):
        result = cli(*args)
        assert result.code == 2, (args, result.err)
        assert "(see --help)" in result.err and "Traceback" not in result.err
    assert "more than 1000000: give 1 to 1000000" in cli("search", built.uri, "x", "-k", "1000001").err
    # the bound is the core's own: one more is refused there, the bound itself is accepted
    store = ContextStore.open(built.uri, read_only=True, embedder=HashingEmbedder(32))
    with pytest.raises(SearchError):
        store.search("cherry", k=MAX_HITS + 1)
    assert store.search("cherry", k=MAX_HITS)


def test_an_empty_store_path_is_refused_and_nothing_is_made_in_the_current_folder(
    cli: Cli, built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = tmp_path / "trip.jsonl"
    assert cli("export", built.uri, export, "-s", "trip").code == 0
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)  # "" is the current folder to Lance
    for args in (
        ["import", "", export],
        ["snapshot", built.uri, ""],
        ["import-snapshot", str(tmp_path / "new.lance"), " "],
        ["log", ""],
    ):
        result = cli(*args)
        assert result.code == 2, (args, result.err)
        assert "it is empty (an unset variable?)" in result.err
    assert list(here.iterdir()) == []
    assert not (tmp_path / "new.lance").exists()


def test_every_help_fits_an_80_column_terminal(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Help (its examples included) never wraps mid-line in the narrowest usual terminal."""
    from lance_context._cli._app import cli as group

    monkeypatch.setenv("COLUMNS", "80")
    commands = sorted(group.commands)
    assert len(commands) > 15
    for command in ["", *commands]:
        ran = cli(*([command] if command else []), "--help")
        assert ran.code == 0, (command, ran.err)
        wide = [line for line in ran.out.splitlines() if len(line) > 80]
        assert wide == [], (command, wide)


def test_export_to_standard_output_writes_json_lines_that_import_reads(
    cli: Cli, built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ran = cli("export", built.uri, "-", "-s", "trip")
    assert ran.code == 0, ran.err
    lines = [json.loads(line) for line in ran.out.splitlines()]
    header, rows = lines[0], lines[1:]
    source = ContextStore.open(built.uri, read_only=True, embedder=None)
    assert header["records"] == len(rows) == len(source.records("langchain.history:trip")) > 0
    assert [r["id"] for r in rows] == [r.id for r in source.records("langchain.history:trip")]
    assert "exported" in ran.err and list(tmp_path.iterdir()) == []  # no file named "-"
    (tmp_path / "trip.jsonl").write_text(ran.out, encoding="utf-8")
    assert cli("import", str(tmp_path / "copy.lance"), str(tmp_path / "trip.jsonl")).code == 0
    copied = ContextStore.open(str(tmp_path / "copy.lance"), read_only=True, embedder=None)
    assert [r.id for r in copied.records()] == [r["id"] for r in rows]
    refused = cli("export", built.uri, "-", "--format", "parquet")
    assert refused.code == 2 and "JSON Lines" in refused.err


@pytest.mark.parametrize(
    ("broken", "said"),
    [
        ("langgraph.checkpoint.serde.jsonplus", "needs LangGraph: pip install"),  # LangGraph missing
        (
            "lance_context.langgraph",
            "import of lance_context.langgraph",
        ),  # a failure of the project's own: not "install"
    ],
)
def test_a_thread_asks_to_install_langgraph_only_when_langgraph_is_what_is_missing(
    cli: Cli, built: Built, monkeypatch: pytest.MonkeyPatch, broken: str, said: str
) -> None:
    monkeypatch.setitem(sys.modules, broken, None)  # importing it raises ImportError naming it
    ran = cli("show", built.uri, "langgraph.checkpoints:support-7")
    assert ran.code == 1 and said in ran.err, ran.err
    assert ("pip install" in ran.err) == (broken.startswith("langgraph"))


def test_restoring_a_version_sealed_with_a_retired_key_says_to_restore_sessions(
    cli: Cli, tmp_path: Path
) -> None:
    from lance_context import EncryptionPolicy

    old, new = tmp_path / "old.key", tmp_path / "new.key"
    old.write_bytes(os.urandom(32))
    new.write_bytes(os.urandom(32))
    uri = str(tmp_path / "sealed.lance")
    store = ContextStore.open(
        uri, embedder=HashingEmbedder(8), encryption=EncryptionPolicy(key=old.read_bytes())
    )
    store.add(ContextRecord.from_content("hello", run_id="a"))
    before = store.version()
    store.rotate_key(EncryptionPolicy(key=new.read_bytes()))
    latest = store.version()
    ran = cli("restore", uri, str(before), "--yes", "--key-file", str(new))
    assert ran.code == 1 and f"restore URI {before} --session SESSION" in ran.err, ran.err
    assert _versions(uri) == latest
    reading_old = ["--key-file", str(new), "--previous-key-file", str(old)]  # the version's own key
    ran = cli("restore", uri, str(before), "--session", "a", "--yes", *reading_old)
    assert ran.code == 0, ran.err
    reopened = ContextStore.open(uri, read_only=True, encryption=EncryptionPolicy(key=new.read_bytes()))
    assert [r.text for r in reopened.records("a")] == ["hello"]
