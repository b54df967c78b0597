"""LanceChatMessageHistory: lossless storage, windows, versions, search, async, chains."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from lance_context import (
    ContextRecord,
    ContextStore,
    HashingEmbedder,
    ReadOnlyError,
    RecallOptions,
    SearchError,
)
from lance_context.adapters import LANGCHAIN_HISTORY
from lance_context.langchain import LanceChatMessageHistory

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(100, 140))
PNG_B64 = base64.b64encode(PNG).decode()
JPEG_B64 = base64.b64encode(JPEG).decode()

FULL_AI = AIMessage(
    content="Let me check the weather and the time.",
    tool_calls=[
        {"name": "weather", "args": {"city": "Paris", "days": 3}, "id": "call-1"},
        {"name": "clock", "args": {"tz": "Europe/Paris"}, "id": "call-2"},
    ],
    invalid_tool_calls=[{"name": "broken", "args": "{not json", "id": "call-3", "error": "bad JSON"}],
    usage_metadata={
        "input_tokens": 12,
        "output_tokens": 7,
        "total_tokens": 19,
        "input_token_details": {"cache_read": 4},
    },
    response_metadata={"model_name": "fake-1", "finish_reason": "tool_calls", "logprobs": None},
    id="run-ai-1",
    name="planner",
    additional_kwargs={"refusal": None, "nested": {"list": [1, 2.5, "x"], "big": 2**70}},
)

EVERY_TYPE: list[BaseMessage] = [
    SystemMessage("You are terse.", id="sys-1"),
    HumanMessage("What's the weather?", id="h-1", name="ada", additional_kwargs={"locale": "fr"}),
    FULL_AI,
    ToolMessage(
        "18C, light rain",
        tool_call_id="call-1",
        artifact={"raw": {"temp_c": 18, "rain": True}, "stations": ["LFPG", "LFPO"]},
        status="success",
        name="weather",
        id="t-1",
    ),
    ToolMessage("clock offline", tool_call_id="call-2", status="error"),
    ChatMessage("I would add an umbrella.", role="critic", id="c-1"),
    FunctionMessage('{"ok": true}', name="legacy_fn"),
    AIMessageChunk("partial ", id="chunk-1"),
    HumanMessage(
        content=[
            {"type": "text", "text": "Summarise this."},
            {"type": "text-plain", "text": "plain file text", "mime_type": "text/plain"},
        ]
    ),
    AIMessage(
        content=[
            {"type": "reasoning", "reasoning": "The user wants a summary."},
            {
                "type": "text",
                "text": "Rain in Paris.",
                "annotations": [{"type": "citation", "url": "https://example.org", "cited_text": "rain"}],
            },
        ]
    ),
]


def history(store: ContextStore, session: str = "s1", **options: Any) -> LanceChatMessageHistory:
    return LanceChatMessageHistory(session, store=store, **options)


# ---------------------------------------------------------------------- round trip
@pytest.mark.parametrize("message", EVERY_TYPE, ids=lambda m: f"{type(m).__name__}")
def test_every_message_type_reads_back_equal(store: ContextStore, message: BaseMessage) -> None:
    h = history(store)
    h.add_message(message)
    [back] = h.messages
    assert back == message
    assert type(back) is type(message)


def test_changing_a_returned_message_changes_no_later_read(store: ContextStore) -> None:
    """Reads after the first come from the store's cache: each gets messages of its own."""
    h = history(store)
    h.add_messages([FULL_AI, HumanMessage("hi", additional_kwargs={"tags": ["a"], "ctx": {"k": 1}})])
    ai, human = h.get_messages(last=2)
    ai.tool_calls[0]["args"]["city"] = "Rome"  # type: ignore[attr-defined]
    ai.usage_metadata["input_token_details"]["cache_read"] = 0  # type: ignore[attr-defined]
    human.additional_kwargs["tags"].append("b")
    human.additional_kwargs["ctx"]["k"] = 2
    again = h.get_messages(last=2)
    assert again[0] == FULL_AI
    assert again[1].additional_kwargs == {"tags": ["a"], "ctx": {"k": 1}}


