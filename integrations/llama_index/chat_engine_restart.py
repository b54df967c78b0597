"""Scenario 1: a LlamaIndex chat engine whose memory survives a process restart.

Two separate Python processes use ``SimpleChatEngine`` with a ``LanceMemory`` on the
same store. The first tells the assistant where the user lives and exits; the second
asks, and its LLM receives the first process's turn from the store.

    python integrations/llama_index/chat_engine_restart.py [STORE_PATH]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

SESSION = "ana-chat"
SYSTEM = "You are a friendly travel assistant."
QUESTIONS = {1: "Hi, I'm Ana and I live in Lisbon.", 2: "Where do I live?"}


def make_llm(seen: list[Any]) -> Any:
    """A scripted, network-free LLM that answers from the history it is given."""
    from llama_index.core.base.llms.types import ChatMessage, ChatResponse
    from llama_index.core.llms import MockLLM

    class HistoryLLM(MockLLM):
        def chat(self, messages: Any, **kwargs: Any) -> ChatResponse:
            seen.extend(messages)
            found = [re.search(r"I live in (\w+)", m.content or "") for m in messages if m.role == "user"]
            city = next((f.group(1) for f in found if f), None)
            question = messages[-1].content or ""
            reply = f"You live in {city}." if city and question.startswith("Where") else "Nice to meet you!"
            return ChatResponse(message=ChatMessage(role="assistant", content=reply))

    return HistoryLLM()


def run_turn(store_path: str, turn: int) -> int:
    """One process: one user turn through the chat engine; prints what the LLM saw."""
    from llama_index.core.chat_engine import SimpleChatEngine

    from lance_context import HashingEmbedder
    from lance_context.llama_index import LanceMemory

    seen: list[Any] = []
    memory = LanceMemory.from_defaults(
        session_id=SESSION, uri=store_path, embedder=HashingEmbedder(256), token_limit=2000
    )
    engine = SimpleChatEngine.from_defaults(memory=memory, llm=make_llm(seen), system_prompt=SYSTEM)
    reply = engine.chat(QUESTIONS[turn])
    print(json.dumps({"pid": os.getpid(), "seen": [m.content for m in seen], "reply": str(reply)}))
    return 0


def child(store_path: str, turn: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, store_path, "--turn", str(turn)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n")
        raise SystemExit(f"FAIL: turn {turn} process exited with {done.returncode}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(store_path: str) -> int:
    first = child(store_path, 1)
    print(f"process {first['pid']}: user says {QUESTIONS[1]!r}; assistant replies {first['reply']!r}; exits")
    second = child(store_path, 2)
    print(f"process {second['pid']}: user says {QUESTIONS[2]!r}")
    print(f"  the LLM received {len(second['seen'])} messages:")
    for text in second["seen"]:
        print(f"    - {text}")
    print(f"  assistant replies {second['reply']!r}")

    from lance_context import ContextStore
    from lance_context.llama_index import LanceMemory

    store = ContextStore.open(store_path)
    stored = [m.content for m in LanceMemory.from_defaults(session_id=SESSION, store=store).get_all()]
    checks = {
        "two different processes": first["pid"] != second["pid"] != os.getpid(),
        "second process saw the first turn": second["seen"][1:3] == [QUESTIONS[1], first["reply"]],
        "the answer used the stored history": second["reply"] == "You live in Lisbon.",
        "stored conversation is complete": stored
        == [QUESTIONS[1], first["reply"], QUESTIONS[2], second["reply"]],
    }
    print(f"store {store_path}: {len(stored)} messages, version {store.version()}")
    for name, ok in checks.items():
        print(f"{'OK' if ok else 'FAIL'}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--turn" in args:
        sys.exit(run_turn(args[0], int(args[args.index("--turn") + 1])))
    path = args[0] if args else os.path.join(tempfile.mkdtemp(), "chat.lance")
    if os.path.exists(path):  # a second run would find the first run's records and branches
        sys.exit(f"{path} already exists: give a new STORE_PATH (the scenario builds its store from scratch)")
    sys.exit(main(path))
