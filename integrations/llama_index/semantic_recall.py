"""Scenario 2: a long conversation trimmed by tokens, with semantic recall of an early fact.

A user mentions an allergy at the start of a 159-message conversation. A ``LanceMemory``
with a 150-token limit keeps only the newest exchanges, so the fact falls out of the
window. With ``semantic_top_k`` the memory searches the session's older messages for
the ones relevant to the new question and puts the fact back, right after the system
message, still within the token limit.

    python integrations/llama_index/semantic_recall.py [STORE_PATH]
"""

from __future__ import annotations

import os
import sys
import tempfile

SESSION = "long-chat"
FACT = "Please remember: I am allergic to peanuts and cashews."
QUESTION = "Which nuts am I allergic to?"
TOPICS = ["museums", "trains", "weather", "hotels", "beaches", "markets", "bikes", "concerts"]


def conversation() -> list[object]:
    from llama_index.core.llms import ChatMessage

    messages = [
        ChatMessage(role="system", content="You are a helpful trip planner."),
        ChatMessage(role="user", content=FACT),
        ChatMessage(role="assistant", content="Noted, I will keep that in mind."),
    ]
    for day in range(1, 79):
        topic = TOPICS[day % len(TOPICS)]
        messages.append(ChatMessage(role="user", content=f"What about {topic} on day {day} of the trip?"))
        messages.append(ChatMessage(role="assistant", content=f"On day {day} the {topic} are lovely."))
    return messages


def main(store_path: str) -> int:
    from lance_context import ContextStore, HashingEmbedder
    from lance_context.llama_index import LanceMemory

    store = ContextStore.open(store_path, embedder=HashingEmbedder(256))
    writer = LanceMemory.from_defaults(session_id=SESSION, store=store)
    writer.put_messages(conversation())  # type: ignore[arg-type]
    total = len(writer.get_all())
    print(f"session {SESSION!r}: {total} messages stored in one commit (version {store.version()})")

    plain = LanceMemory.from_defaults(session_id=SESSION, store=store, token_limit=150)
    window = plain.get(input=QUESTION)
    print(f"\nwithout recall, get() keeps {len(window)} messages within 150 tokens:")
    print(f"  first: {window[0].content!r}\n  then:  {window[1].content!r} ... {window[-1].content!r}")

    recalling = LanceMemory.from_defaults(session_id=SESSION, store=store, token_limit=150, semantic_top_k=1)
    recalled = recalling.get(input=QUESTION)
    tokens = sum(recalling._message_tokens(m) for m in recalled)
    print(
        f"\nwith semantic_top_k=1, get(input={QUESTION!r}) returns {len(recalled)} messages, {tokens} tokens:"
    )
    for message in recalled[:3]:
        print(f"  {message.role.value:9} {message.content}")
    print("  ...")
    print(f"  {recalled[-1].role.value:9} {recalled[-1].content}")

    checks = {
        "the early fact is outside the plain window": FACT not in [m.content for m in window],
        "recall brings the fact back after the system message": [m.content for m in recalled[:2]]
        == ["You are a helpful trip planner.", FACT],
        "the newest exchange is still there": recalled[-1].content == window[-1].content,
        "the recalled window fits the token limit": tokens <= 150,
    }
    print()
    for name, ok in checks.items():
        print(f"{'OK' if ok else 'FAIL'}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.mkdtemp(), "recall.lance")
    if os.path.exists(path):  # a second run would find the first run's records and branches
        sys.exit(f"{path} already exists: give a new STORE_PATH (the scenario builds its store from scratch)")
    sys.exit(main(path))
