"""Read commands on awkward content: wide, escaped and invisible characters, markup, bad input."""

from __future__ import annotations

from pathlib import Path

from rich.cells import cell_len

from lance_context import ContextRecord, ContextStore

from ._stores import Built
from .conftest import InProcess

NARROW = {"COLUMNS": "80"}


def _store(path: Path, records: list[ContextRecord]) -> str:
    uri = str(path)
    ContextStore.open(uri, embedder=None).add(records)
    return uri


def test_bidi_overrides_are_escaped_and_tabs_do_not_break_lines(
    in_process: InProcess, tmp_path: Path
) -> None:
    uri = _store(
        tmp_path / "bidi.lance",
        [
            ContextRecord.from_content("pay \u202eredro\u202c now", role="user", run_id="bidi"),
            ContextRecord.from_content("def f():\n\treturn 'indented words'", role="user", run_id="bidi"),
        ],
    )
    shown, diffed = in_process.many(["show", uri, "bidi"], ["diff", uri, "1"], env=NARROW)
    assert shown.code == 0 and diffed.code == 0, shown.err + diffed.err
    for out in (shown.out, diffed.out):
        assert "\u202e" not in out and "\t" not in out
        assert "\\u202eredro\\u202c" in out  # shown as what it is, not reordered
    assert "      return 'indented words'" in shown.out.splitlines()  # one line, not cut at the tab


def test_a_query_or_a_uri_holding_markup_prints_as_typed(in_process: InProcess, tmp_path: Path) -> None:
    uri = _store(
        tmp_path / "[b]notes.lance",
        [ContextRecord.from_content("a party [/bold] at \x1b[2J noon", role="user", run_id="s")],
    )
    closing, opening, escape, log = in_process.many(
        ["search", uri, "[/bold] party", "-m", "text"],
        ["search", uri, "[red]party[/red]", "-m", "text"],
        ["search", uri, "party \x1b[2J", "-m", "text"],
        ["log", uri],
    )
    assert closing.code == 0 and "Traceback" not in closing.err, closing.err  # no MarkupError
    assert "1 hit for '[/bold] party' (text)" in closing.out
    assert "1 hit for '[red]party[/red]' (text)" in opening.out
    assert "1 hit for 'party \\x1b[2J' (text)" in escape.out  # escaped once, not '\\\\x1b'
    assert "[b]notes.lance · branch main" in log.out


def test_sessions_measure_names_as_shown_so_roles_stay_whole(in_process: InProcess, tmp_path: Path) -> None:
    # an escaped name is wider than it is long (27 characters, 30 cells): the roles column
    # must be planned with its shown width, or "assistant 1, user 1" wraps inside "user 1"
    thread = "thread.checkpoints.xx:t\x1b[2Jx"

    def record(role: str, run_id: str) -> ContextRecord:
        return ContextRecord.from_content("x", role=role, run_id=run_id)

    uri = _store(
        tmp_path / "wide.lance",
        [record("checkpoint_write", thread) for _ in range(6)]
        + [record("checkpoint", thread) for _ in range(3)]
        + [record("assistant", "chat.memory::mem-1"), record("user", "chat.memory::mem-1")]
        + [record("node", "chat.vectorsxx::docs")],
    )
    result = in_process("sessions", uri, env=NARROW)
    assert result.code == 0, result.err
    assert "user 1" in result.out and "assistant 1" in result.out, result.out  # never "user" / "1"
    assert max(cell_len(line) for line in result.out.splitlines()) <= 80


def test_log_breaks_wide_session_names_by_their_width(in_process: InProcess, tmp_path: Path) -> None:
    from lance_context._cli._read import _broken

    # 19 characters but 21 cells before "+7": cut by length, "+7" and "more" fell on two lines
    lines = _broken("arrow, bin, cjk:会話 +7 more", 22).splitlines()
    assert lines == ["arrow, bin, cjk:会話", "+7 more"] and max(map(cell_len, lines)) <= 22
    uri = str(tmp_path / "cjk.lance")
    store = ContextStore.open(uri, embedder=None)
    store.add([ContextRecord.from_content("x", role="user", run_id="会話:" + "長" * 9)])
    store.add(
        [ContextRecord.from_content("y", role="user", run_id=name) for name in ("a", "b", "会話", "c", "d")]
    )
    store.tag("before-the-long-weekend")
    result = in_process("log", uri, env=NARROW)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    assert any(line.rstrip().endswith("+2 more") or "+2 more " in line for line in lines), result.out


def test_a_tag_on_a_missing_store_says_no_store(in_process: InProcess, tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.lance")
    info, show = in_process.many(["info", missing, "-t", "old"], ["show", missing, "s", "-t", "old"])
    for result in (info, show):
        assert result.code == 1
        assert result.err.strip() == f"lance-context: error: no store at {missing}", result.err


def test_one_checkpoint_is_said_in_the_singular(in_process: InProcess, built: Built) -> None:
    result = in_process("show", built.uri, "support-7", "--last", "1")
    assert result.code == 0, result.err
    assert "1 checkpoint shown" in result.out


def test_bad_filters_and_versions_are_usage_errors(in_process: InProcess, tmp_path: Path) -> None:
    uri = _store(tmp_path / "f.lance", [ContextRecord.from_content("hi", role="user", run_id="s")])
    array, unknown, zero, version = in_process.many(
        ["search", uri, "hi", "-m", "text", "-w", "[1]"],
        ["search", uri, "hi", "-m", "text", "-w", '{"$foo": 1}'],
        ["replay", uri, "0123456789ab", "--at", "0"],
        ["show", uri, "s", "-V", "0"],
    )
    assert array.code == 2 and "--where" in array.err and "JSON object" in array.err, array.err
    assert unknown.code == 2 and "--where" in unknown.err and "$foo" in unknown.err, unknown.err
    assert zero.code == 2 and "--at" in zero.err, zero.err
    assert version.code == 2 and "--version" in version.err and "numbered from 1" in version.err, version.err


def test_versions_written_with_other_digits_are_refused_in_words(
    in_process: InProcess, tmp_path: Path
) -> None:
    uri = _store(tmp_path / "d.lance", [ContextRecord.from_content("hi", role="user", run_id="s")])
    results = in_process.many(
        ["diff", uri, "²", "1"], ["diff", uri, "main@²", "1"], ["replay", uri, "0123456789ab", "--at", "²"]
    )
    for result in results:
        assert result.code in (1, 2) and "invalid literal" not in result.err and "Traceback" not in result.err
    assert "no version, tag or branch named '²'" in results[0].err
    assert "write BRANCH@VERSION" in results[1].err and results[2].code == 2
