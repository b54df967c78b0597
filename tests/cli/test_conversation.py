"""The read model shared by the command line and the inspector, on records of every shape."""

from __future__ import annotations

import json
from datetime import timedelta

import click
import pytest

from lance_context import ContextRecord
from lance_context._cli._common import parse_duration, safe
from lance_context._cli._conversation import Binary, build_turns, human_bytes, session_kind
from lance_context._cli._render import heading, plural

from ._stores import png


def _llama(role: str, text: str, **kwargs: object) -> ContextRecord:
    message = {
        "format": 1,
        "role": role,
        "blocks": [{"block_type": "text", "text": text}],
        "additional_kwargs": kwargs,
        "binary_block": None,
    }
    return ContextRecord(
        run_id="llama_index.memory:k", role=role, text_payload=text, metadata={"llama_index.message": message}
    )


def test_llama_index_tool_calls_fold_with_their_results() -> None:
    call = {"id": "c-2", "type": "function", "function": {"name": "search", "arguments": '{"q": "porto"}'}}
    turns = build_turns(
        [
            _llama("user", "find Porto"),
            _llama("assistant", "", tool_calls=[call]),
            _llama("tool", "Porto: 3 results", tool_call_id="c-2", name="search"),
            _llama("assistant", "Here they are"),
        ]
    )
    assert [t.role for t in turns] == ["user", "assistant", "assistant"]
    made = turns[1].tool_calls[0]
    assert (made.name, made.arguments, made.call_id) == ("search", '{"q": "porto"}', "c-2")
    assert made.result is not None and made.result.text == "Porto: 3 results" and made.result.position == 2


def test_core_records_with_openai_shapes_and_unanswered_results() -> None:
    asked = ContextRecord(
        run_id="s",
        role="assistant",
        text_payload="checking",
        metadata={"tool_calls": [{"name": "weather", "args": {"city": "Oslo"}, "id": "w1"}]},
    )
    orphan = ContextRecord(
        run_id="s", role="tool", text_payload="late answer", metadata={"tool_call_id": "zz"}
    )
    turns = build_turns([asked, orphan], first_position=10)
    assert turns[0].tool_calls[0].arguments == '{"city": "Oslo"}' and turns[0].tool_calls[0].result is None
    assert turns[1].tool_call_id == "zz" and turns[1].position == 11  # its call is not on this page


def test_binaries_are_summarised_and_attachments_join_their_message() -> None:
    head = ContextRecord(
        run_id="s", role="human", content_type="image/png", binary_payload=png(), text_payload="two pictures"
    )
    extra = ContextRecord(
        run_id="s",
        role="attachment",
        content_type="image/png",
        binary_payload=png("red"),
        metadata={"langchain_attachment_of": head.id},
    )
    blob = ContextRecord(
        run_id="s", role="tool", content_type="application/octet-stream", binary_payload=b"\0" * 2048
    )
    turns = build_turns([head, extra, blob])
    assert len(turns) == 2 and len(turns[0].binaries) == 2
    assert turns[0].binaries[0].summary() == f"<image/png 2x2, {len(png())} B>"
    assert turns[0].binaries[0].inline and not turns[1].binaries[0].inline
    assert turns[1].binaries[0].summary() == "<application/octet-stream, 2.0 kB>"
    assert not Binary("r", "image/svg+xml", 10).inline  # SVG can carry script: never inline


def test_json_content_reads_pretty_and_turns_serialise() -> None:
    record = ContextRecord.from_content({"b": [1, 2], "a": "x"}, role="tool", run_id="s")
    turn = build_turns([record])[0]
    assert turn.text == json.dumps({"b": [1, 2], "a": "x"}, indent=2)
    assert json.loads(json.dumps(turn.to_json()))["content_type"] == "application/json"


def test_small_helpers() -> None:
    assert session_kind("langgraph.store:a") == "LangGraph store namespace"
    assert session_kind("langgraph.checkpoints:t") == "LangGraph thread" and session_kind("mine") == "session"
    assert safe("a\x1b[2Jb\x07\n") == "a\\x1b[2Jb\\x07\n"
    assert [human_bytes(n) for n in (71, 1234, 5_600_000)] == ["71 B", "1.2 kB", "5.6 MB"]
    assert (
        plural(1, "session") == "1 session"
        and plural(2, "LangChain chat history") == "2 LangChain chat histories"
    )
    assert parse_duration("90s") == timedelta(seconds=90) and parse_duration("7d") == timedelta(days=7)
    assert parse_duration("2") == timedelta(days=2)
    with pytest.raises(click.BadParameter):
        parse_duration("soon")


def test_a_heading_breaks_between_its_parts_in_a_narrow_terminal() -> None:
    parts = ["/data/memory.lance", "branch main", "20 versions"]
    assert heading(parts, "italic", 80).plain == "/data/memory.lance · branch main · 20 versions"
    assert heading(parts, "italic", 40).plain == "/data/memory.lance · branch main ·\n20 versions"
    assert heading(parts, "italic", 20).plain == "/data/memory.lance ·\nbranch main ·\n20 versions"
    # width counts terminal cells: a wide character takes two
    assert heading(["会話" * 5, "main@3"], "", 29).plain == "会話会話会話会話会話 · main@3"
    assert heading(["会話" * 5, "main@3"], "", 28).plain == "会話会話会話会話会話 ·\nmain@3"
    long = heading(["x" * 50, "y"], "bold", 10)  # a part wider than the terminal is left whole, to fold
    assert long.plain == "x" * 50 + " ·\ny" and long.style == "bold"
