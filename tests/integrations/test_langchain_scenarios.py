"""Run every LangChain integration scenario as a user would: a script in its own process."""

from __future__ import annotations

from pathlib import Path

import pytest

from .scenario import run_scenario


def run(script: str, *args: str | Path) -> str:
    return run_scenario("langchain", script, *args)


def test_chat_continues_in_a_new_process(tmp_path: Path) -> None:
    out = run("chat_across_restarts.py", tmp_path / "chat.lance")
    assert "OK: two different processes" in out
    assert "OK: second process saw the first turn" in out
    assert "    - Hi, I'm Ada and I love lighthouses." in out
    assert "model replies 'You love lighthouses.'" in out


def test_tool_calling_turn_replays_losslessly_and_trims(tmp_path: Path) -> None:
    out = run("tool_calling_roundtrip.py", tmp_path / "tools.lance")
    assert "OK: replay is lossless (==), tool_calls, usage and artifacts included" in out
    assert "artifact={'rows': [{'flight': 'AF1234'" in out
    assert "OK: at 120 tokens the tool exchange is dropped as a unit, not cut" in out
    assert out.count("OK: max_tokens=") == 5


@pytest.mark.slow
def test_retrieval_with_the_real_embedder_on_paraphrases(tmp_path: Path) -> None:
    out = run("retrieval_paraphrase.py", tmp_path / "faq.lance")
    assert "embedder: sentence-transformers/all-MiniLM-L6-v2" in out
    assert "7/7 paraphrased questions retrieved the right document first" in out
    assert "OK: hybrid retriever on exact words -> shipping" in out


def test_fork_a_conversation_on_a_branch(tmp_path: Path) -> None:
    out = run("fork_conversation.py", tmp_path / "fork.lance")
    assert "OK: the branch continues from the fork point" in out
    assert "OK: main is unchanged by the branch" in out


def test_scenarios_are_runnable_without_arguments() -> None:
    assert "OK: main is unchanged by the branch" in run("fork_conversation.py")


def test_consolidate_on_a_branch_review_merge_and_replay(tmp_path: Path) -> None:
    out = run("consolidate_review_replay.py", tmp_path / "memory.lance")
    assert "3 added, 1 changed, 5 deleted, 0 conflicts" in out
    assert "'what is Ada allergic to' (vector, top 2)" in out
    assert "| 1 + 0.48 Ada is allergic to peanuts and cashews" in out
    assert "merged consolidate@8 into main, now main@6: 3 added, 1 changed, 5 deleted" in out
    assert "the same results, in the same order:" in out
    assert "entered at #1: added since" in out and "left (was #1): deleted since" in out
    assert "entered at #3: changed since" in out
    assert out.count("OK:") == 8
