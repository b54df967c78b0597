"""Scenario 3: long-term memories written in one thread, found by meaning from another.

One Lance dataset holds both the agent's threads (``LanceCheckpointSaver``) and its
long-term memory (``LanceStore``). In a Monday thread, the user tells the agent three
facts; a ``save_memory`` tool writes each to the store under ``("memories", user)``.
In a new Friday thread (and a new process), the agent knows nothing of Monday's
messages, yet a ``recall`` tool finds the right memory by semantic search for questions
that share no words with it. Another user's memories never show up.

By default the store embeds with the real default model (all-MiniLM-L6-v2, local, no
network); ``--hashing`` uses the dependency-free HashingEmbedder instead: it matches words,
not meaning, so the by-meaning check is skipped.

    python integrations/langgraph/long_term_memory.py [STORE_PATH] [--hashing]
"""

# No ``from __future__ import annotations`` here: LangChain reads the tools' type hints
# (``ToolRuntime``) at definition time, inside build().
import json
import os
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

FACTS = {
    "ada": [
        "I am vegetarian and allergic to peanuts.",
        "My sister Ines lives in Lisbon.",
        "I work night shifts as a nurse.",
    ],
    "bob": ["I love a rare steak with peanut sauce."],
}
QUESTIONS = {
    "Suggest a recipe for me.": "I am vegetarian and allergic to peanuts.",
    "Do I have family in Portugal?": "My sister Ines lives in Lisbon.",
    "When am I usually asleep?": "I work night shifts as a nurse.",
}


@dataclass
class User:
    user_id: str


def respond(messages: list[Any]) -> Any:
    from langchain_core.messages import AIMessage, ToolMessage
    from scripted_model import last_human, tool_call

    last = messages[-1]
    if isinstance(last, ToolMessage):
        return AIMessage("I'll remember that." if last.name == "save_memory" else f"From memory: {last.text}")
    text = last_human(messages)
    if text.startswith("Remember: "):
        return tool_call("save_memory", text=text.removeprefix("Remember: "))
    return tool_call("recall", query=text)


def build(store_path: str, hashing: bool) -> tuple[Any, Any, Any]:
    from langchain.agents import create_agent
    from langchain.tools import ToolRuntime
    from langchain_core.tools import tool
    from scripted_model import ScriptedChatModel

    from lance_context import ContextStore, HashingEmbedder
    from lance_context.langgraph import LanceCheckpointSaver, LanceStore

    if hashing:
        store = ContextStore.open(store_path, embedder=HashingEmbedder(256))
    else:
        store = ContextStore.open(store_path)  # the default model for a new store, the recorded one after
    memory = LanceStore(store=store, index={"fields": ["text"]})

    @tool
    def save_memory(text: str, runtime: ToolRuntime[User]) -> str:
        """Save a fact about the user for future conversations."""
        assert runtime.store is not None
        runtime.store.put(("memories", runtime.context.user_id), uuid.uuid4().hex, {"text": text})
        return "saved"

    @tool
    def recall(query: str, runtime: ToolRuntime[User]) -> str:
        """Find the saved fact most relevant to a question."""
        assert runtime.store is not None
        hits = runtime.store.search(("memories", runtime.context.user_id), query=query, limit=1)
        return hits[0].value["text"] if hits else "nothing saved"

    model = ScriptedChatModel(respond=respond)
    agent = create_agent(
        model,
        [save_memory, recall],
        checkpointer=LanceCheckpointSaver(store=store),
        store=memory,
        context_schema=User,
    )
    return agent, model, memory


def say(agent: Any, thread: str, user: str, text: str) -> str:
    config = {"configurable": {"thread_id": thread}}
    result = agent.invoke({"messages": [{"role": "user", "content": text}]}, config, context=User(user))
    return str(result["messages"][-1].text)


def friday(store_path: str, hashing: bool) -> int:
    """A new process and a new thread: ask questions that only the memories can answer."""
    agent, model, memory = build(store_path, hashing)
    answers = {q: say(agent, "ada-friday", "ada", q) for q in QUESTIONS}
    ranked = {
        q: [(h.value["text"], round(h.score or 0.0, 3)) for h in memory.search(("memories", "ada"), query=q)]
        for q in QUESTIONS
    }
    seen = sorted({m.text for call in model.calls for m in call if m.type == "human"})
    print(json.dumps({"pid": os.getpid(), "answers": answers, "ranked": ranked, "seen_humans": seen}))
    return 0


def main(store_path: str, hashing: bool) -> int:
    agent, _, memory = build(store_path, hashing)
    print(f"embedder: {memory.store.embedder.name if memory.store.embedder else None}")
    for user, facts in FACTS.items():
        for fact in facts:
            reply = say(agent, f"{user}-monday", user, f"Remember: {fact}")
            print(f"[{user}, Monday thread] Remember: {fact} -> {reply}")
    namespaces = memory.list_namespaces(prefix=("memories",))
    print(f"memory namespaces: {namespaces}")

    flag = ["--hashing"] if hashing else []
    done = subprocess.run(
        [sys.executable, __file__, store_path, "--friday", *flag], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n")
        return 1
    out = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"process {out['pid']}, new thread 'ada-friday':")
    for question, answer in out["answers"].items():
        print(f"  user: {question}")
        print(f"  agent: {answer}")
        for text, score in out["ranked"][question]:
            print(f"      {score:>6.3f}  {text}")
    checks = {
        "memories of each user are in their own namespace": namespaces
        == [("memories", "ada"), ("memories", "bob")],
        "the Friday thread never saw Monday's messages": not any(
            h.startswith("Remember:") for h in out["seen_humans"]
        ),
        "every question found its memory by meaning": all(
            out["answers"][q] == f"From memory: {fact}" for q, fact in QUESTIONS.items()
        ),
        "another user's memories never show up": all(
            text not in FACTS["bob"] for ranked in out["ranked"].values() for text, _ in ranked
        ),
    }
    if hashing:  # the questions share no words with the memories: only a model finds them
        checks.pop("every question found its memory by meaning")
    for name, ok in checks.items():
        print(f"{'OK' if ok else 'FAIL'}: {name}")
    if hashing:
        print("SKIP: every question found its memory by meaning (--hashing matches words, not meaning)")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    use_hashing = "--hashing" in sys.argv
    path = args[0] if args else os.path.join(tempfile.mkdtemp(), "memory.lance")
    if "--friday" in sys.argv:
        sys.exit(friday(path, use_hashing))
    if os.path.exists(path):  # a second run would find the first run's records and branches
        sys.exit(f"{path} already exists: give a new STORE_PATH (the scenario builds its store from scratch)")
    sys.exit(main(path, use_hashing))
