"""LanceCache and LanceSemanticCache: exact round trips, scoping, safety and what each write costs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, GenerationChunk

from lance_context import ContextStore, EmbedderMismatchError, HashingEmbedder
from lance_context.adapters import LANGCHAIN_CACHE
from lance_context.langchain import LanceCache, LanceSemanticCache

LLM = "fake-llm temperature=0"
OTHER_LLM = "fake-llm temperature=1"

RICH = [
    ChatGeneration(
        message=AIMessage(
            "It is 21°C.",
            tool_calls=[{"name": "weather", "args": {"city": "Porto"}, "id": "call-1"}],
            usage_metadata={"input_tokens": 3, "output_tokens": 5, "total_tokens": 8},
            response_metadata={"model_name": "fake", "finish_reason": "tool_calls"},
            id="m-1",
        ),
        generation_info={"logprobs": None, "n": 1},
    ),
    ChatGenerationChunk(message=AIMessageChunk("partial", id="m-2")),
    Generation(text="plain", generation_info={"reason": "stop"}),
    GenerationChunk(text="chunk"),
]


@pytest.fixture(params=["exact", "semantic"])
def cache(request: pytest.FixtureRequest, store: ContextStore) -> LanceCache | LanceSemanticCache:
    return LanceCache(store=store) if request.param == "exact" else LanceSemanticCache(store=store)


def _entries(store: ContextStore, kind: str = "exact", name: str = "default") -> int:
    return store.count(where={"run_id": {"$prefix": LANGCHAIN_CACHE.run_id(f"{kind}/{name}/")}})


def test_every_generation_kind_round_trips_exactly(cache: LanceCache | LanceSemanticCache) -> None:
    cache.update("What's the weather in Porto?", LLM, RICH)
    assert cache.lookup("What's the weather in Porto?", LLM) == RICH


def test_a_chat_model_answers_the_second_call_from_the_cache(cache: LanceCache | LanceSemanticCache) -> None:
    answer = AIMessage("Take the tram.", tool_calls=[{"name": "route", "args": {"to": "Foz"}, "id": "c1"}])
    model = GenericFakeChatModel(messages=iter([answer]), cache=cache)  # can answer only once
    first = model.invoke("How do I get to Foz?")
    second = model.invoke("How do I get to Foz?")
    assert (second.content, second.tool_calls, second.id) == (first.content, first.tool_calls, first.id)


def test_entries_are_scoped_to_their_llm_string(cache: LanceCache | LanceSemanticCache) -> None:
    cache.update("same prompt", LLM, [Generation(text="from llm 1")])
    assert cache.lookup("same prompt", OTHER_LLM) is None
    cache.update("same prompt", OTHER_LLM, [Generation(text="from llm 2")])
    assert cache.lookup("same prompt", LLM) == [Generation(text="from llm 1")]
    assert cache.lookup("same prompt", OTHER_LLM) == [Generation(text="from llm 2")]


def test_updating_a_prompt_replaces_its_entry_in_one_commit(
    cache: LanceCache | LanceSemanticCache, store: ContextStore
) -> None:
    cache.update("p", LLM, [Generation(text="old")])
    before = store.version()
    cache.update("p", LLM, [Generation(text="new")])
    assert store.version() == before + 1
    assert cache.lookup("p", LLM) == [Generation(text="new")]
    assert _entries(store, "exact") + _entries(store, "semantic") == 1


def test_values_that_would_not_come_back_exactly_are_not_cached(
    cache: LanceCache | LanceSemanticCache, store: ContextStore
) -> None:
    class Custom(Generation):
        pass

    before = store.version()
    with pytest.warns(UserWarning, match="not cached: generation 0 .* cannot be cached exactly"):
        cache.update("p", LLM, [Generation(text="x", generation_info={"at": dt.datetime(2025, 1, 1)})])
    with pytest.warns(UserWarning, match="cannot be cached exactly"):
        cache.update("p", LLM, [Custom(text="x")])
    with pytest.raises(TypeError, match="not a Generation"):
        cache.update("p", LLM, [Generation(text="ok"), "text"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="list of Generation"):
        cache.update("p", LLM, "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prompt must be a str"):
        cache.update(None, LLM, [Generation(text="ok")])  # type: ignore[arg-type]
    assert store.version() == before and cache.lookup("p", LLM) is None


def test_clear_removes_this_cache_only_or_one_llm(store: ContextStore) -> None:
    exact, semantic = LanceCache(store=store), LanceSemanticCache(store=store)
    other = LanceCache("other", store=store)
    for cache in (exact, semantic, other):
        cache.update("p", LLM, [Generation(text="1")])
        cache.update("p", OTHER_LLM, [Generation(text="2")])
    exact.clear(llm_string=LLM)
    assert exact.lookup("p", LLM) is None and exact.lookup("p", OTHER_LLM) == [Generation(text="2")]
    exact.clear()
    assert exact.lookup("p", OTHER_LLM) is None
    assert other.lookup("p", LLM) == [Generation(text="1")] and semantic.lookup("p", LLM) == [
        Generation(text="1")
    ]
    with pytest.raises(TypeError, match="unexpected arguments"):
        exact.clear(llm="typo")


def test_entries_are_json_and_a_tampered_entry_is_a_miss_never_an_object(
    store: ContextStore, caplog: pytest.LogCaptureFixture
) -> None:
    cache = LanceCache(store=store)
    cache.update("p", LLM, [Generation(text="ok")])
    [record] = store.records(where={"run_id": {"$prefix": LANGCHAIN_CACHE.prefix}})
    assert [json.loads(item)["id"][-1] for item in json.loads(record.binary_payload or b"")] == ["Generation"]
    assert record.embedding is None and record.text_payload is None  # the exact cache embeds nothing
    # a payload naming a class outside the allow-list (a prompt template here) is not revived
    hostile = {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "prompts", "prompt", "PromptTemplate"],
        "kwargs": {"template": "{x}", "input_variables": ["x"]},
    }
    record.binary_payload = json.dumps([json.dumps(hostile)]).encode()
    store.upsert(record)
    assert cache.lookup("p", LLM) is None
    assert "could not be read" in caplog.text and "PromptTemplate" in caplog.text  # refused, not built


# ---------------------------------------------------------------------- semantic matching
class CountingEmbeddings(Embeddings):
    def __init__(self, dimension: int = 32) -> None:
        self.inner = HashingEmbedder(dimension)
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += len(texts)
        return self.inner.embed_texts(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def test_similar_prompts_hit_above_the_threshold_only(store: ContextStore) -> None:
    loose = LanceSemanticCache(store=store, score_threshold=0.5)
    strict = LanceSemanticCache(store=store, score_threshold=1.0)
    loose.update("What is the capital of France?", LLM, [Generation(text="Paris")])
    assert loose.lookup("what is the capital of FRANCE", LLM) == [Generation(text="Paris")]
    assert loose.lookup("Capital city of France, please?", LLM) == [Generation(text="Paris")]
    assert loose.lookup("How do I bake sourdough bread?", LLM) is None
    assert strict.lookup("Capital city of France, please?", LLM) is None


def test_another_llms_closer_prompt_does_not_hide_a_match(store: ContextStore) -> None:
    cache = LanceSemanticCache(store=store, score_threshold=0.3)
    cache.update("Weather in Porto today?", OTHER_LLM, [Generation(text="other model")])
    cache.update("Porto weather forecast for today", LLM, [Generation(text="this model")])
    assert cache.lookup("Weather in Porto today?", LLM) == [Generation(text="this model")]


def test_a_missed_prompt_is_embedded_once_when_then_cached(tmp_path: Path) -> None:
    embeddings = CountingEmbeddings()
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=None, dimension=32)
    cache = LanceSemanticCache(embeddings, store=store)
    embeddings.calls = 0  # the dimension probe
    assert cache.lookup("a new prompt", LLM) is None
    cache.update("a new prompt", LLM, [Generation(text="answer")])
    assert cache.lookup("a new prompt", LLM) == [Generation(text="answer")]
    assert embeddings.calls == 1


def test_embeddings_must_fit_the_store(tmp_path: Path, store: ContextStore) -> None:
    with pytest.raises(EmbedderMismatchError, match="one store holds one embedding space"):
        LanceSemanticCache(DeterministicFakeEmbedding(size=64), store=store)
    bare = ContextStore.open(str(tmp_path / "bare.lance"), embedder=None, dimension=8)
    with pytest.raises(ValueError, match="has no embedder: pass embedding="):
        LanceSemanticCache(store=bare)
    with pytest.raises(EmbedderMismatchError, match="8-dimensional"):
        LanceSemanticCache(DeterministicFakeEmbedding(size=16), store=bare)
    for bad in (1.5, float("nan"), -2):
        with pytest.raises(ValueError, match="score_threshold"):
            LanceSemanticCache(store=store, score_threshold=bad)


async def test_async_twins_share_entries(cache: LanceCache | LanceSemanticCache) -> None:
    await cache.aupdate("p", LLM, RICH)
    assert cache.lookup("p", LLM) == RICH
    assert await cache.alookup("p", LLM) == RICH
    await cache.aclear(llm_string=LLM)
    assert await cache.alookup("p", LLM) is None


def test_a_model_call_whose_answer_cannot_be_cached_still_answers(
    cache: LanceCache | LanceSemanticCache, store: ContextStore
) -> None:
    answers = iter([AIMessage("first", response_metadata={"logprobs": (1, 2)}), AIMessage("second")])
    model = GenericFakeChatModel(messages=answers, cache=cache)
    with pytest.warns(UserWarning, match="not cached"):
        assert model.invoke("q").content == "first"  # a tuple would come back as a list: not cached
    assert model.invoke("q").content == "second"  # asked again: the model, not the cache, answers
    assert model.invoke("q").content == "second"  # and now from the cache
