"""Model-based random tests: the LangChain adapters against LangChain's in-memory references.

Each test drives one adapter and the reference LangChain ships with the same seeded
random calls (sync and async) and compares what a user sees after every step:
``InMemoryChatMessageHistory`` for the chat history, ``InMemoryRecordManager`` with
``InMemoryVectorStore`` under ``index()`` / ``aindex()`` for the record manager,
``InMemoryByteStore`` for the byte store and ``InMemoryCache`` for the exact LLM cache.
Seeds are fixed, so a failure replays exactly.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.indexing import InMemoryRecordManager, RecordManager, aindex, index
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    HumanMessage,
    HumanMessageChunk,
    RemoveMessage,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, GenerationChunk
from langchain_core.stores import InMemoryByteStore
from langchain_core.vectorstores import InMemoryVectorStore, VectorStore

from lance_context import ContextStore
from lance_context.langchain import (
    LanceByteStore,
    LanceCache,
    LanceChatMessageHistory,
    LanceRecordManager,
    LanceVectorStore,
)

SEEDS = [0, 1, 2]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(24))
PNG_B64 = base64.b64encode(PNG).decode()
#: Message texts; "pdf \udcff" holds a lone surrogate, as text extracted from PDFs can.
WORDS = ["", "hi", "héllo", "日本語", "a b c", "emoji 😀", "tab\there", "x" * 40, "0.5", "null", "pdf \udcff"]


# ---------------------------------------------------------------------- messages
def _json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value with str keys (what a message's kwargs may hold)."""
    kind = rng.randrange(8 if depth < 2 else 5)
    if kind == 0:
        return rng.choice(WORDS)
    if kind == 1:
        return rng.randint(-(2**40), 2**40)
    if kind == 2:
        return rng.choice([0.5, -1.25, 1e-7, 3.0])
    if kind == 3:
        return rng.choice([True, False])
    if kind == 4:
        return None
    if kind in (5, 6):
        return {rng.choice(WORDS[1:]) + str(i): _json(rng, depth + 1) for i in range(rng.randint(0, 3))}
    return [_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]


def _kwargs(rng: random.Random) -> dict[str, Any]:
    value = _json(rng)
    return value if isinstance(value, dict) else {"v": value}


def _block(rng: random.Random) -> Any:
    kind = rng.randrange(9)
    if kind == 0:
        return rng.choice(WORDS)  # a bare string in a content list
    if kind == 1:
        return {"type": "text", "text": rng.choice(WORDS)}
    if kind == 2:
        return {
            "type": "text",
            "text": rng.choice(WORDS),
            "id": f"b{rng.randrange(9)}",
            "extras": _kwargs(rng),
        }
    if kind == 3:
        return {"type": "image_url", "image_url": {"url": "https://example.org/i.png", "detail": "low"}}
    if kind == 4:
        return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}
    if kind == 5:
        return {"type": "image", "base64": PNG_B64, "mime_type": "image/png"}
    if kind == 6:
        return {"type": "image", "source_type": "base64", "data": PNG_B64, "mime_type": "image/png"}
    if kind == 7:
        return {"type": "reasoning", "reasoning": rng.choice(WORDS)}
    return {"type": "image", "url": "https://example.org/j.jpg", "mime_type": "image/jpeg"}


def _content(rng: random.Random) -> Any:
    if rng.random() < 0.6:
        return rng.choice(WORDS)
    return [_block(rng) for _ in range(rng.randint(0, 4))]


def _tool_call(rng: random.Random, n: int) -> dict[str, Any]:
    return {"name": f"tool{n}", "args": _kwargs(rng), "id": f"call{n}", "type": "tool_call"}


