"""LanceMemory and the chat stores beside LlamaIndex's own memories, in the flows that use them.

Where a test can, it runs the same flow on LlamaIndex's memory (``Memory``,
``ChatMemoryBuffer``) and on ours, and asserts the outcome a user relies on is the same.
"""

from __future__ import annotations

import pickle

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.memory import BaseMemory, ChatMemoryBuffer, Memory
from llama_index.core.workflow import Context, JsonSerializer
from pydantic_core import PydanticSerializationError
from workflows.context.serializers import BaseSerializer, PickleSerializer
from workflows.context.state_store import UnserializableKeyWarning

from lance_context import ContextStore
from lance_context.llama_index import LanceAsyncChatStore, LanceChatStore, LanceMemory

from .conftest import assistant, user, words
from .test_memory import WORKFLOW_WARNINGS


def system(text: str) -> ChatMessage:
    return ChatMessage(role="system", content=text)


def get_weather(city: str = "Paris") -> str:
    """The weather in a city."""
    return f"sunny in {city}"


async def save_and_resume(agent: FunctionAgent, memory: BaseMemory, serializer: BaseSerializer) -> None:
    """Run, save the context, rebuild it and run again, passing the memory again."""
    ctx = Context(agent)
    await agent.run(user_msg="weather?", memory=memory, ctx=ctx)
    with pytest.warns(UnserializableKeyWarning):
        saved = ctx.to_dict(serializer=serializer)
    restored = Context.from_dict(agent, saved, serializer=serializer)
    await agent.run(user_msg="and tomorrow?", memory=memory, ctx=restored)
    assert [m.content for m in memory.get_all()][-2:] == ["and tomorrow?", "Tool calls complete."]


@WORKFLOW_WARNINGS
async def test_an_agent_context_holding_the_memory_can_be_saved_and_resumed(store: ContextStore) -> None:
    # LlamaIndex skips a memory that does not serialize ("memory" is a known
    # unserializable key) and the caller passes it again when resuming. LanceMemory
    # serialized into a dict that could not be rebuilt: Context.from_dict failed.
    agent = FunctionAgent(tools=[get_weather], llm=MockFunctionCallingLLM())
    reference = Memory.from_defaults(session_id="ref", token_limit=2000)
    ours = LanceMemory.from_defaults(session_id="ours", store=store, token_limit=2000, tokenizer_fn=words)
    for memory in (reference, ours):
        await save_and_resume(agent, memory, JsonSerializer())


@WORKFLOW_WARNINGS
async def test_a_pickled_context_does_not_carry_a_memory_without_its_store(store: ContextStore) -> None:
    # Pickling dropped the store with a log line; the resumed run then used that
    # store-less memory (AttributeError) instead of the one passed again.
    agent = FunctionAgent(tools=[get_weather], llm=MockFunctionCallingLLM())
    memory = LanceMemory.from_defaults(session_id="ours", store=store, token_limit=2000, tokenizer_fn=words)
    await save_and_resume(agent, memory, PickleSerializer())


@pytest.mark.parametrize("kind", ["memory", "chat_store", "async_chat_store"])
def test_objects_bound_to_a_store_refuse_to_serialize_with_a_clear_error(
    store: ContextStore, kind: str
) -> None:
    obj = {
        "memory": lambda: LanceMemory.from_defaults(session_id="s", store=store),
        "chat_store": lambda: LanceChatStore(store=store),
        "async_chat_store": lambda: LanceAsyncChatStore(store=store),
    }[kind]()
    with pytest.raises(TypeError, match="bound to an open store"):
        pickle.dumps(obj)
    for dump in (obj.model_dump, obj.model_dump_json):  # pydantic wraps the TypeError
        with pytest.raises(PydanticSerializationError, match="bound to an open store"):
            dump()


@WORKFLOW_WARNINGS
async def test_a_chat_memory_buffer_on_the_chat_store_is_skipped_like_memory_when_saving(
    store: ContextStore,
) -> None:
    # ChatMemoryBuffer.to_dict dumped {"class_name": "LanceChatStore"}, which
    # load_chat_store refuses: Context.from_dict failed.
    agent = FunctionAgent(tools=[get_weather], llm=MockFunctionCallingLLM())
    memory = ChatMemoryBuffer.from_defaults(
        token_limit=2000, chat_store=LanceChatStore(store=store), chat_store_key="k", tokenizer_fn=words
    )
    await save_and_resume(agent, memory, JsonSerializer())


@pytest.mark.parametrize(
    ("history", "limit", "initial"),
    [
        ([user("a b c"), system("s t u v")], 2, 0),
        ([system("s")], 1, 1),
        ([assistant("a"), user("b"), system("s t u v"), assistant("c"), system("t u v")], 2, 1),
    ],
)
def test_when_nothing_fits_the_newest_message_comes_back_even_a_system_one(
    store: ContextStore, history: list[ChatMessage], limit: int, initial: int
) -> None:
    # ChatMemoryBuffer returns the newest message alone so the model can say it is too
    # long; LanceMemory did so only for a non-system message and otherwise returned [].
    reference = ChatMemoryBuffer.from_defaults(token_limit=limit, tokenizer_fn=words)
    reference.set(history)
    memory = LanceMemory.from_defaults(session_id="s", store=store, token_limit=limit, tokenizer_fn=words)
    memory.set(history)
    expected = reference.get(initial_token_count=initial)
    assert expected == history[-1:]
    assert memory.get(initial_token_count=initial) == expected
