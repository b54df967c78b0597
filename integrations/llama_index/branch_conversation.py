"""Scenario 4: fork a LlamaIndex conversation into a branch and try another path.

Two turns are chatted through a ``SimpleChatEngine`` on ``main``; a third follows.
The conversation is then forked at the version after turn two into the branch
``try-rome``, where a different third turn is tried. The branch shows turns one, two
and the alternative; ``main`` is unchanged, also when the store is reopened, and the
fork point can still be read with ``at_version``.

    python integrations/llama_index/branch_conversation.py [STORE_PATH]
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

SESSION = "trip-planning"


def make_llm() -> Any:
    """A scripted, network-free LLM: it names the city of the latest user message."""
    from llama_index.core.base.llms.types import ChatMessage, ChatResponse
    from llama_index.core.llms import MockLLM

    class CityLLM(MockLLM):
        def chat(self, messages: Any, **kwargs: Any) -> ChatResponse:
            text = messages[-1].content or ""
            city = next((c for c in ("Paris", "Rome", "Lisbon") if c in text), None)
            reply = f"Great, let's plan {city}." if city else "Where would you like to go?"
            return ChatResponse(message=ChatMessage(role="assistant", content=reply))

    return CityLLM()


def show(title: str, messages: list[Any]) -> list[str]:
    print(title)
    for message in messages:
        print(f"  {message.role.value:9} {message.content}")
    return [m.content for m in messages]


def main(store_path: str) -> int:
    from llama_index.core.chat_engine import SimpleChatEngine

    from lance_context import ContextStore, HashingEmbedder
    from lance_context.llama_index import LanceMemory

    memory = LanceMemory.from_defaults(session_id=SESSION, uri=store_path, embedder=HashingEmbedder(256))
    engine = SimpleChatEngine.from_defaults(memory=memory, llm=make_llm())
    engine.chat("I want a city trip in May.")
    engine.chat("Something with good food, maybe Paris?")
    fork_point = memory.store.version()
    engine.chat("Let's book Paris then.")
    print(f"main: 3 turns, fork point is version {fork_point}")

    branch = memory.branch("try-rome", from_version=fork_point)
    SimpleChatEngine.from_defaults(memory=branch, llm=make_llm()).chat("Actually, what about Rome?")

    reopened = ContextStore.open(store_path)
    main_after = show(
        "\nmain (reopened from disk):",
        LanceMemory.from_defaults(session_id=SESSION, store=reopened).get_all(),
    )
    branch_msgs = show("\nbranch 'try-rome':", branch.get_all())
    at_fork = show(f"\nmain at version {fork_point}:", memory.at_version(fork_point).get_all())

    checks = {
        "the branch continues from the fork point": branch_msgs[:4] == at_fork
        and branch_msgs[4:] == ["Actually, what about Rome?", "Great, let's plan Rome."],
        "main is unchanged by the branch": main_after[4:]
        == ["Let's book Paris then.", "Great, let's plan Paris."],
        "the store lists both branches": reopened.branches() == ["main", "try-rome"],
    }
    print()
    for name, ok in checks.items():
        print(f"{'OK' if ok else 'FAIL'}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.mkdtemp(), "branch.lance")
    if os.path.exists(path):  # a second run would find the first run's records and branches
        sys.exit(f"{path} already exists: give a new STORE_PATH (the scenario builds its store from scratch)")
    sys.exit(main(path))
