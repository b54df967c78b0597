"""LlamaIndex adapter beside LlamaIndex's own references, fourth pass.

- ``similarity_top_k`` of 0 or None: ``SimpleVectorStore`` ranks every node (its top-k
  cut is skipped for a falsy k) and a negative one returns none; ours returned nothing.
- Sessions holding a message this LlamaIndex cannot represent (a role or block type of a
  newer version) stay readable: that message reads as a ``user`` message of its text.
- ``get_keys`` after every message of a key is gone: the durable references (the
  SQLAlchemy chat store here, and the SQLite ``BaseChatStore`` integration, one row per
  message) list only keys that still have messages; ``SimpleChatStore`` drops the key on
  ``delete_messages`` but keeps an emptied list after ``delete_message``. Ours lists
  keys that have messages, as the durable stores do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock
from llama_index.core.memory import ChatMemoryBuffer, Memory
from llama_index.core.schema import TextNode
from llama_index.core.storage.chat_store import SimpleChatStore
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from lance_context import ContextRecord, ContextStore
from lance_context.adapters import LLAMA_INDEX_CHAT
from lance_context.llama_index import (
    LanceAsyncChatStore,
    LanceChatStore,
    LanceEmbedding,
    LanceMemory,
    LanceVectorStore,
    message_to_record,
)

from .conftest import DIM, assistant, user
from .test_memory_chat_third_pass import answer, sql_chat_store

MESSAGE_KEY = "llama_index.message"


# ---------------------------------------------------------------------- similarity_top_k 0 / None
TEXTS = {
    "a": "red apples",
    "b": "green apples",
    "c": "yellow bananas",
    "d": "cold ice water",
    "e": "apple pie recipe",
}


def make_nodes(embed_model: LanceEmbedding) -> list[TextNode]:
    return [
        TextNode(id_=key, text=text, metadata={"n": i}, embedding=embed_model.get_text_embedding(text))
        for i, (key, text) in enumerate(TEXTS.items())
    ]


@pytest.fixture
def both(store: ContextStore, embed_model: LanceEmbedding) -> tuple[SimpleVectorStore, LanceVectorStore]:
    reference = SimpleVectorStore()
    reference.add(make_nodes(embed_model))
    ours = LanceVectorStore(store=store, collection="top-k")
    ours.add(make_nodes(embed_model))
    return reference, ours


AT_LEAST_2 = MetadataFilters(filters=[MetadataFilter(key="n", value=2, operator=FilterOperator.GTE)])


@pytest.mark.parametrize("mode", [VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR])
@pytest.mark.parametrize("filters", [None, AT_LEAST_2], ids=["unfiltered", "filtered"])
@pytest.mark.parametrize("top_k", [0, None, -1, 2])
def test_a_top_k_of_zero_or_none_ranks_every_node_as_simple_vector_store_does(
    both: tuple[SimpleVectorStore, LanceVectorStore],
    embed_model: LanceEmbedding,
    mode: VectorStoreQueryMode,
    filters: MetadataFilters | None,
    top_k: int | None,
) -> None:
    reference, ours = both
    query = VectorStoreQuery(
        query_embedding=embed_model.get_query_embedding("apples"),
        similarity_top_k=top_k,  # type: ignore[arg-type]
        mode=mode,
        filters=filters,
    )
    expected, got = reference.query(query), ours.query(query)
    assert got.ids == expected.ids
    assert [n.node_id for n in got.nodes or []] == got.ids
    assert got.similarities == pytest.approx(expected.similarities, abs=1e-5)  # MMR: its MMR scores


@pytest.mark.parametrize("mode", [VectorStoreQueryMode.TEXT_SEARCH, VectorStoreQueryMode.HYBRID])
async def test_text_and_hybrid_queries_with_top_k_zero_are_not_cut(
    both: tuple[SimpleVectorStore, LanceVectorStore], embed_model: LanceEmbedding, mode: VectorStoreQueryMode
) -> None:
    _, ours = both
    query = VectorStoreQuery(
        query_str="apples",
        query_embedding=embed_model.get_query_embedding("apples"),
        similarity_top_k=0,
        mode=mode,
    )
    ids = (await ours.aquery(query)).ids or []
    assert {"a", "b"} <= set(ids) and len(ids) == len(set(ids))
    if mode == VectorStoreQueryMode.HYBRID:  # the vector channel reaches every node
        assert sorted(ids) == sorted(TEXTS)


async def test_top_k_zero_on_an_empty_collection_is_an_empty_result(
    store: ContextStore, embed_model: LanceEmbedding
) -> None:
    empty = LanceVectorStore(store=store, collection="empty")
    query = VectorStoreQuery(query_embedding=embed_model.get_query_embedding("x"), similarity_top_k=0)
    for result in (empty.query(query), await empty.aquery(query)):
        assert (result.nodes, result.similarities, result.ids) == ([], [], [])


# ---------------------------------------------------------------------- unknown roles and blocks
def stored(message: ChatMessage, run_id: str, **payload: Any) -> ContextRecord:
    """The record of ``message`` as a LlamaIndex version with more roles or blocks would store it."""
    record = message_to_record(message, run_id)
    record.metadata[MESSAGE_KEY].update(payload)
    return record


FUTURE_BLOCKS = [
    {"block_type": "text", "text": "before"},
    {"block_type": "hologram", "text": "a block with text"},
    {"block_type": "hologram3d", "mesh": [1, 2, 3]},
    {"block_type": "text", "text": "after"},
]


def seed_future_session(store: ContextStore, run_id: str) -> None:
    store.add(
        [
            message_to_record(user("first"), run_id),
            stored(ChatMessage(role="user", content="from a critic"), run_id, role="critic"),
            stored(assistant("x"), run_id, blocks=FUTURE_BLOCKS),
            stored(
                ChatMessage(role="user", content="tagged", additional_kwargs={"k": 1}),
                run_id,
                additional_kwargs={"k": {"__lance_context__": "set", "items": [1, 2]}},
            ),
            ContextRecord(run_id=run_id, role="developer", text_payload="core developer note"),
            ContextRecord(run_id=run_id, role="function", text_payload="core function result"),
            message_to_record(assistant("last"), run_id),
        ]
    )


EXPECTED = [
    ("user", "first"),
    ("user", "from a critic"),
    ("assistant", "before\na block with text\nafter"),
    ("user", "tagged"),
    ("developer", "core developer note"),
    ("function", "core function result"),
    ("assistant", "last"),
]


def test_a_memory_holding_unknown_roles_and_blocks_stays_readable(store: ContextStore) -> None:
    memory = LanceMemory.from_defaults(session_id="s", store=store)
    seed_future_session(store, memory.run_id)
    before = store.records(memory.run_id, with_vectors=False)

    messages = memory.get_all()
    assert answer(messages) == EXPECTED
    assert answer(memory.get()) == EXPECTED
    critic = messages[1]
    assert critic.role == MessageRole.USER and critic.additional_kwargs == {}  # nothing injected
    assert all(isinstance(b, TextBlock) for b in messages[2].blocks)
    assert messages[3].additional_kwargs == {"k": {"__lance_context__": "set", "items": [1, 2]}}
    # Reading changed nothing: the records keep what the newer version wrote.
    assert store.records(memory.run_id, with_vectors=False) == before
    assert before[1].metadata[MESSAGE_KEY]["role"] == "critic"


async def test_chat_stores_holding_unknown_roles_and_blocks_stay_readable(store: ContextStore) -> None:
    chats, achats = LanceChatStore(store=store), LanceAsyncChatStore(store=store)
    seed_future_session(store, LLAMA_INDEX_CHAT.run_id("k", scope=""))

    assert answer(chats.get_messages("k")) == EXPECTED
    assert answer(await achats.get_messages("k", status=None)) == EXPECTED
    buffer = ChatMemoryBuffer.from_defaults(token_limit=10_000, chat_store=chats, chat_store_key="k")
    assert answer(buffer.get()) == EXPECTED
    assert answer(chats.delete_message("k", 1)) == ("user", "from a critic")
    assert answer(chats.delete_last_message("k")) == ("assistant", "last")
    memory = Memory.from_defaults(session_id="k", token_limit=10_000, chat_store=achats)
    assert answer(await memory.aget_all(status=None)) == [
        e for e in EXPECTED if e[1] not in ("from a critic", "last")
    ]


# ---------------------------------------------------------------------- get_keys
async def _emptying(chats: AsyncDBChatStore) -> list[Any]:
    out: list[Any] = []
    await chats.add_messages("gone", [user("0"), assistant("1")])
    await chats.add_messages("oldest", [user("0"), assistant("1")])
    await chats.add_messages("archived", [user("0")])
    await chats.add_messages("kept", [user("0")])
    await chats.delete_messages("gone")
    out.append(answer(await chats.delete_oldest_messages("oldest", 2)))
    out.append(answer(await chats.archive_oldest_messages("archived", 1)))
    out.append(sorted(await chats.get_keys()))  # archived messages still make a key
    await chats.delete_messages("archived", status=MessageStatus.ACTIVE)
    out.append(sorted(await chats.get_keys()))
    await chats.delete_messages("archived", status=MessageStatus.ARCHIVED)
    await chats.set_messages("kept", [])
    out.append(sorted(await chats.get_keys()))
    return out


async def test_the_async_store_lists_the_keys_sqlalchemy_chat_store_lists_once_messages_are_gone(
    store: ContextStore,
) -> None:
    assert await _emptying(LanceAsyncChatStore(store=store)) == await _emptying(sql_chat_store())


def test_delete_messages_drops_the_key_as_simple_chat_store_does(store: ContextStore) -> None:
    got = []
    for chats in (SimpleChatStore(), LanceChatStore(store=store)):
        chats.set_messages("a", [user("0"), assistant("1")])
        chats.set_messages("b", [user("b0")])
        returned = answer(chats.delete_messages("a"))
        got.append((returned, sorted(chats.get_keys()), answer(chats.get_messages("a"))))
    assert got[1] == got[0] == ([("user", "0"), ("assistant", "1")], ["b"], [])


def test_a_key_emptied_one_message_at_a_time_is_not_listed(store: ContextStore) -> None:
    # SimpleChatStore keeps an emptied list under its key (an in-memory dict); the
    # durable references list a key only while it has messages, and so does ours.
    chats = LanceChatStore(store=store)
    chats.set_messages("a", [user("0"), assistant("1")])
    chats.set_messages("b", [user("b0")])
    assert answer(chats.delete_message("a", 0)) == ("user", "0")
    assert answer(chats.delete_last_message("a")) == ("assistant", "1")
    assert chats.get_keys() == ["b"] and chats.get_messages("a") == []
    assert chats.delete_last_message("a") is None  # SimpleChatStore: IndexError on its empty list


# ---------------------------------------------------------------------- positions
@pytest.mark.parametrize("position", [0, 1, 2, -1, -2, -3])
async def test_positions_count_only_the_messages_a_key_shows(store: ContextStore, position: int) -> None:
    """A record in the key's session that is not a chat message (a core-written observation)
    is not a position: ``delete_message(key, i)`` deletes the i-th message ``get_messages``
    shows, as ``SimpleChatStore`` does on the same messages, and the observation stays."""
    run = LLAMA_INDEX_CHAT.run_id("k", scope="")
    reference = SimpleChatStore()
    reference.set_messages("k", [user("u0"), assistant("a0"), user("u1")])
    expected = answer(reference.delete_message("k", position))
    left = answer(reference.get_messages("k"))
    for chats in (LanceChatStore(store=store), LanceAsyncChatStore(store=store)):
        store.delete(run_id=run)
        sync = isinstance(chats, LanceChatStore)
        messages = [user("u0"), assistant("a0"), user("u1")]
        if sync:
            chats.add_message("k", messages[0])
        else:
            await chats.add_message("k", messages[0])
        store.add(ContextRecord(run_id=run, role="observation", text_payload="tool ran"))
        for message in messages[1:]:
            if sync:
                chats.add_message("k", message)
            else:
                await chats.add_message("k", message)
        deleted = chats.delete_message("k", position) if sync else await chats.delete_message("k", position)
        shown = chats.get_messages("k") if sync else await chats.get_messages("k", status=None)
        assert (answer(deleted), answer(shown)) == (expected, left), type(chats).__name__
        assert [r.text_payload for r in store.records(run) if r.role == "observation"] == ["tool ran"]
    assert LanceChatStore(store=store).delete_message("k", 5) is None


async def test_pages_of_every_status_are_cut_from_the_messages(store: ContextStore) -> None:
    """``get_messages(status=None, limit, offset)`` pages the messages ``get_messages`` shows."""
    chats = LanceAsyncChatStore(store=store)
    run = LLAMA_INDEX_CHAT.run_id("k", scope="")
    await chats.add_message("k", user("u0"))
    store.add(ContextRecord(run_id=run, role="observation", text_payload="tool ran"))
    await chats.add_messages("k", [assistant("a0"), user("u1"), assistant("a1")])
    every = answer(await chats.get_messages("k", status=None))
    assert every == [("user", "u0"), ("assistant", "a0"), ("user", "u1"), ("assistant", "a1")]
    for limit, offset in [(2, None), (2, 1), (None, 2), (10, 3), (0, 1)]:
        page = answer(await chats.get_messages("k", status=None, limit=limit, offset=offset))
        start = offset or 0
        assert page == every[start : None if limit is None else start + limit], (limit, offset)


# (at 0 SimpleVectorStore starts from the node it happens to hold first; the store from the
# most similar one, as with any other threshold)
@pytest.mark.parametrize("threshold", [None, 0.05, 0.3, 0.5, 0.8, 1.0])
def test_mmr_ranks_and_scores_as_simple_vector_store_does(
    store: ContextStore, threshold: float | None
) -> None:
    """LlamaIndex's MMR weighs each candidate against the node chosen last, and reports MMR scores."""
    rng = np.random.default_rng(1)  # eight nodes on which the two MMR formulas pick differently
    vectors, query = rng.normal(size=(8, 4)), rng.normal(size=4)

    def padded(values: Any) -> list[float]:
        return [*map(float, values), *[0.0] * (DIM - 4)]

    nodes = [TextNode(id_=f"n{i}", text=f"note {i}", embedding=padded(v)) for i, v in enumerate(vectors)]
    reference = SimpleVectorStore()
    reference.add(nodes)
    ours = LanceVectorStore(store=store, collection="mmr-parity")
    ours.add(nodes)
    query_ = VectorStoreQuery(
        query_embedding=padded(query), similarity_top_k=4, mode=VectorStoreQueryMode.MMR
    )
    kwargs = {} if threshold is None else {"mmr_threshold": threshold}
    expected, got = reference.query(query_, **kwargs), ours.query(query_, **kwargs)
    assert got.ids == expected.ids
    assert got.similarities == pytest.approx(expected.similarities, abs=1e-5)
    if threshold is None:  # the case tells the formulas apart: against every node chosen, r5 comes fourth
        assert expected.ids == ["n2", "n0", "n3", "n7"]
        langchain_style = store.search(padded(query), k=4, fetch_k=8, mmr=True)
        assert [h.record.text_payload for h in langchain_style] == ["note 2", "note 0", "note 3", "note 5"]
