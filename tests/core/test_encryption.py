"""Encryption at rest: no plaintext in any file, clear errors for missing or wrong keys, rotation."""

from __future__ import annotations

import os
import pickle
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph.message import add_messages
from PIL import Image

from lance_context import (
    ContextRecord,
    ContextStore,
    EncryptionError,
    EncryptionPolicy,
    HashingEmbedder,
    InvalidFilterError,
    InvalidRecordError,
    KeyMissingError,
    SearchError,
    StateMetadata,
    WrongKeyError,
)
from lance_context._encryption import key_id

from .conftest import text
from .test_forget import holding, local_files

TEXT = "PLAINTEXT-MESSAGE about the merger"
VALUE = "METADATA-VALUE-4242"
STATE = "AGENT-STATE-VALUE-77"
BLOB = b"BINARY-PLAINTEXT-0099"
NEEDLES = [TEXT.encode(), VALUE.encode(), STATE.encode(), BLOB, b"merger"]


def records(run_id: str = "tenant-a") -> list[ContextRecord]:
    return [
        text(
            TEXT,
            run_id=run_id,
            metadata={"secret": VALUE, "topic": "deals", "n": 12345678901234567890},
            state_metadata=StateMetadata(step=2, custom={"mood": STATE}),
        ),
        ContextRecord.from_content(BLOB, run_id=run_id, role="tool"),
        ContextRecord.from_content(Image.new("RGB", (3, 2), "red"), run_id=run_id, text="a red square"),
    ]


def policy(key: bytes, **extra: Any) -> EncryptionPolicy:
    return EncryptionPolicy(key=key, clear_metadata={"topic"}, **extra)


def test_no_plaintext_reaches_the_files_and_records_round_trip(tmp_path: Path) -> None:
    path, key = str(tmp_path / "s.lance"), os.urandom(32)
    store = ContextStore.open(path, embedder=HashingEmbedder(16), encryption=policy(key))
    written = records()
    store.add(written)
    store.compact()  # indexes too
    assert holding(local_files(path), NEEDLES) == {}
    assert key not in b"".join(local_files(path).values())
    read = store.records("tenant-a", with_vectors=False)
    assert read == written  # text, binaries, exact metadata (a big integer too), agent state
    assert read[2].content.size == (3, 2)
    assert repr(store._state.cipher).startswith("Cipher(") and key.hex() not in repr(policy(key))


def test_vectors_stay_searchable_and_what_needs_plaintext_is_refused(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(16),
                              encryption=policy(os.urandom(32)))  # fmt: skip
    store.add(records())
    assert store.search(TEXT, k=1)[0].record.text == TEXT
    with pytest.raises(SearchError, match="encrypts its text"):
        store.search("merger", mode="text")
    with pytest.raises(SearchError):
        store.search("merger", mode="hybrid")
    with pytest.raises(InvalidFilterError, match="clear_metadata"):
        store.records(where={"secret": VALUE})
    with pytest.raises(InvalidFilterError, match="encrypts record text"):
        store.count(where={"text": {"$contains": "merger"}})
    with pytest.raises(InvalidFilterError):
        store.delete(where={"$or": [{"role": "tool"}, {"metadata.secret": {"$ne": "x"}}]})
    with pytest.raises(InvalidFilterError):
        store.outline("tenant-a", ("secret",))
    assert [r.text for r in store.records(where={"topic": "deals"})] == [TEXT]  # a clear key
    recalled = store.recall("the merger", run_id="tenant-a", k=1, before=0, after=0)
    assert recalled[0].match.text == TEXT  # ranked by vectors alone
    store.reembed(HashingEmbedder(24))  # embeds the opened text, keeps the rows sealed
    assert store.search(TEXT, k=1)[0].record.text == TEXT
    assert holding(local_files(store.uri), NEEDLES) == {}
    assert len(store.records(where={"secret": {"$exists": True}})) == 1  # keys stay visible
    assert store.outline("tenant-a", ("topic",)).table.column("topic").to_pylist()[0] == "deals"


