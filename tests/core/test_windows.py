"""Windows read a chunk at a time are the windows of the whole conversation."""

from __future__ import annotations

import random

from lance_context.adapters import fit_window, newest_window

Message = tuple[str, int]  # (kind, tokens): kind is "system", "user", "ai", "call" or "result"


def _conversation(rng: random.Random, n: int) -> list[Message]:
    messages: list[Message] = [("system", rng.randint(1, 20))] if rng.random() < 0.6 else []
    while len(messages) < n:
        kind = rng.choice(["user", "ai", "call", "system"])
        messages.append((kind, rng.randint(1, 30)))
        if kind == "call":
            messages.extend(("result", rng.randint(1, 30)) for _ in range(rng.randint(1, 3)))
    return messages


def _fit(messages: list[Message], budget: int | None, last: int | None, pin: bool) -> list[Message]:
    return fit_window(
        messages,
        is_tool_result=lambda m: m[0] == "result",
        max_tokens=budget,
        token_count=lambda ms: sum(m[1] for m in ms),
        last=last,
        pin_system=(lambda m: m[0] == "system") if pin else None,
    )


def test_chunked_windows_equal_whole_conversation_windows() -> None:
    rng = random.Random(7)
    for _ in range(400):
        conversation = _conversation(rng, rng.randint(0, 120))
        budget = rng.choice([None, rng.randint(0, 400)])
        last = rng.choice([None, rng.randint(0, 60)]) if budget is not None else rng.randint(0, 60)
        pinned = conversation[:1] if conversation and conversation[0][0] == "system" else []
        body = conversation[len(pinned) :]
        reads: list[int] = []

        def newest(
            n: int, body: list[Message] = body, reads: list[int] = reads
        ) -> tuple[list[Message], bool]:
            reads.append(n)
            return body[max(0, len(body) - n) :], n >= len(body)

        got = newest_window(
            newest,
            lambda ms, b=budget, n=last, p=bool(pinned): _fit(ms, b, n, p),
            is_tool_result=lambda m: m[0] == "result",
            pinned=pinned,
            chunk=rng.randint(1, 10),
        )
        assert got == _fit(conversation, budget, last, True), (conversation, budget, last)
        assert sum(reads) < 4 * max(len(conversation), 1) + 50  # never reads much more than it needs