def test_reads_of_rebuilt_messages_never_share_what_a_caller_changes(store: ContextStore) -> None:
    """Messages are rebuilt once per cached record and handed out as copies of their own."""
    h = history(store)
    listed = HumanMessage([{"type": "text", "text": "look"}, "plain"], id="h1")
    tool = ToolMessage("42", tool_call_id="call-1", artifact={"rows": [1, 2]}, id="t1")
    h.add_messages([listed, tool, AIMessage("done", id="a1")])
    for _ in range(3):
        first, second, third = h.get_messages(last=3)
        assert [first, second, third] == [listed, tool, AIMessage("done", id="a1")]
        first.content[0]["text"] = "changed"  # type: ignore[index]
        first.content.append("more")  # type: ignore[union-attr]
        second.artifact["rows"].append(3)  # type: ignore[attr-defined]
        third.content = "overwritten"
    assert h.messages == [listed, tool, AIMessage("done", id="a1")]
    assert h.messages[0] is not h.messages[0]
    h.clear()
    h.add_messages([HumanMessage("new words", id="h1")])  # same id, new content
    assert h.get_messages(last=3) == [HumanMessage("new words", id="h1")]


def test_conversation_survives_reopening_the_store(store_path: str) -> None:
    first = LanceChatMessageHistory("s1", uri=store_path, embedder=HashingEmbedder(64))
    first.add_messages(EVERY_TYPE)
    reopened = LanceChatMessageHistory("s1", uri=store_path, embedder=HashingEmbedder(64))
    assert reopened.messages == EVERY_TYPE
    assert reopened.messages[2].tool_calls == FULL_AI.tool_calls  # type: ignore[attr-defined]


def test_records_carry_role_and_text_for_search(store: ContextStore) -> None:
    history(store).add_messages([HumanMessage("hello there"), FULL_AI])
    records = store.records(LANGCHAIN_HISTORY.run_id("s1"))
    assert [r.role for r in records] == ["human", "ai"]
    assert [r.text_payload for r in records] == ["hello there", FULL_AI.text]
    assert all(r.embedding is not None for r in records)


def test_one_add_messages_call_is_one_version(store: ContextStore) -> None:
    h = history(store)
    before = store.version()
    h.add_messages(EVERY_TYPE)
    assert store.version() == before + 1
    h.add_message(HumanMessage("one more"))
    assert store.version() == before + 2
    h.add_messages([])
    assert store.version() == before + 2


def test_messages_keep_append_order_across_calls(store: ContextStore) -> None:
    h = history(store)
    for n in range(5):
        h.add_messages([HumanMessage(f"q{n}"), AIMessage(f"a{n}")])
    assert [m.text for m in h.messages] == [x for n in range(5) for x in (f"q{n}", f"a{n}")]


# ---------------------------------------------------------------------- images
IMAGE_MESSAGES = {
    "v1-base64": HumanMessage(
        content=[
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image", "base64": PNG_B64, "mime_type": "image/png", "id": "img-1"},
        ]
    ),
    "raw-bytes": HumanMessage(content=[{"type": "image", "data": JPEG}]),
    "data-url": HumanMessage(
        content=[
            {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{JPEG_B64}", "detail": "low"}}
        ]
    ),
    "data-url-string": HumanMessage(
        content=[{"type": "image_url", "image_url": f"data:image/png;base64,{PNG_B64}"}]
    ),
    "v0-source-type": HumanMessage(
        content=[{"type": "image", "source_type": "base64", "data": PNG_B64, "mime_type": "image/png"}]
    ),
    "anthropic-source": HumanMessage(
        content=[
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG_B64}}
        ]
    ),
    "tool-result-image": ToolMessage(
        content=[{"type": "image", "base64": PNG_B64, "mime_type": "image/png"}], tool_call_id="call-9"
    ),
}


@pytest.mark.parametrize("name", list(IMAGE_MESSAGES))
def test_images_are_binary_payloads_and_come_back_as_the_same_block(store: ContextStore, name: str) -> None:
    message = IMAGE_MESSAGES[name]
    h = history(store)
    h.add_message(message)
    [record] = store.records(LANGCHAIN_HISTORY.run_id("s1"))
    assert record.binary_payload in (PNG, JPEG)
    assert record.content_type == ("image/png" if record.binary_payload == PNG else "image/jpeg")
    stored_json = str(record.metadata)
    assert PNG_B64 not in stored_json and JPEG_B64 not in stored_json
    assert h.messages == [message]