def _message(rng: random.Random, n: int) -> BaseMessage:
    """A random message of any type LangChain rebuilds from ``message_to_dict``."""
    common: dict[str, Any] = {"content": _content(rng)}
    if rng.random() < 0.5:
        common["id"] = f"m{n}"
    if rng.random() < 0.3:
        common["name"] = rng.choice(WORDS[1:])
    if rng.random() < 0.4:
        common["additional_kwargs"] = _kwargs(rng)
    if rng.random() < 0.4:
        common["response_metadata"] = _kwargs(rng)
    kind = rng.randrange(13)
    if kind == 0:
        return HumanMessage(**common)
    if kind == 1:
        return SystemMessage(**common)
    if kind in (2, 3):
        extra: dict[str, Any] = {}
        if rng.random() < 0.6:
            extra["tool_calls"] = [_tool_call(rng, n * 10 + i) for i in range(rng.randint(1, 2))]
        if rng.random() < 0.3:
            extra["invalid_tool_calls"] = [
                {
                    "name": "bad",
                    "args": "{not json",
                    "id": f"bad{n}",
                    "error": "parse",
                    "type": "invalid_tool_call",
                }
            ]
        if rng.random() < 0.5:
            extra["usage_metadata"] = {
                "input_tokens": rng.randint(0, 99),
                "output_tokens": 2,
                "total_tokens": 2 + rng.randint(0, 99),
                "input_token_details": {"cache_read": 1},
            }
        return AIMessage(**common, **extra)
    if kind == 4:
        return ToolMessage(
            **common,
            tool_call_id=f"call{n}",
            artifact=_json(rng) if rng.random() < 0.7 else None,
            status=rng.choice(["success", "error"]),
        )
    if kind == 5:
        return ChatMessage(**common, role=rng.choice(["critic", "user", "narrator ✓"]))
    if kind == 6:
        common["name"] = common.get("name") or "fn"
        return FunctionMessage(**common)
    if kind == 7:
        return RemoveMessage(id=f"gone{n}")
    if kind == 8:
        chunks: Any = [
            {"name": "f", "args": '{"a": 1}', "id": f"c{n}", "index": 0, "type": "tool_call_chunk"}
        ]
        return AIMessageChunk(**common, tool_call_chunks=chunks if rng.random() < 0.5 else [])
    if kind == 9:
        return HumanMessageChunk(**common)
    if kind == 10:
        return SystemMessageChunk(**common)
    if kind == 11:
        return ToolMessageChunk(**common, tool_call_id=f"call{n}", artifact=_json(rng))
    return ChatMessageChunk(**common, role="critic")


@pytest.mark.parametrize("seed", SEEDS)
async def test_chat_history_follows_the_reference_step_by_step(store: ContextStore, seed: int) -> None:
    rng = random.Random(seed)
    sessions = ["alpha", "beta", "日本"]
    ours = {s: LanceChatMessageHistory(s, store=store, indexing=None) for s in sessions}
    reference = {s: InMemoryChatMessageHistory() for s in sessions}
    n = 0
    for step in range(100):
        session = rng.choice(sessions)
        op = rng.randrange(9)
        for history in (reference[session], ours[session]):
            state = random.Random(f"{seed}/{step}")  # both sides get equal, distinct objects
            batch = [_message(state, n + i) for i in range(state.randint(0, 3))]
            if op == 0:
                history.add_messages(batch)
            elif op == 1:
                await history.aadd_messages(batch)
            elif op == 2 and batch:
                history.add_message(batch[0])
            elif op == 3:
                history.add_user_message(
                    state.choice(WORDS) if state.random() < 0.5 else HumanMessage("q", id="u")
                )
            elif op == 4:
                history.add_ai_message(
                    state.choice(WORDS) if state.random() < 0.5 else AIMessage("r", id="a")
                )
            elif op == 5 and state.random() < 0.3:
                history.clear()
            elif op == 6 and state.random() < 0.3:
                await history.aclear()
            else:
                history.add_messages(batch[:1])
        n += 10
        # no normalisation: the messages read back equal the ones given, type included
        assert ours[session].messages == reference[session].messages, (seed, step)
        if step % 10 == 0:
            for s in sessions:
                assert await ours[s].aget_messages() == await reference[s].aget_messages(), (seed, step, s)


