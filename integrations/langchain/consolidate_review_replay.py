"""Scenario 5: consolidate memory on a branch, review what it does to retrieval, merge, replay.

An agent keeps its chat history and its memories (a LangChain vector store) in one
store, and its retriever records what it looks up. A consolidation job runs on a
branch: a scripted model reads the conversation and the memories, writes summaries,
and names the duplicate memories, which the job deletes. Meanwhile the user goes on
chatting on main. Before anything reaches main, ``review`` shows the changes per
session and what three evaluation questions retrieve on main and on the branch; then
the branch is merged as one version, and a search recorded before the merge is
replayed exactly as it ran, then against today, each difference explained.

    python integrations/langchain/consolidate_review_replay.py [STORE_PATH]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from lance_context import ContextStore, HashingEmbedder
from lance_context.langchain import LanceChatMessageHistory, LanceVectorStore

SESSION = "ada"
MEMORIES = {
    "m1": "Ada is allergic to peanuts",
    "m2": "Ada has a peanut allergy, no satay",
    "m3": "Ada's sister Ines lives in Lisbon",
    "m4": "Ada flies to Porto on May 3",
    "m5": "Ada flies to Porto on 3 May, flight TP1234",
    "m6": "Ada likes lighthouses",
}
QUESTIONS = [
    "what is Ada allergic to",
    "when does Ada fly to Porto",
    "who is Ada's sister and where does she live",
]
# What the consolidation model answers (a real job would call an LLM with the same prompt).
CONSOLIDATION = {
    "summaries": {
        "s1": "Ada is allergic to peanuts and cashews: no satay, no pesto",
        "s2": "Ada flies to Porto on May 3 on TP1234 and visits her sister Ines in Lisbon",
    },
    "duplicates": ["m1", "m2", "m3", "m4", "m5"],
    "updated": {"m6": "Ada likes lighthouses; she wants to see Farol de Leca in Porto"},
    "conversation": "Earlier: Ada planned a May trip to Porto and Lisbon and told us about her allergies.",
}


def chat(history: LanceChatMessageHistory, question: str, answer: str) -> None:
    history.add_messages([HumanMessage(question), AIMessage(answer)])


def consolidate(branch: ContextStore) -> None:
    """The consolidation job: one model call, then writes to the branch only."""
    memories = LanceVectorStore(store=branch, collection="memories")
    history = LanceChatMessageHistory(SESSION, store=branch)
    model = GenericFakeChatModel(messages=iter([json.dumps(CONSOLIDATION)]))
    known = "\n".join(f"{doc.id}: {doc.page_content}" for doc in memories.get_by_ids(list(MEMORIES)))
    reply = model.invoke(
        [SystemMessage("Summarise these memories and the conversation; list duplicate ids as JSON."),
         HumanMessage(known), *history.messages]
    )  # fmt: skip
    plan = json.loads(str(reply.content))
    summaries = plan["summaries"]
    memories.add_texts(list(summaries.values()), ids=list(summaries), metadatas=[{"kind": "summary"}] * 2)
    memories.add_texts(list(plan["updated"].values()), ids=list(plan["updated"]))  # an upsert
    memories.delete(plan["duplicates"])
    history.add_messages([SystemMessage(plan["conversation"])])


def main(store_path: str) -> int:
    store = ContextStore.open(store_path, embedder=HashingEmbedder(256))
    history = LanceChatMessageHistory(SESSION, store=store)
    memories = LanceVectorStore(store=store, collection="memories")
    chat(history, "I'm allergic to peanuts, and cashews too.", "Noted: no peanuts, no cashews.")
    chat(
        history,
        "We fly to Porto on May 3, then see my sister in Lisbon.",
        "Lovely. Porto first, then Lisbon.",
    )
    memories.add_texts(list(MEMORIES.values()), ids=list(MEMORIES))
    retriever = memories.as_retriever(k=3, record=True)  # the agent's lookups are recorded
    retriever.invoke(QUESTIONS[0])
    recorded = store.search_log(limit=1)[0]
    print(f"1. the agent looked up {recorded.query!r} at v{recorded.version}; search log id {recorded.id}")

    branch = store.branch("consolidate")
    consolidate(branch)
    chat(history, "Book a table for Saturday?", "Done: Saturday at 20:00.")  # main goes on meanwhile
    before = store.version()
    print(f"2. the consolidation job wrote to branch 'consolidate' (now v{branch.version()}); "
          f"main is at v{before}\n")  # fmt: skip

    review = store.review("consolidate", queries=QUESTIONS, k=2, where={"run_id": memories.namespace})
    after_review = store.version()
    print("3. review (nothing written):\n")
    print(review)

    result = store.merge("consolidate")
    print(f"\n4. {result.summary}\n")

    print("5. the recorded search, replayed:\n")
    exact = store.replay(recorded.id)
    print(exact, end="\n\n")
    today = store.replay(recorded.id, at="latest")
    print(today, end="\n\n")

    messages = [m.text for m in LanceChatMessageHistory(SESSION, store=store).messages]
    checks = {
        "review wrote nothing": after_review == before and len(review.plan.changes) == 9,
        "the review predicted what retrieval returns after the merge": all(
            [h.id for h in q.merged]
            == [h.record.id for h in store.search(q.query, k=2, where={"run_id": memories.namespace})]
            for q in review.queries
        ),
        "every question now finds a summary first": all(
            memories.similarity_search(q, k=1)[0].id in CONSOLIDATION["summaries"] for q in QUESTIONS
        ),
        "the branch was merged as one version": result.merged and result.version == before + 1,
        "merging again changes nothing": not store.merge("consolidate").merged,
        "main's turn stays before the merged summary": messages[-2:]
        == ["Done: Saturday at 20:00.", CONSOLIDATION["conversation"]],
        "the recorded search replays exactly": exact.identical and exact.ids == recorded.ids,
        "every difference from today has a reason": bool(today.changes)
        and today.ids != recorded.ids
        and {c.reason for c in today.changes}
        <= {"added_since", "deleted_since", "changed_since", "displaced"},
    }
    for name, ok in checks.items():
        print(f"{'OK' if ok else 'FAIL'}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.mkdtemp(), "memory.lance")
    if os.path.exists(path):  # a second run would find the first run's records and branches
        sys.exit(f"{path} already exists: give a new STORE_PATH (the scenario builds its store from scratch)")
    sys.exit(main(path))
