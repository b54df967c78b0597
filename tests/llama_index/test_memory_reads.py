"""LanceMemory.get on a cached session: its own copies every time, counts that follow the settings."""

from __future__ import annotations

from llama_index.core.base.llms.types import ChatMessage, ImageBlock, TextBlock

from lance_context import ContextStore
from lance_context.llama_index import LanceMemory

from .conftest import assistant, user, words

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))


def _memory(store: ContextStore, **options: object) -> LanceMemory:
    options.setdefault("tokenizer_fn", words)
    return LanceMemory.from_defaults(session_id="s", store=store, **options)  # type: ignore[arg-type]


def _texts(messages: list[ChatMessage]) -> list[str]:
    return [m.content or "" for m in messages]


def test_each_get_hands_out_messages_of_its_own(store: ContextStore) -> None:
    for semantic_top_k in (0, 1):
        memory = _memory(store, token_limit=1000, semantic_top_k=semantic_top_k)
        memory.reset()
        memory.put_messages([user("first question"), assistant("first answer"), user("second")])
        first = memory.get()
        assert _texts(first) == ["first question", "first answer", "second"]
        first[0].blocks[0] = TextBlock(text="replaced by the caller")
        first[1].additional_kwargs["mine"] = True
        first[2].blocks.append(TextBlock(text="appended by the caller"))
        again = memory.get()
        assert _texts(again) == ["first question", "first answer", "second"]
        assert "mine" not in again[1].additional_kwargs and len(again[2].blocks) == 1
        assert all(a is not b for a, b in zip(again, memory.get(), strict=True))


def test_the_window_follows_a_new_tokenizer_or_media_estimate(store: ContextStore) -> None:
    memory = _memory(store, token_limit=8)
    memory.put_messages([user("one two"), assistant("three four"), user("five six"), assistant("seven")])
    assert _texts(memory.get()) == ["one two", "three four", "five six", "seven"]  # 7 words
    memory.tokenizer_fn = lambda text: words(text) * 2  # each word counts twice: 14 tokens
    assert _texts(memory.get()) == ["five six", "seven"]
    memory.tokenizer_fn = words
    assert _texts(memory.get()) == ["one two", "three four", "five six", "seven"]
    memory.reset()
    picture = ChatMessage(role="user", blocks=[TextBlock(text="see"), ImageBlock(image=PNG)])
    memory.put_messages([user("hello there"), assistant("hi"), picture, assistant("nice")])
    memory.media_token_estimate = 2  # the picture's message costs 3, the window 7
    assert [m.role.value for m in memory.get()] == ["user", "assistant", "user", "assistant"]
    memory.media_token_estimate = 6  # now 7, and the window 11: the first exchange goes
    assert [m.role.value for m in memory.get()] == ["user", "assistant"]
