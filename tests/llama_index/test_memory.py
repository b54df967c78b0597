"""LanceMemory: persistence, token windows, semantic recall, versions, engines and agents."""

from __future__ import annotations

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock, ToolCallBlock
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import MockLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM, MockLLMWithChatMemoryOfLastCall

from lance_context import (
    ContextStore,
    EmbedderMismatchError,
    HashingEmbedder,
    InvalidFilterError,
    ReadOnlyError,
    RecallOptions,
)
from lance_context.llama_index import LanceEmbedding, LanceMemory

from .conftest import DIM, assistant, user, words


# The workflows package inspects agents with inspect.getmembers, touching pydantic's
# deprecated __fields__ / __fields_set__ / model_*_fields attributes.
def WORKFLOW_WARNINGS(test):
    for message in (
        "The `__fields.*` attribute is deprecated",
        "Accessing the '.*' attribute on the instance",
    ):
        test = pytest.mark.filterwarnings(f"ignore:{message}:DeprecationWarning")(test)
    return test


def memory_on(store: ContextStore, session: str = "s", **options: object) -> LanceMemory:
    options.setdefault("tokenizer_fn", words)
    return LanceMemory.from_defaults(session_id=session, store=store, **options)  # type: ignore[arg-type]


def tool_call(call_id: str, name: str = "lookup") -> ChatMessage:
    return ChatMessage(
        role="assistant", blocks=[ToolCallBlock(tool_call_id=call_id, tool_name=name, tool_kwargs={})]
    )


def tool_result(call_id: str, text: str) -> ChatMessage:
    return ChatMessage(role="tool", content=text, additional_kwargs={"tool_call_id": call_id})


def test_messages_persist_across_reopen_and_each_put_is_one_commit(store: ContextStore) -> None:
    memory = memory_on(store)
    start = store.version()
    memory.put(user("hello"))
    assert store.version() == start + 1
    memory.put_messages([assistant("hi"), user("how are you"), assistant("fine")])
    assert store.version() == start + 2
    reopened = memory_on(ContextStore.open(store.uri), token_limit=1000)
    assert [m.content for m in reopened.get_all()] == ["hello", "hi", "how are you", "fine"]
    assert [r.run_id for r in store.records()] == [memory.run_id] * 4 == ["llama_index.memory::s"] * 4


def conversation() -> list[ChatMessage]:
    return [
        ChatMessage(role="system", content="be brief"),  # 2 tokens
        user("one two"),
        assistant("three four"),
        user("look it up"),
        tool_call("c1"),  # counted as "lookup {}": 2 tokens
        tool_result("c1", "result one"),  # 2 + kwargs
        tool_result("c1", "result two"),
        assistant("final answer here"),
        user("thanks a lot"),
    ]


@pytest.mark.parametrize("limit", range(0, 60))
def test_window_never_breaks_a_tool_exchange(store: ContextStore, limit: int) -> None:
    memory = memory_on(store, token_limit=max(limit, 1))
    history = conversation()
    memory.put_messages(history)
    window = memory.get()
    tokens = sum(memory._message_tokens(m) for m in window)
    if tokens > max(limit, 1):  # only when not even the newest fits: it alone, as ChatMemoryBuffer does
        assert window == history[-1:]
    body = window[1:] if window and window[0].role == MessageRole.SYSTEM else window
    assert body, "the newest message always comes back"
    assert body[0].role == MessageRole.USER  # a window cut short starts on a user message
    assert body == history[len(history) - len(body) :]  # the newest messages, in order
    for i, message in enumerate(body):
        if message.role == MessageRole.TOOL:
            assert body[i - 1].role == MessageRole.TOOL or any(
                isinstance(b, ToolCallBlock) for b in body[i - 1].blocks
            )
    if any(isinstance(b, ToolCallBlock) for m in body for b in m.blocks):
        assert sum(m.role == MessageRole.TOOL for m in body) == 2