def test_several_images_in_one_message(store: ContextStore) -> None:
    message = HumanMessage(
        content=[
            {"type": "text", "text": "Compare these three."},
            {"type": "image", "base64": PNG_B64, "mime_type": "image/png"},
            {"type": "image", "data": JPEG},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        ]
    )
    h = history(store)
    before = store.version()
    h.add_messages([message, AIMessage("They differ.")])
    assert store.version() == before + 1
    records = store.records(LANGCHAIN_HISTORY.run_id("s1"))
    payloads = [(r.content_type, r.binary_payload) for r in records if r.binary_payload]
    assert payloads == [("image/png", PNG), ("image/jpeg", JPEG), ("image/png", PNG)]
    assert h.messages == [message, AIMessage("They differ.")]
    assert h.get_messages(last=2) == [message, AIMessage("They differ.")]
    assert h.at_version(store.version()).messages[0] == message


def test_non_canonical_base64_stays_inline_and_round_trips(store: ContextStore) -> None:
    wrapped = PNG_B64[:10] + "\n" + PNG_B64[10:]
    message = HumanMessage(content=[{"type": "image", "base64": wrapped, "mime_type": "image/png"}])
    h = history(store)
    h.add_message(message)
    assert h.messages == [message]


def test_image_message_is_found_by_its_text(store: ContextStore) -> None:
    h = history(store)
    h.add_messages([IMAGE_MESSAGES["v1-base64"], HumanMessage("unrelated chatter about trains")])
    assert h.search("what is in this picture", k=1, mode="hybrid") == [IMAGE_MESSAGES["v1-base64"]]
    # recall (the default) brings the match with the message after it
    assert h.search("what is in this picture", k=1) == [
        IMAGE_MESSAGES["v1-base64"],
        HumanMessage("unrelated chatter about trains"),
    ]


# ---------------------------------------------------------------------- windows
def tool_conversation() -> list[BaseMessage]:
    return [
        SystemMessage("system prompt"),
        HumanMessage("first question"),
        AIMessage("first answer"),
        HumanMessage("weather and time?"),
        AIMessage(
            "", tool_calls=[{"name": "w", "args": {}, "id": "a"}, {"name": "t", "args": {}, "id": "b"}]
        ),
        ToolMessage("rain", tool_call_id="a"),
        ToolMessage("noon", tool_call_id="b"),
        AIMessage("rain at noon"),
    ]


def count_messages(messages: Sequence[BaseMessage]) -> int:
    return len(messages)


def test_window_never_splits_a_tool_exchange_nor_starts_on_a_tool_result(store: ContextStore) -> None:
    h = history(store)
    h.add_messages(tool_conversation())
    convo = tool_conversation()
    for budget in range(0, 10):
        window = h.get_messages(max_tokens=budget, token_counter=count_messages)
        assert len(window) <= budget
        body = window[1:] if window and isinstance(window[0], SystemMessage) else window
        assert not body or not isinstance(body[0], ToolMessage)
        for i, message in enumerate(window):
            if isinstance(message, AIMessage) and message.tool_calls:
                assert [m.tool_call_id for m in window[i + 1 : i + 3]] == ["a", "b"]  # type: ignore[attr-defined]
    # budget 4: the system message, then the last answer only (the 3-message tool group does not fit)
    assert h.get_messages(max_tokens=4, token_counter=count_messages) == [convo[0], convo[-1]]
    assert h.get_messages(max_tokens=5, token_counter=count_messages) == [convo[0], *convo[4:]]


def test_window_by_count_and_default_token_counter(store: ContextStore) -> None:
    h = history(store)
    h.add_messages(tool_conversation())
    convo = tool_conversation()
    assert h.get_messages() == convo
    assert h.get_messages(last=1) == [convo[0], convo[-1]]  # the pinned system message is not counted
    assert h.get_messages(last=1, include_system=False) == [convo[-1]]
    assert h.get_messages(last=3, include_system=False) == [convo[-1]]  # the tool group needs 4
    assert h.get_messages(last=4, include_system=False) == convo[4:]
    assert h.get_messages(last=5, include_system=False) == convo[3:]
    small = h.get_messages(max_tokens=40)
    assert small[0] == convo[0] and small[-1] == convo[-1] and len(small) < len(convo)


class WordCountingModel(GenericFakeChatModel):
    """A fake chat model whose tokenizer counts words (no tokenizer download)."""

    def get_num_tokens(self, text: str) -> int:
        return len(text.split())


def test_window_accepts_a_chat_model_as_counter(store: ContextStore) -> None:
    h = history(store)
    h.add_messages(tool_conversation())
    model = WordCountingModel(messages=iter([]))
    convo = tool_conversation()
    assert h.get_messages(max_tokens=10_000, token_counter=model) == convo
    # "System: system prompt" = 3 words, "AI: rain at noon" = 4 words
    assert h.get_messages(max_tokens=7, token_counter=model) == [convo[0], convo[-1]]


