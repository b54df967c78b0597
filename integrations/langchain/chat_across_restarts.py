"""Scenario 1: a chat chain whose history outlives the process.

The script runs two separate Python processes on the same store. The first talks to a
chain (prompt | fake chat model) wrapped in RunnableWithMessageHistory and exits; the
second continues the same conversation, and the model receives the first turn.

    python integrations/langchain/chat_across_restarts.py [STORE_PATH]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from typing import Any

# LangChain marks RunnableWithMessageHistory deprecated (LangGraph persistence is the
# successor); it still works and is what many apps use, so keep the demo output clean.
warnings.filterwarnings("ignore", message=".*RunnableWithMessageHistory is deprecated")

SESSION = "ada-chat"
TURNS = {
    1: ("Hi, I'm Ada and I love lighthouses.", "Nice to meet you, Ada!"),
    2: ("What do I love?", "You love lighthouses."),
}


def run_turn(store_path: str, turn: int) -> int:
    """One process: one user turn through the chain; prints what the model saw as JSON."""
    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.messages import BaseMessage
    from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
    from langchain_core.runnables import RunnableLambda
    from langchain_core.runnables.history import RunnableWithMessageHistory

    from lance_context import HashingEmbedder
    from lance_context.langchain import LanceChatMessageHistory

    seen: list[BaseMessage] = []

    def spy(prompt_value: Any) -> Any:
        seen.extend(prompt_value.to_messages())
        return prompt_value

    question, answer = TURNS[turn]
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are a friendly assistant."), MessagesPlaceholder("history"), ("human", "{input}")]
    )
    chain = RunnableWithMessageHistory(
        prompt | RunnableLambda(spy) | GenericFakeChatModel(messages=iter([answer])),
        lambda session_id: LanceChatMessageHistory(session_id, uri=store_path, embedder=HashingEmbedder(64)),
        input_messages_key="input",
        history_messages_key="history",
    )
    reply = chain.invoke({"input": question}, config={"configurable": {"session_id": SESSION}})
    print(json.dumps({"pid": os.getpid(), "seen": [m.text for m in seen], "reply": reply.text}))
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
    print(
        f"process {first['pid']}: user says {TURNS[1][0]!r}; model replies {first['reply']!r}; process exits"
    )
    second = child(store_path, 2)
    print(f"process {second['pid']}: user says {TURNS[2][0]!r}")
    print(f"  the model received {len(second['seen'])} messages:")
    for text in second["seen"]:
        print(f"    - {text}")
    print(f"  model replies {second['reply']!r}")

    from lance_context import HashingEmbedder
    from lance_context.langchain import LanceChatMessageHistory

    stored = [
        m.text
        for m in LanceChatMessageHistory(SESSION, uri=store_path, embedder=HashingEmbedder(64)).messages
    ]
    expected = [TURNS[1][0], TURNS[1][1], TURNS[2][0], TURNS[2][1]]
    checks = {
        "two different processes": first["pid"] != second["pid"] != os.getpid(),
        "second process saw the first turn": second["seen"][1:3] == [TURNS[1][0], TURNS[1][1]],
        "stored conversation is complete": stored == expected,
    }
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