def test_window_keeps_the_system_message_first(store: ContextStore) -> None:
    memory = memory_on(store, token_limit=8)
    memory.put_messages(conversation())
    window = memory.get()
    assert window[0].content == "be brief"
    assert window[-1].content == "thanks a lot"


def test_initial_token_count_shrinks_the_budget(store: ContextStore) -> None:
    memory = memory_on(store, token_limit=10)
    memory.put_messages([user("a b c"), assistant("d e f"), user("g h i")])
    assert len(memory.get()) == 3
    assert [m.content for m in memory.get(initial_token_count=2)] == ["g h i"]  # never starts on the answer
    assert [m.content for m in memory.get(initial_token_count=10)] == ["g h i"]  # too long: the newest alone
    with pytest.raises(ValueError, match="exceeds"):
        memory.get(initial_token_count=11)


def long_chat(fact: str) -> list[ChatMessage]:
    messages = [
        ChatMessage(role="system", content="you are a helpful assistant"),
        user(fact),
        assistant("noted"),
    ]
    for i in range(100, 130):  # numbers no clock or date in the indexed text can hold
        messages += [user(f"tell me about planet number {i} please"), assistant(f"planet {i} is a gas giant")]
    return messages


def test_semantic_recall_brings_back_an_early_fact_within_the_limit(store: ContextStore) -> None:
    fact = "my dog is called biscuit and she loves carrots"
    plain = memory_on(store, token_limit=60)
    plain.put_messages(long_chat(fact))
    assert fact not in [m.content for m in plain.get(input="what is my dog called")]

    recalling = memory_on(store, token_limit=60, semantic_top_k=1)
    window = recalling.get(input="what is my dog called")
    contents = [m.content for m in window]
    assert contents[0] == "you are a helpful assistant"
    assert contents[1] == fact  # right after the system message, before the recent window
    history = [m.content for m in long_chat(fact)]
    assert contents[2:] == history[len(history) - len(contents) + 2 :]  # top_k=1: one recalled
    assert contents[-1] == "planet 129 is a gas giant"
    assert sum(recalling._message_tokens(m) for m in window) <= 60
    # Without an explicit input, the latest user message is the query.
    recalling.put(user("remind me what my dog is called"))
    assert fact in [m.content for m in recalling.get()]


def test_recall_returns_whole_tool_exchanges_and_nothing_from_other_sessions(store: ContextStore) -> None:
    other = memory_on(store, session="other")
    other.put(user("the secret code of the vault is 7781"))
    memory = memory_on(store, token_limit=40, semantic_top_k=2)
    history = [user("check the vault code"), tool_call("v1"), tool_result("v1", "vault code is 1234")]
    for i in range(20):
        history += [user(f"filler question {i}"), assistant(f"filler answer {i}")]
    memory.put_messages(history)
    window = memory.get(input="vault code")
    contents = [m.content for m in window]
    assert "the secret code of the vault is 7781" not in contents
    assert "vault code is 1234" in contents
    index = contents.index("vault code is 1234")
    assert any(isinstance(b, ToolCallBlock) for b in window[index - 1].blocks)
    assert window[index - 2].content == "check the vault code"


def test_semantic_recall_works_by_text_on_a_store_that_does_not_embed(tmp_path) -> None:
    bare = ContextStore.open(str(tmp_path / "bare.lance"), embedder=None)
    fact = "my dog is called biscuit and she loves carrots"
    memory = memory_on(bare, token_limit=60, semantic_top_k=1)
    memory.put_messages(long_chat(fact))
    assert fact in [m.content for m in memory.get(input="what is my dog called")]


def test_a_reranker_chooses_what_is_recalled(store: ContextStore) -> None:
    history = long_chat("my dog is called biscuit and she loves carrots")

    def planet_107_first(query: str, texts: list[str]) -> list[float]:
        return [float("planet 107 " in t or "number 107 " in t) for t in texts]

    options = RecallOptions(reranker=planet_107_first)
    memory = memory_on(store, token_limit=60, semantic_top_k=1, recall_options=options)
    memory.put_messages(history)
    contents = [m.content for m in memory.get(input="planet number 107 dog")]
    assert "planet 107 is a gas giant" in contents
    assert "my dog is called biscuit and she loves carrots" not in contents