def test_bad_window_arguments(store: ContextStore) -> None:
    h = history(store)
    with pytest.raises(ValueError, match="last"):
        h.get_messages(last=-1)
    with pytest.raises(ValueError, match="max_tokens"):
        h.get_messages(max_tokens=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="token_counter"):
        h.get_messages(max_tokens=5, token_counter="tiktoken")


# ---------------------------------------------------------------------- versions
def test_time_travel_and_clear(store: ContextStore) -> None:
    h = history(store)
    h.add_messages([HumanMessage("one"), AIMessage("uno")])
    v1 = store.version()
    h.add_messages([HumanMessage("two"), AIMessage("dos")])
    v2 = store.version()
    assert [m.text for m in h.at_version(v1).messages] == ["one", "uno"]
    h.clear()
    assert h.messages == []
    assert store.version() == v2 + 1
    assert [m.text for m in h.at_version(v2).messages] == ["one", "uno", "two", "dos"]
    past = h.at_version(v1)
    with pytest.raises(ReadOnlyError):
        past.add_message(HumanMessage("rewrite history"))
    with pytest.raises(ReadOnlyError):
        past.clear()
    assert h.messages == []


def test_at_version_accepts_a_tag(store: ContextStore) -> None:
    h = history(store)
    h.add_messages([HumanMessage("tagged")])
    store.tag("before-clear")
    h.clear()
    assert [m.text for m in h.at_version("before-clear").messages] == ["tagged"]


# ---------------------------------------------------------------------- search
def test_search_finds_older_turns_of_this_session_only(store: ContextStore) -> None:
    mine, other = history(store, "mine"), history(store, "other")
    mine.add_messages(
        [
            HumanMessage("my cat is called Marmalade"),
            AIMessage("Lovely name for a cat"),
            HumanMessage("book a train to Lyon on Friday"),
            AIMessage("Train booked"),
        ]
    )
    other.add_messages([HumanMessage("my cat is called Marmalade too")])
    found = mine.search("cat called Marmalade", k=1)
    assert found == [HumanMessage("my cat is called Marmalade"), AIMessage("Lovely name for a cat")]
    everything = mine.search("cat called Marmalade", k=10)
    assert sorted(map(str, everything)) == sorted(map(str, mine.messages))  # each once, none of other's
    alone = history(store, "mine", recall=RecallOptions(before=0, after=0))
    assert alone.search("cat called Marmalade", k=1) == [HumanMessage("my cat is called Marmalade")]
    past = alone.at_version(store.version())  # a view of the past recalls as its history does
    assert past.recall_options == alone.recall_options and past.indexing == alone.indexing
    assert past.search("cat called Marmalade", k=1) == [HumanMessage("my cat is called Marmalade")]
    assert mine.search("train Lyon Friday", k=1, mode="text") == [
        HumanMessage("book a train to Lyon on Friday")
    ]
    assert HumanMessage("book a train to Lyon on Friday") in mine.search("train to Lyon", k=2, mode="hybrid")


def test_embedding_can_be_turned_off(store_path: str) -> None:
    h = LanceChatMessageHistory("s1", uri=store_path, embedder=None)
    h.add_messages([HumanMessage("no vectors here")])
    assert h.messages == [HumanMessage("no vectors here")]
    assert h.store.dimension is None
    with pytest.raises(SearchError):
        h.search("vectors", mode="vector")
    assert h.search("vectors", mode="text") == [HumanMessage("no vectors here")]
    assert h.search("vectors") == [HumanMessage("no vectors here")]  # recall ranks by text alone


# ---------------------------------------------------------------------- async
async def test_async_twins(store: ContextStore) -> None:
    h = history(store)
    await h.aadd_messages([HumanMessage("async hello"), AIMessage("async hi")])
    assert await h.aget_messages() == [HumanMessage("async hello"), AIMessage("async hi")]
    assert await h.aget_messages(last=1) == [AIMessage("async hi")]
    assert await h.asearch("async hello", k=1, mode="hybrid") == [HumanMessage("async hello")]
    assert await h.asearch("async hello", k=1) == [HumanMessage("async hello"), AIMessage("async hi")]
    await h.aclear()
    assert await h.aget_messages() == []