def test_a_wrong_or_missing_key_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    path, key = str(tmp_path / "s.lance"), os.urandom(32)
    ContextStore.open(path, embedder=HashingEmbedder(16), encryption=policy(key)).add(records())
    before = local_files(path)
    other = os.urandom(32)
    with pytest.raises(WrongKeyError, match="is encrypted with key") as wrong:
        ContextStore.open(path, embedder=HashingEmbedder(16), encryption=policy(other))
    assert wrong.value.sealed_with == key_id(key) and wrong.value.given == key_id(other)
    assert wrong.value.uri is not None and wrong.value.uri.endswith("s.lance")
    assert pickle.loads(pickle.dumps(wrong.value)).sealed_with == key_id(key)  # crosses processes
    bare = ContextStore.open(path, embedder=HashingEmbedder(16))
    with pytest.raises(KeyMissingError, match="opened without its key") as missing:
        bare.add(text("plain", run_id="tenant-a"))
    assert missing.value.writing
    with pytest.raises(KeyMissingError, match="opened without its key") as missing:
        bare.records("tenant-a")
    assert not missing.value.writing
    assert len(bare.versions()) == 2 and bare.count() == 3  # history and counts need no key
    assert local_files(path) == before
    with pytest.raises(EncryptionError):
        EncryptionPolicy(key=b"short")
    with pytest.raises(EncryptionError):
        EncryptionPolicy()


def test_each_tenant_has_its_own_key(tmp_path: Path, s3_bucket: Any) -> None:
    keys = {"tenant-a": os.urandom(32), "tenant-b": os.urandom(32)}
    uri, options = s3_bucket.uri("tenants"), s3_bucket.storage_options
    store = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(16),
                              encryption=EncryptionPolicy(key_provider=keys.__getitem__))  # fmt: skip
    store.add(records("tenant-a") + records("tenant-b"))
    assert holding(s3_bucket.objects(), NEEDLES) == {}
    objects = len(s3_bucket.objects())
    swapped = {"tenant-a": keys["tenant-b"], "tenant-b": keys["tenant-b"]}
    wrong = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(16),
                              encryption=EncryptionPolicy(key_provider=swapped.__getitem__))  # fmt: skip
    with pytest.raises(WrongKeyError, match="nothing was written") as refused:
        wrong.add(text("more", run_id="tenant-a"))
    assert (refused.value.run_id, refused.value.sealed_with) == ("tenant-a", key_id(keys["tenant-a"]))
    assert refused.value.given == key_id(keys["tenant-b"])
    assert len(s3_bucket.objects()) == objects
    assert next(r.text for r in wrong.records("tenant-b")) == TEXT
    with pytest.raises(WrongKeyError, match="was not given") as unopened:
        wrong.records("tenant-a")
    assert unopened.value.run_id == "tenant-a" and unopened.value.record_id is not None
    only_b = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(16),
                               encryption=EncryptionPolicy(key=keys["tenant-b"]))  # fmt: skip
    assert only_b.records("tenant-b")[0].text == TEXT


def test_rotating_the_key_is_one_version_and_old_versions_need_the_old_key(tmp_path: Path) -> None:
    path, old, new = str(tmp_path / "s.lance"), os.urandom(32), os.urandom(32)
    store = ContextStore.open(path, embedder=HashingEmbedder(16), encryption=policy(old))
    store.add(records())
    before = store.version()
    sealed_before = {p: d for p, d in local_files(path).items() if p.startswith("data/")}
    version = store.rotate_key(policy(new))
    assert version == before + 1
    assert (
        store.records()
        == ContextStore.open(path, embedder=HashingEmbedder(16), encryption=policy(new)).records()
    )
    with pytest.raises(EncryptionError):
        ContextStore.open(path, embedder=HashingEmbedder(16), encryption=policy(old))
    reader = ContextStore.open(
        path, embedder=HashingEmbedder(16), encryption=policy(new, previous_keys=(old,))
    )
    assert [r.text for r in reader.at_version(before).records()] == [TEXT, None, "a red square"]
    assert holding(local_files(path), NEEDLES) == {}
    newest = {p for p in local_files(path) if p.startswith("data/")} - set(sealed_before)
    assert newest  # the re-encrypted rows are new files; the old ones serve the old versions


def test_encrypting_a_store_written_in_plaintext(tmp_path: Path) -> None:
    path, key = str(tmp_path / "s.lance"), os.urandom(32)
    plain = ContextStore.open(path, embedder=HashingEmbedder(16))
    plain.add(text(TEXT, run_id="s"))
    store = ContextStore.open(path, embedder=HashingEmbedder(16), encryption=policy(key))
    store.add(text("SEALED-FROM-NOW-ON-11", run_id="s"))
    assert [r.text for r in store.records()] == [TEXT, "SEALED-FROM-NOW-ON-11"]
    store.rotate_key(policy(key))
    latest = {p for p, d in local_files(path).items() if TEXT.encode() in d}
    assert all(not p.startswith("_indices") for p in latest)
    store.cleanup(timedelta(0))  # only the latest (sealed) version is left
    assert holding(local_files(path), [TEXT.encode(), b"SEALED-FROM-NOW-ON-11"]) == {}


