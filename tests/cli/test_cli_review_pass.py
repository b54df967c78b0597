"""What a new user meets first: help with examples, errors in words, output that fits and pipes cleanly."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click
import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder
from lance_context._cli._app import cli
from lance_context._cli._examples import EXAMPLES

from ._stores import Built
from .conftest import InProcess, run_cli


def _error(result_err: str) -> str:
    lines = result_err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result_err, result_err
    return lines[0]


def test_every_command_has_a_one_line_summary_and_examples_that_parse(
    in_process: InProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing = in_process("--help", env={"COLUMNS": "80"})
    assert listing.code == 0
    commands = listing.out[listing.out.index("Commands:") : listing.out.index("Examples:")].splitlines()[1:]
    assert not any("..." in line for line in commands)  # no summary cut off
    assert all(len(line) <= 80 and not line.startswith(" " * 5) for line in commands if line.strip())
    assert "Examples:" in listing.out
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trip.jsonl").write_text("")  # import checks that its SOURCE exists
    for name, command in cli.commands.items():
        assert EXAMPLES.get(name), f"{name} has no example"
        for example in EXAMPLES[name]:
            args = shlex.split(example, comments=True)
            assert args[:2] == ["lance-context", name]
            command.make_context(name, args[2:])  # raises on an unknown option or a bad value
    shown = in_process("show", "--help")
    assert "Examples:\n  lance-context show memory.lance trip --last 10" in shown.out.replace("    ", "  ")


def test_counts_are_refused_in_words_with_exit_2(in_process: InProcess, built: Built) -> None:
    results = in_process.many(
        ["log", built.uri, "-n", "abc"],
        ["search", built.uri, "x", "-k", "-1"],
        ["review", built.uri, "what-if", "-k", "0"],
        ["show", built.uri, "trip", "--last", "0"],
    )
    messages = [_error(r.err) for r in results]
    assert all(r.code == 2 for r in results)
    assert "'abc' is not a whole number" in messages[0] and "integer range" not in messages[0]
    assert "-1 is not in the range x>=1: give 1 or more" in messages[1]
    assert (
        "'-k': 0 is not in the range x>=1: give 1 or more" in messages[2]
    )  # review checked it before the core
    assert "'--last' / '-n': 0 is not in the range x>=1" in messages[3]


def test_a_negative_version_is_not_taken_for_a_tag(in_process: InProcess, built: Built) -> None:
    branch, tag, restore = in_process.many(
        ["branch", built.uri, "x", "--from", "-3"],
        ["tag", built.uri, "x", "-V", "-1"],
        ["restore", built.uri, "--", "-2"],
    )
    for result, value in ((branch, "-3"), (tag, "-1"), (restore, "-2")):
        assert result.code == 2
        message = _error(result.err)
        assert f"versions are numbered from 1, got {value}" in message and "no tag named" not in message


def test_unknown_names_list_what_exists_in_plain_words(in_process: InProcess, built: Built) -> None:
    branch, ref = in_process.many(["info", built.uri, "-b", "nosuch"], ["diff", built.uri, "nosuch"])
    assert branch.code == 1 and ref.code == 1
    assert _error(branch.err) == (
        "lance-context: error: no branch named 'nosuch'; branches: main, what-if "
        "(lance-context branch URI lists them)"
    )
    assert _error(ref.err).endswith("tags: before-answer; branches: main, what-if")  # no Python lists


def test_search_says_hit_or_hits_and_refuses_an_empty_query(in_process: InProcess, built: Built) -> None:
    one, none, empty = in_process.many(
        ["search", built.uri, "blossoms", "-k", "1"],
        ["search", built.uri, "x", "-r", "no-such-role"],
        ["search", built.uri, "  "],
    )
    assert one.out.startswith("1 hit for 'blossoms' (vector)")
    assert (
        none.code == 0
        and none.out.strip() == "no hits for 'x' (vector) · main@" + none.out.split("@")[1].strip()
    )
    assert "─" not in none.out  # no empty table
    assert empty.code == 2 and "the query is empty" in _error(empty.err)


def test_output_lines_carry_no_padding_when_piped(in_process: InProcess, built: Built) -> None:
    results = in_process.many(
        ["info", built.uri], ["sessions", built.uri], ["log", built.uri], env={"COLUMNS": "120"}
    )
    for result in results:
        assert result.code == 0, result.err
        assert all(line == line.rstrip() for line in result.out.splitlines()), result.out


def test_sessions_break_roles_between_roles_and_say_when_none_match(
    in_process: InProcess, built: Built
) -> None:
    listing, nothing = in_process.many(
        ["sessions", built.uri], ["sessions", built.uri, "-p", "zzz"], env={"COLUMNS": "80"}
    )
    lines = listing.out.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if line.lstrip().startswith("session"))
    start, end = header.index("roles"), header.index("active")
    cells = [line[start:end].strip() for line in lines[lines.index(header) + 2 :] if line[start:end].strip()]
    # every piece of the roles column is "role count" items: never "checkpoint_wr" / "ite 8"
    for cell in cells:
        for item in cell.split(", "):
            role, _, count = item.rpartition(" ")
            assert role and count.isdigit(), (cell, listing.out)
    assert nothing.code == 0 and nothing.out.startswith("no sessions matching --prefix/--namespace")


def test_a_diff_line_fits_the_terminal_with_wide_characters(in_process: InProcess, tmp_path: Path) -> None:
    uri = str(tmp_path / "wide.lance")
    store = ContextStore.open(uri, embedder=None)
    store.add(ContextRecord.from_content("ok", run_id="s"))
    store.add(ContextRecord.from_content("日本語の文章 🌸 " * 30 + "end", role="assistant", run_id="s"))
    changed, same = in_process.many(["diff", uri, "2"], ["diff", uri, "3", "3"], env={"COLUMNS": "80"})
    assert changed.code == 0, changed.err
    line = next(line for line in changed.out.splitlines() if "+ assistant" in line)
    assert line.endswith("…") and click.unstyle(line) == line
    assert not any(
        row.startswith(("日", "🌸")) for row in changed.out.splitlines()
    )  # nothing wrapped to column 0
    assert same.out.strip() == "main@3 → main@3: no records added or removed"


def test_maintenance_messages_and_refusals(tmp_path: Path) -> None:
    # a real subprocess: the entry point of compact, cleanup and reembed
    uri = str(tmp_path / "m.lance")
    store = ContextStore.open(uri, embedder=HashingEmbedder(8))
    store.add(ContextRecord.from_content("one", run_id="s"))
    bad_dim, reembed, compact_again, cleanup = (
        run_cli("reembed", uri, "-e", "hashing:0", "--yes"),
        run_cli("reembed", uri, "-e", "hashing:16", "--yes"),
        run_cli("compact", uri),  # after reembed's own maintenance: nothing left to do
        run_cli("cleanup", uri, "--older-than", "7d"),  # nothing that old: nothing to ask, no --yes needed
    )
    assert bad_dim.code == 2
    assert "hashing:0: the dimension must be a whole number of at least 2" in _error(bad_dim.err)
    assert "ValueError" not in bad_dim.err
    version = ContextStore.open(uri, embedder=None, read_only=True).version()
    assert reembed.out.startswith("re-embedded 1 record with hashing (16 dimensions) as version ")
    assert compact_again.code == 0 and compact_again.out.strip() == (
        f"nothing to compact (1 fragment); still version {version}"
    )
    assert cleanup.code == 0 and cleanup.out.startswith("removed 0 old versions"), cleanup.err


def test_snapshot_of_one_version_says_version(in_process: InProcess, built: Built, tmp_path: Path) -> None:
    result = in_process("snapshot", built.uri, str(tmp_path / "one.lance"), "-t", "before-answer")
    assert result.code == 0, result.err
    assert f", version {built.tagged}, " in result.out and "versions" not in result.out


def test_searches_json_gives_filters_as_given(in_process: InProcess, tmp_path: Path) -> None:
    uri = str(tmp_path / "log.lance")
    store = ContextStore.open(uri, embedder=HashingEmbedder(8))
    store.add(ContextRecord.from_content("peanuts", run_id="s"))
    hits = store.search("peanuts", k=1, run_id="s", record=True)
    listed, replayed = in_process.many(
        ["searches", uri, "--json"], ["replay", uri, str(hits.search_id), "--json"]
    )
    assert listed.json()[0]["filters"] == {"run_id": "s"}
    assert json.loads(replayed.out)["search"]["filters"] == {"run_id": "s"}