def test_a_store_built_with_another_embedder_is_refused(store: ContextStore) -> None:
    with pytest.raises(EmbedderMismatchError):
        LanceMemory.from_defaults(session_id="s", uri=store.uri, embedder=HashingEmbedder(DIM // 2))
    with pytest.raises(EmbedderMismatchError):
        LanceMemory.from_defaults(session_id="s", uri=store.uri, embedder=LanceEmbedding(HashingEmbedder(8)))
    same = LanceMemory.from_defaults(
        session_id="s", uri=store.uri, embedder=LanceEmbedding(HashingEmbedder(DIM))
    )
    assert same.store.embedder is not None and same.store.embedder.name == "hashing"


def test_set_reset_and_time_travel(store: ContextStore) -> None:
    memory = memory_on(store)
    memory.put_messages([user("first"), assistant("reply")])
    before_set = store.version()
    memory.set([user("rewritten")])
    assert [m.content for m in memory.get_all()] == ["rewritten"]
    assert store.version() == before_set + 1  # set() is one commit
    before_reset = store.version()
    memory.reset()
    assert memory.get_all() == []
    assert store.version() == before_reset + 1
    assert [m.content for m in memory.at_version(before_reset).get_all()] == ["rewritten"]
    past = memory.at_version(before_set)
    assert [m.content for m in past.get_all()] == ["first", "reply"]
    with pytest.raises(ReadOnlyError):
        past.put(user("no"))


def test_branch_forks_the_conversation(store: ContextStore) -> None:
    memory = memory_on(store)
    memory.put_messages([user("plan a trip"), assistant("where to?")])
    fork = memory.branch("rome")
    fork.put(user("Rome"))
    memory.put(user("Paris"))
    assert [m.content for m in memory.get_all()] == ["plan a trip", "where to?", "Paris"]
    assert [m.content for m in fork.get_all()] == ["plan a trip", "where to?", "Rome"]


@pytest.mark.parametrize(
    "session",
    ["a", "a%", "a_", "x' OR '1'='1", "a\\", "a\nb", "\u00fc\U0001f600", " ", "a" * 2000, "s/../t"],
)
def test_hostile_session_ids_are_stored_safely_and_isolated(store: ContextStore, session: str) -> None:
    neighbours = ["a", "a%", "b", "x"]
    for name in neighbours:
        memory_on(store, session=name).put(user(f"belongs to {name}"))
    memory = memory_on(store, session=session, semantic_top_k=3)
    memory.put(user(f"mine {session}"))
    expected = [f"belongs to {session}"] if session in neighbours else []
    assert [m.content for m in memory.get_all()] == [*expected, f"mine {session}"]
    assert all(m.content in (*expected, f"mine {session}") for m in memory.get(input="belongs to"))


def test_bad_arguments_are_refused(store: ContextStore) -> None:
    with pytest.raises(InvalidFilterError):
        LanceMemory.from_defaults(session_id="", store=store)
    with pytest.raises(TypeError, match="exactly one"):
        LanceMemory.from_defaults(session_id="s")
    with pytest.raises(TypeError):
        LanceMemory.from_defaults(session_id="s", store="not a store")  # type: ignore[arg-type]


def test_from_defaults_opens_a_uri_and_sizes_the_limit_from_the_llm(tmp_path) -> None:
    memory = LanceMemory.from_defaults(
        session_id="s",
        uri=str(tmp_path / "new.lance"),
        embedder=HashingEmbedder(16),
        llm=MockLLM(),
        chat_history=[user("seed")],
    )
    assert memory.token_limit == int(MockLLM().metadata.context_window * 0.75)
    assert [m.content for m in memory.get_all()] == ["seed"]
    assert memory.store.embedder is not None and memory.store.embedder.name == "hashing"


async def test_async_twins(store: ContextStore) -> None:
    memory = memory_on(store, token_limit=100)
    await memory.aput(user("one"))
    await memory.aput_messages([assistant("two"), user("three")])
    assert [m.content for m in await memory.aget_all()] == ["one", "two", "three"]
    assert [m.content for m in await memory.aget(input="x", initial_token_count=0)] == ["one", "two", "three"]
    await memory.aset([user("only")])
    assert [m.content for m in await memory.aget()] == ["only"]
    await memory.areset()
    assert await memory.aget_all() == []


def test_simple_chat_engine_sees_the_stored_history(store: ContextStore) -> None:
    llm = MockLLMWithChatMemoryOfLastCall(max_tokens=3)
    engine = SimpleChatEngine.from_defaults(
        memory=memory_on(store, token_limit=500), llm=llm, system_prompt="be nice"
    )
    engine.chat("my name is ana")
    fresh = memory_on(ContextStore.open(store.uri), token_limit=500)
    engine = SimpleChatEngine.from_defaults(memory=fresh, llm=llm, system_prompt="be nice")
    response = engine.chat("what is my name?")
    assert str(response) == "text text text"
    seen = [m.content for m in llm.last_chat_messages or []]
    assert seen == ["be nice", "my name is ana", "text text text", "what is my name?"]
    assert len(fresh.get_all()) == 4


async def test_simple_chat_engine_async(store: ContextStore) -> None:
    memory = memory_on(store, token_limit=500)
    engine = SimpleChatEngine.from_defaults(memory=memory, llm=MockLLM(max_tokens=2))
    await engine.achat("hello")
    await engine.achat("again")
    assert [m.role for m in memory.get_all()] == [MessageRole.USER, MessageRole.ASSISTANT] * 2


@WORKFLOW_WARNINGS
async def test_function_agent_keeps_tool_exchanges_in_memory(store: ContextStore) -> None:
    def get_weather(city: str = "Paris") -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    memory = memory_on(store, session="agent", token_limit=2000)
    agent = FunctionAgent(tools=[get_weather], llm=MockFunctionCallingLLM())
    result = await agent.run(user_msg="weather?", memory=memory)
    assert str(result) == "Tool calls complete."
    stored = memory_on(ContextStore.open(store.uri), session="agent").get_all()
    assert [m.role for m in stored] == [
        MessageRole.USER,
        MessageRole.ASSISTANT,
        MessageRole.TOOL,
        MessageRole.ASSISTANT,
    ]
    call = stored[1].blocks[0]
    assert isinstance(call, ToolCallBlock) and call.tool_kwargs == {"city": "Paris"}
    assert stored[2].additional_kwargs == {"tool_call_id": call.tool_call_id}
    assert stored[2].blocks == [TextBlock(text="sunny in Paris")]
    # A second run continues the same stored conversation (the mock answers at once
    # when the history already holds tool results).
    await agent.run(user_msg="and tomorrow?", memory=memory)
    assert [m.content for m in memory.get_all()[4:]] == ["and tomorrow?", "Tool calls complete."]


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 7, 9, 12, 15, 40])
def test_the_window_matches_chat_memory_buffer_on_plain_turns(store: ContextStore, limit: int) -> None:
    from llama_index.core.memory import ChatMemoryBuffer

    history = [
        user("plan a trip"),
        assistant("where to"),
        assistant("maybe Lisbon or Porto"),
        user("Porto please"),
        assistant("booked the train to Porto"),
        user("thanks"),
    ]
    memory = memory_on(store, session=f"plain-{limit}", token_limit=limit)
    memory.put_messages(history)
    reference = ChatMemoryBuffer.from_defaults(token_limit=limit, tokenizer_fn=words)
    reference.set(history)
    assert [m.content for m in memory.get()] == [m.content for m in reference.get()]
    assert [m.content for m in memory.get(initial_token_count=1)] == [
        m.content for m in reference.get(initial_token_count=1)
    ]