def test_a_langchain_chat_history_on_an_encrypted_store(tmp_path: Path) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    from lance_context.langchain import LanceChatMessageHistory

    path = str(tmp_path / "chat.lance")
    store = ContextStore.open(
        path, embedder=HashingEmbedder(16), encryption=EncryptionPolicy(key=os.urandom(32))
    )
    history = LanceChatMessageHistory("chat-1", store=store)
    history.add_messages([HumanMessage("MY-BANK-PIN is 1234"), AIMessage("Noted, I will keep it SAFE-REPLY")])
    assert [m.content for m in history.messages] == [
        "MY-BANK-PIN is 1234",
        "Noted, I will keep it SAFE-REPLY",
    ]
    assert holding(local_files(path), [b"MY-BANK-PIN", b"SAFE-REPLY"]) == {}


class AgentState(TypedDict):
    messages: Annotated[list[Any], add_messages]


def test_a_langgraph_agent_on_an_encrypted_store(tmp_path: Path) -> None:
    from langchain_core.messages import AIMessage, HumanMessage
    from langgraph.graph import END, START, StateGraph

    from lance_context.langgraph import LanceCheckpointSaver

    def bot(state: AgentState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"AGENT-REPLY-{len(state['messages'])}")]}

    path = str(tmp_path / "agent.lance")
    sealed = EncryptionPolicy(key=os.urandom(32), clear_metadata={"checkpoint_ns", "checkpoint_id"})
    graph = StateGraph(AgentState)
    graph.add_node("bot", bot)
    graph.add_edge(START, "bot")
    graph.add_edge("bot", END)
    store = ContextStore.open(path, embedder=HashingEmbedder(16), encryption=sealed)
    app = graph.compile(checkpointer=LanceCheckpointSaver(store=store, cached_threads=0))
    config: Any = {"configurable": {"thread_id": "t1"}}
    app.invoke({"messages": [HumanMessage("USER-PRIVATE-QUESTION")]}, config)
    app.invoke({"messages": [HumanMessage("again")]}, config)
    replies = [m.content for m in app.get_state(config).values["messages"]]
    assert replies == ["USER-PRIVATE-QUESTION", "AGENT-REPLY-1", "again", "AGENT-REPLY-3"]
    assert holding(local_files(path), [b"USER-PRIVATE-QUESTION", b"AGENT-REPLY"]) == {}


def test_a_branch_of_an_encrypted_store_merges_sealed(tmp_path: Path) -> None:
    path = str(tmp_path / "s.lance")
    store = ContextStore.open(path, embedder=HashingEmbedder(16), encryption=policy(os.urandom(32)))
    store.add(text("on main", run_id="s"))
    side = store.branch("side")
    side.add(text("BRANCH-SEALED-WORDS-0010", run_id="s"))
    result = store.merge("side")
    assert result.version == store.version()
    assert [r.text for r in store.records("s")] == ["on main", "BRANCH-SEALED-WORDS-0010"]
    assert holding(local_files(path), [b"BRANCH-SEALED-WORDS-0010"]) == {}


def test_bulk_jobs_are_refused_on_an_encrypted_store(tmp_path: Path) -> None:
    path = str(tmp_path / "s.lance")
    store = ContextStore.open(path, embedder=HashingEmbedder(16), encryption=policy(os.urandom(32)))
    store.add(text("sealed", run_id="s"))
    with pytest.raises(EncryptionError, match="workers would need the keys"):
        store.bulk().plan()
    with pytest.raises(EncryptionError, match="workers would need the keys"):
        store.bulk().plan_reembed(HashingEmbedder(8))
    with pytest.raises(EncryptionError, match="workers would need the keys"):
        ContextStore.open(path, embedder=HashingEmbedder(16)).bulk().plan()  # no key here either


def test_a_record_id_holding_nul_is_refused_so_no_payload_can_move_between_sessions(tmp_path: Path) -> None:
    # the payload binding joins the id and the session with NUL: ("r\0s", "t") and ("r", "s\0t") would match
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=None, encryption=policy(os.urandom(32)))
    before = store.version()
    with pytest.raises(InvalidRecordError, match="NUL character"):
        store.add([text("fine", run_id="t"), ContextRecord.from_content("x", run_id="t", id="r\x00s")])
    assert store.version() == before and store.count() == 0
    store.add(ContextRecord.from_content("x", run_id="s\x00t", id="r"))  # NUL in a session is fine
    assert [r.content for r in store.records("s\x00t")] == ["x"]