async def test_concurrent_async_writers_lose_nothing(store: ContextStore) -> None:
    sessions = [history(store, f"s{n}") for n in range(4)]
    await asyncio.gather(*(h.aadd_messages([HumanMessage(f"from {h.session_id}")]) for h in sessions))
    for h in sessions:
        assert h.messages == [HumanMessage(f"from {h.session_id}")]


# ---------------------------------------------------------------------- chains
def chain_with_history(store: ContextStore, replies: list[str]) -> RunnableWithMessageHistory:
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{input}")])
    model = GenericFakeChatModel(messages=iter(replies))
    return RunnableWithMessageHistory(
        prompt | model,
        lambda session_id: LanceChatMessageHistory(session_id, store=store),
        input_messages_key="input",
        history_messages_key="history",
    )


def test_runnable_with_message_history_sync(store: ContextStore) -> None:
    chain = chain_with_history(store, ["Hi Ada", "Your name is Ada"])
    config = {"configurable": {"session_id": "chat-42"}}
    chain.invoke({"input": "I am Ada"}, config=config)  # type: ignore[arg-type]
    reply = chain.invoke({"input": "What is my name?"}, config=config)  # type: ignore[arg-type]
    assert reply.content == "Your name is Ada"
    texts = [m.text for m in LanceChatMessageHistory("chat-42", store=store).messages]
    assert texts == ["I am Ada", "Hi Ada", "What is my name?", "Your name is Ada"]


async def test_runnable_with_message_history_async(store: ContextStore) -> None:
    chain = chain_with_history(store, ["first", "second"])
    config = {"configurable": {"session_id": "chat-async"}}
    await chain.ainvoke({"input": "one"}, config=config)  # type: ignore[arg-type]
    await chain.ainvoke({"input": "two"}, config=config)  # type: ignore[arg-type]
    texts = [m.text for m in await LanceChatMessageHistory("chat-async", store=store).aget_messages()]
    assert texts == ["one", "first", "two", "second"]


# ---------------------------------------------------------------------- construction
def test_constructor_needs_exactly_one_of_store_and_uri(store: ContextStore, store_path: str) -> None:
    with pytest.raises(TypeError, match="exactly one of store= .* or uri="):
        LanceChatMessageHistory("s1")
    with pytest.raises(TypeError, match="exactly one"):
        LanceChatMessageHistory("s1", store=store, uri=store_path)
    with pytest.raises(TypeError, match="already open"):
        LanceChatMessageHistory("s1", store=store, embedder=None)
    with pytest.raises(TypeError, match="ContextStore"):
        LanceChatMessageHistory("s1", store="not a store")  # type: ignore[arg-type]


def test_get_messages_reads_only_the_messages_it_returns(store: ContextStore) -> None:
    h = history(store)
    # an old record of the session that cannot be decoded: reading it would raise
    store.add(
        ContextRecord(
            run_id=h.run_id,
            role="human",
            text_payload="unreadable",
            metadata={"langchain_message": {"type": "?"}},
        )
    )
    h.add_messages([SystemMessage("be brief"), *[HumanMessage(f"m{i}") for i in range(40)]])
    with pytest.raises(ValueError):
        h.messages  # noqa: B018 - reading everything meets the unreadable record
    assert [m.text for m in h.get_messages(last=3)] == ["m37", "m38", "m39"]
    assert [m.text for m in h.get_messages(last=2, include_system=False)] == ["m38", "m39"]
    window = h.get_messages(max_tokens=40)
    assert window and window[-1].text == "m39" and "unreadable" not in [m.text for m in window]


async def test_async_twins_take_every_argument_of_their_sync_methods(store: ContextStore) -> None:
    h = history(store)
    await h.aadd_messages([SystemMessage("rules"), HumanMessage("hello world"), AIMessage("hi")])
    assert [m.text for m in await h.aget_messages(last=1, include_system=False)] == ["hi"]
    assert [m.text for m in await h.asearch("hello", k=1, mode="text")] == ["hello world"]


def test_replies_are_indexed_with_the_question_they_answer(store: ContextStore) -> None:
    turns = [HumanMessage("Where did you go in May?"), AIMessage("Lisbon, for the tiles.")]
    indexed, plain = history(store, "indexed"), history(store, "plain", indexing=None)
    indexed.add_messages(turns[:1])
    indexed.add_messages(turns[1:])  # its context is read from the store
    plain.add_messages(turns)
    assert indexed.search("May", k=2, mode="text") == turns  # the reply is found by its question's words
    assert plain.search("May", k=2, mode="text") == turns[:1]
    assert indexed.messages == plain.messages == turns  # the indexed text is never read back
