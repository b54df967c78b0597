"""Fifth pass over the command line as a new user meets it: errors, times and log notes."""

from __future__ import annotations

from pathlib import Path

from lance_context import ContextRecord, ContextStore, HashingEmbedder

from ._stores import Built
from .conftest import Cli


def test_review_and_merge_name_an_unknown_branch_in_words_not_a_python_list(cli: Cli, built: Built) -> None:
    for command in (("review", built.uri, "nobranch"), ("merge", built.uri, "nobranch", "--yes")):
        ran = cli(*command)
        assert ran.code == 1 and ran.out == ""
        assert "no branch named 'nobranch'; branches: main, what-if" in ran.err
        assert "[" not in ran.err and "'main'" not in ran.err


def test_show_says_its_message_times_are_utc_as_the_tables_do(cli: Cli, built: Built) -> None:
    ran = cli("show", built.uri, "trip")
    assert ran.code == 0, ran.err
    headers = [line for line in ran.out.splitlines() if "#1" in line]
    assert len(headers) == 1 and " UTC  #1" in headers[0]


def test_log_explains_a_question_mark_left_by_cleanup(cli: Cli, tmp_path: Path) -> None:
    uri = str(tmp_path / "cleaned.lance")
    store = ContextStore.open(uri, embedder=HashingEmbedder(8))
    store.add([ContextRecord.from_content("one", role="user", run_id="a")])
    store.add([ContextRecord.from_content("two", role="user", run_id="a")])
    store.tag("kept")  # its parent goes, the tagged version stays
    store.add([ContextRecord.from_content("three", role="user", run_id="a")])
    assert cli("cleanup", uri, "--older-than", "0m", "--yes").code == 0
    ran = cli("log", uri)
    assert ran.code == 0, ran.err
    assert "?" in ran.out and "unknown (the version before it was removed by cleanup)" in ran.out


def test_log_of_a_whole_history_adds_no_question_mark_note(cli: Cli, built: Built) -> None:
    ran = cli("log", built.uri, "-n", "0")
    assert ran.code == 0, ran.err
    assert "removed by cleanup" not in ran.out