def test_messages_holding_lone_surrogates_read_back_as_the_reference_keeps_them(store: ContextStore) -> None:
    # text extracted from PDFs can hold lone surrogates: the reference keeps them, and so do we
    messages: list[BaseMessage] = [
        ToolMessage("page 3: caf\udce9", tool_call_id="c\ud800", artifact={"raw\udcff": ["\ud83d"]}),
        HumanMessage(
            [{"type": "text", "text": "x\udcff"}, {"type": "image", "base64": PNG_B64}], name="n\ud800"
        ),
    ]
    reference, ours = InMemoryChatMessageHistory(), LanceChatMessageHistory("pdf", store=store)
    for history in (reference, ours):
        history.add_messages(messages)
    assert ours.messages == reference.messages == messages
    assert ours.search("page", k=1, mode="text") == messages[:1]  # searched by its text, U+FFFD for each


# ---------------------------------------------------------------------- record manager
EMBEDDING = DeterministicFakeEmbedding(size=8)


def _stored(records: RecordManager, vs: VectorStore) -> list[tuple[str | None, str, Any]]:
    keys = sorted(records.list_keys())
    return sorted((d.id, d.page_content, sorted(d.metadata.items())) for d in vs.get_by_ids(keys))


@pytest.mark.parametrize("seed", SEEDS)
async def test_index_follows_the_reference_run_by_run(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    ours_vs = LanceVectorStore(EMBEDDING, uri=str(tmp_path / "rm.lance"), collection="fuzz")
    sides: list[tuple[RecordManager, VectorStore]] = [
        (InMemoryRecordManager("ns"), InMemoryVectorStore(EMBEDDING)),
        (LanceRecordManager("ns", store=ours_vs.store), ours_vs),
    ]
    for records, _ in sides:
        records.create_schema()
    sources = ["a.md", "b.md", "c.md", "d.md", "日本.md"]
    for run in range(12):
        docs = [
            Document(
                rng.choice(["alpha", "beta", "gamma", "delta"]) + f" {rng.randrange(3)}",
                metadata={"source": rng.choice(sources), "n": rng.randrange(2)},
                id=f"given{rng.randrange(3)}" if rng.random() < 0.2 else None,  # index() hashes anyway
            )
            for _ in range(rng.randint(0, 6))
        ]
        if docs and rng.random() < 0.1:
            docs[-1].metadata.pop("source")  # refused by index() in the cleanup modes needing a source
        cleanup = rng.choice([None, "incremental", "full", "scoped_full"])
        source_id_key: Any = rng.choice(["source", lambda d: d.metadata.get("source")])
        options: dict[str, Any] = {
            "cleanup": cleanup,
            "source_id_key": source_id_key
            if cleanup in ("incremental", "scoped_full") or rng.random() < 0.5
            else None,
            "batch_size": rng.randint(1, 4),
            "cleanup_batch_size": rng.randint(1, 5),
            "force_update": rng.random() < 0.2,
            "key_encoder": "sha256",
        }
        use_async = rng.random() < 0.4
        results = []
        for records, vs in sides:
            try:
                if use_async:
                    result: Any = dict(await aindex(docs, records, vs, **options))
                else:
                    result = dict(index(docs, records, vs, **options))
            except (KeyError, ValueError) as exc:  # both refuse the same batch, having written the same
                result = type(exc).__name__
            # the keys in the order first recorded (the reference's dict order)
            results.append((result, _stored(records, vs), records.list_keys()))
        assert results[1] == results[0], (seed, run, options)
        for group in sources:
            assert sides[1][0].list_keys(group_ids=[group]) == sides[0][0].list_keys(group_ids=[group]), (
                seed,
                run,
                group,
            )


# ---------------------------------------------------------------------- byte store
KEYS = ["a", "ab", "a%", "a_", "b", "日本", "😀", "", "a/b", "A", "a b", "'"]


@pytest.mark.parametrize("seed", SEEDS)
async def test_byte_store_follows_the_reference_step_by_step(store: ContextStore, seed: int) -> None:
    rng = random.Random(seed)
    reference, ours = InMemoryByteStore(), LanceByteStore(f"fuzz{seed}", store=store)
    for step in range(80):
        op = rng.randrange(4)
        keys = [rng.choice(KEYS) for _ in range(rng.randint(0, 4))]
        pairs = [(k, rng.choice([b"", b"\x00", b"v", bytes(range(256)), str(step).encode()])) for k in keys]
        use_async = rng.random() < 0.3
        for kv in (reference, ours):
            if op == 0:
                await kv.amset(pairs) if use_async else kv.mset(pairs)
            elif op == 1:
                await kv.amdelete(keys) if use_async else kv.mdelete(keys)
        asked = [rng.choice(KEYS) for _ in range(rng.randint(0, 5))]
        assert ours.mget(asked) == reference.mget(asked), (seed, step)
        prefix = rng.choice([None, "", "a", "a%", "a_", "日", "zz"])
        # the keys in the order first written (a dict's order, as the reference keeps them)
        assert list(ours.yield_keys(prefix=prefix)) == list(reference.yield_keys(prefix=prefix)), (seed, step)
        if step % 10 == 0:
            assert await ours.amget(asked) == await reference.amget(asked)
            assert [k async for k in ours.ayield_keys(prefix=prefix)] == [
                k async for k in reference.ayield_keys(prefix=prefix)
            ]


# ---------------------------------------------------------------------- LLM cache
def _generations(rng: random.Random, n: int) -> list[Generation]:
    out: list[Generation] = []
    for i in range(rng.randint(0, 3)):
        info = _kwargs(rng) if rng.random() < 0.5 else None
        kind = rng.randrange(4)
        if kind == 0:
            out.append(Generation(text=rng.choice(WORDS), generation_info=info))
        elif kind == 1:
            out.append(GenerationChunk(text=rng.choice(WORDS), generation_info=info))
        else:
            message = _message(random.Random(f"{n}/{i}"), n)
            if isinstance(message, RemoveMessage):  # not a model's output
                message = AIMessage(rng.choice(WORDS))
            if kind == 3 and isinstance(message, AIMessageChunk):
                out.append(ChatGenerationChunk(message=message, generation_info=info))
            else:
                out.append(ChatGeneration(message=message, generation_info=info))
    return out


@pytest.mark.parametrize("seed", SEEDS)
async def test_exact_cache_follows_the_reference_step_by_step(store: ContextStore, seed: int) -> None:
    rng = random.Random(seed)
    reference, ours = InMemoryCache(), LanceCache(f"fuzz{seed}", store=store)
    prompts = ["", "hello", "Hello", "日本語", "[{'role': 'user'}]", "x" * 500]
    llms = ["model=a", "model=b", "", "{'temperature': 0.5}"]
    for step in range(80):
        op = rng.randrange(6)
        prompt, llm = rng.choice(prompts), rng.choice(llms)
        use_async = rng.random() < 0.3
        if op <= 2:
            value = _generations(rng, step)
            for cache in (reference, ours):
                await cache.aupdate(prompt, llm, value) if use_async else cache.update(prompt, llm, value)
        elif op == 3 and rng.random() < 0.3:
            for cache in (reference, ours):
                await cache.aclear() if use_async else cache.clear()
        asked = (rng.choice(prompts), rng.choice(llms))
        if use_async:
            assert await ours.alookup(*asked) == await reference.alookup(*asked), (seed, step)
        else:
            assert ours.lookup(*asked) == reference.lookup(*asked), (seed, step)
    for prompt in prompts:
        for llm in llms:
            assert ours.lookup(prompt, llm) == reference.lookup(prompt, llm)
