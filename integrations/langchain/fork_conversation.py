"""Scenario 4: fork a conversation at an earlier version and continue it on a branch.

Two turns are chatted on ``main``; a third follows. Then the conversation is forked at
the version after turn two into a branch, where a different third turn is tried. The
branch shows turns one, two and the alternative; ``main`` is unchanged, also when the
store is reopened from disk.

    python integrations/langchain/fork_conversation.py [STORE_PATH]
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from lance_context import ContextStore, HashingEmbedder
from lance_context.langchain import LanceChatMessageHistory

# LangChain marks RunnableWithMessageHistory deprecated (LangGraph persistence is the
# successor); it still works and is what many apps use, so keep the demo output clean.
warnings.filterwarnings("ignore", message=".*RunnableWithMessageHistory is deprecated")

SESSION = "trip-planning"


def chat(store: ContextStore, question: str, answer: str) -> None:
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{q}")])
    chain = RunnableWithMessageHistory(
        prompt | GenericFakeChatModel(messages=iter([answer])),
        lambda session_id: LanceChatMessageHistory(session_id, store=store),
        input_messages_key="q",
        history_messages_key="history",
    )
    chain.invoke({"q": question}, config={"configurable": {"session_id": SESSION}})


def texts(store: ContextStore) -> list[str]:
    return [m.text for m in LanceChatMessageHistory(SESSION, store=store).messages]


def main(store_path: str) -> int:
    main_store = ContextStore.open(store_path, embedder=HashingEmbedder(64))
    chat(main_store, "Plan a weekend in Porto.", "Day 1: Ribeira. Day 2: Douro valley.")
    chat(main_store, "Make day 2 cheaper.", "Day 2: walk to Foz instead.")
    fork_point = main_store.version()
    chat(main_store, "Add a fancy dinner.", "Book The Yeatman on Saturday.")
    print(f"main after 3 turns: {texts(main_store)}")

    history = LanceChatMessageHistory(SESSION, store=main_store)
    at_fork = [m.text for m in history.at_version(fork_point).messages]
    print(f"version {fork_point} (after turn 2) shows {len(at_fork)} messages")

    branch = main_store.branch("budget-trip", from_version=fork_point)
    chat(branch, "Actually, keep everything under 100 euros.", "Then stay in a hostel near Bolhao.")
    print(f"branch 'budget-trip':   {texts(branch)}")

    reopened_main = ContextStore.open(store_path, embedder=HashingEmbedder(64))
    reopened_branch = ContextStore.open(store_path, embedder=HashingEmbedder(64), branch="budget-trip")
    main_texts, branch_texts = texts(reopened_main), texts(reopened_branch)
    checks = {
        "the fork point shows the first two turns": at_fork == main_texts[:4] and len(at_fork) == 4,
        "the branch continues from the fork point": branch_texts[:4] == at_fork
        and branch_texts[4:]
        == ["Actually, keep everything under 100 euros.", "Then stay in a hostel near Bolhao."],
        "main is unchanged by the branch": main_texts == texts(main_store)
        and len(main_texts) == 6
        and "hostel" not in " ".join(main_texts),
        "branches are listed": reopened_main.branches() == ["main", "budget-trip"],
    }
    for name, ok in checks.items():
        print(f"{'OK' if ok else 'FAIL'}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.mkdtemp(), "fork.lance")
    if os.path.exists(path):  # a second run would find the first run's records and branches
        sys.exit(f"{path} already exists: give a new STORE_PATH (the scenario builds its store from scratch)")
    sys.exit(main(path))
