"""Run every LlamaIndex integration scenario as a user would: a script in its own process."""

from __future__ import annotations

from pathlib import Path

import pytest

from .scenario import run_scenario


def run(script: str, *args: str | Path) -> str:
    return run_scenario("llama_index", script, *args)


def test_chat_engine_memory_survives_a_process_restart(tmp_path: Path) -> None:
    out = run("chat_engine_restart.py", str(tmp_path / "chat.lance"))
    assert "OK: two different processes" in out
    assert "OK: second process saw the first turn" in out
    assert "    - Hi, I'm Ana and I live in Lisbon." in out
    assert "assistant replies 'You live in Lisbon.'" in out
    assert "OK: stored conversation is complete" in out


def test_semantic_recall_brings_back_an_early_fact(tmp_path: Path) -> None:
    out = run("semantic_recall.py", str(tmp_path / "recall.lance"))
    assert "159 messages stored in one commit" in out
    assert "OK: the early fact is outside the plain window" in out
    assert "  user      Please remember: I am allergic to peanuts and cashews." in out
    assert "OK: the recalled window fits the token limit" in out


@pytest.mark.slow
def test_vector_index_answers_paraphrases_with_the_real_embedder(tmp_path: Path) -> None:
    out = run("paraphrase_retrieval.py", str(tmp_path / "faq.lance"))
    assert "embedder: sentence-transformers/all-MiniLM-L6-v2" in out
    assert "7/7 paraphrased questions retrieved the right document first" in out
    assert "OK: a metadata filter applies before the top-k" in out


def test_fork_a_conversation_into_a_branch(tmp_path: Path) -> None:
    out = run("branch_conversation.py", str(tmp_path / "branch.lance"))
    assert "OK: the branch continues from the fork point" in out
    assert "OK: main is unchanged by the branch" in out
    assert "  assistant Great, let's plan Rome." in out


def test_scenarios_run_without_arguments() -> None:
    out = run("branch_conversation.py")
    assert "OK: main is unchanged by the branch" in out
