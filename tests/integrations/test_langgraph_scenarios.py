"""Run every LangGraph integration scenario as a user would: a script in its own process."""

from __future__ import annotations

from pathlib import Path

from .scenario import run_scenario


def run(script: str, *args: str | Path) -> str:
    return run_scenario("langgraph", script, *args)


def test_agent_conversation_survives_a_process_restart(tmp_path: Path) -> None:
    out = run("agent_across_restarts.py", str(tmp_path / "agent.lance"))
    assert "OK: two different processes" in out
    assert "OK: second process saw the first turn, tool call and result included" in out
    assert "    - tool: sunny and 24C in Lisbon" in out
    assert "OK: the answer comes from the restored history" in out
    assert out.count("OK:") == 5


def test_time_travel_and_forked_continuations(tmp_path: Path) -> None:
    out = run("time_travel_fork.py", str(tmp_path / "travel.lance"))
    assert "1. the thread has 10 checkpoints (newest first):" in out
    assert "OK: the Rome timeline descends from the Lisbon checkpoint, not from Oslo" in out
    assert "OK: update_state fork continues from the edit" in out
    assert "OK: at_version shows the past and refuses writes" in out
    assert "OK: the branch forked the thread, main is unchanged" in out
    assert out.count("OK:") == 7


def test_long_term_memory_found_by_meaning_from_another_thread(tmp_path: Path) -> None:
    # the real default embedding model (local): the questions share no words with the memories
    out = run("long_term_memory.py", str(tmp_path / "memory.lance"))
    assert "embedder: sentence-transformers/all-MiniLM-L6-v2" in out
    assert "  agent: From memory: My sister Ines lives in Lisbon." in out
    assert "OK: every question found its memory by meaning" in out
    assert "OK: another user's memories never show up" in out
    assert out.count("OK:") == 4


def test_scenarios_run_without_arguments() -> None:
    assert "OK: the branch forked the thread" in run("time_travel_fork.py")
