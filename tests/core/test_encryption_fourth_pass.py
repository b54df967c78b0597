"""Encryption at rest, fourth pass: bad policies, every kind of write, interrupted rotation, adapters."""

from __future__ import annotations

import asyncio
import os
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import lance_context._keyring as keyring
from lance_context import (
    ContextRecord,
    ContextStore,
    EncryptionError,
    EncryptionPolicy,
    HashingEmbedder,
    InvalidFilterError,
    StateMetadata,
    StoreError,
)

from .conftest import text
from .test_forget import holding, local_files

SECRET = "FOURTH-PASS-SECRET-TEXT"
VALUE = "FOURTH-PASS-SEALED-VALUE"
STATE = "FOURTH-PASS-AGENT-STATE"
BLOB = b"FOURTH-PASS-BLOB-BYTES"
UPSERTED = "FOURTH-PASS-UPSERTED"
QUERY = "FOURTH-PASS-QUERY-WORDS"
BRANCHED = "FOURTH-PASS-BRANCH-TEXT"
RESTORED = "FOURTH-PASS-UNDONE-TEXT"
NEEDLES = [s.encode() for s in (SECRET, VALUE, STATE, UPSERTED, QUERY, BRANCHED, RESTORED)] + [BLOB]


def open_sealed(path: str, key: bytes, **extra: Any) -> ContextStore:
    policy = EncryptionPolicy(key=key, clear_metadata={"topic"}, **extra)
    return ContextStore.open(path, embedder=HashingEmbedder(16), encryption=policy)


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda k: EncryptionPolicy(key=k.hex()), "got str"),  # a hex key not decoded
        (lambda k: EncryptionPolicy(key=bytearray(k)), "got bytearray"),
        (lambda k: EncryptionPolicy(key=k + b"\n"), "got 33 bytes.*trailing newline"),  # a key file read raw
        (lambda k: EncryptionPolicy(key=k, previous_keys=None), "previous_keys takes a tuple"),
        (lambda k: EncryptionPolicy(key=k, previous_keys=5), "previous_keys takes a tuple"),
        (lambda k: EncryptionPolicy(key=k, clear_metadata={b"topic"}), "got bytes item"),
        (lambda k: EncryptionPolicy(key=k, clear_metadata={1, 2}), "got int item"),
        (lambda k: EncryptionPolicy(key=k, clear_metadata=[["topic"]]), "got list item"),
        (lambda k: EncryptionPolicy(key_provider=lambda run_id: k, clear_metadata={None}), "NoneType item"),
    ],
)
def test_a_bad_policy_is_refused_with_a_specific_encryption_error(make: Any, message: str) -> None:
    with pytest.raises(EncryptionError, match=message):
        make(os.urandom(32))


def test_clear_metadata_keeps_the_values_of_the_str_keys_it_lists(tmp_path: Path) -> None:
    # a set of str (any iterable of str) is what clear_metadata takes: those values stay filterable
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=None,
                              encryption=EncryptionPolicy(key=os.urandom(32), clear_metadata=["topic"]))  # fmt: skip
    store.add(text(SECRET, metadata={"topic": "deals", "secret": VALUE}))
    assert [r.text for r in store.records(where={"topic": "deals"})] == [SECRET]
    with pytest.raises(InvalidFilterError, match="clear_metadata"):
        store.records(where={"secret": VALUE})


def test_encryption_that_is_not_a_policy_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    key = os.urandom(32)
    new = tmp_path / "new.lance"
    with pytest.raises(EncryptionError, match="takes an EncryptionPolicy.*got bytes"):
        ContextStore.open(str(new), embedder=None, encryption=key)  # type: ignore[arg-type]
    assert not new.exists()  # no store was created
    path = str(tmp_path / "plain.lance")
    ContextStore.open(path, embedder=None).add(text("plain words", run_id="s"))
    before = local_files(path)
    with pytest.raises(EncryptionError, match="got dict"):
        ContextStore.open(path, embedder=None, encryption={"key": key})  # type: ignore[arg-type]
    assert local_files(path) == before  # not marked encrypted
    assert [r.text for r in ContextStore.open(path, embedder=None).records()] == ["plain words"]


# ---------------------------------------------------------------------- nothing in clear


def test_no_plaintext_reaches_any_file_through_every_kind_of_write(tmp_path: Path) -> None:
    path, key, new_key = str(tmp_path / "s.lance"), os.urandom(32), os.urandom(32)
    store = open_sealed(path, key)
    store.add([
        text(SECRET, run_id="a", metadata={"secret": VALUE, "topic": "deals"},
             state_metadata=StateMetadata(step=1, custom={"mood": STATE})),
        ContextRecord.from_content(BLOB, run_id="a", role="tool"),
        text("keeps the store busy", run_id="b"),
    ])  # fmt: skip
    first = store.records("a")
    store.upsert(text(UPSERTED, run_id="a", id=first[0].id, metadata={"secret": VALUE}))
    store.delete(first[1].id)  # a deletion file
    store.search(QUERY, k=2, where={"topic": "deals"}, record=True)  # the search log
    assert store.search_log()[0].query is None
    store.compact()
    store.reembed(HashingEmbedder(8))
    side = store.branch("side")
    side.add(text(BRANCHED, run_id="c"))
    store.merge("side")
    before_undo = store.version()
    store.add(text(RESTORED, run_id="d"))
    store.restore(before_undo)
    store.restore(before_undo, run_id="a")
    store.rotate_key(EncryptionPolicy(key=new_key, clear_metadata={"topic"}))
    store.export(str(tmp_path / "export.lance"), history=True)
    assert holding(local_files(path), NEEDLES) == {}
    assert holding(local_files(str(tmp_path / "export.lance")), NEEDLES) == {}
    assert key not in b"".join(local_files(path).values())
    reader = ContextStore.open(path, embedder=HashingEmbedder(8), encryption=EncryptionPolicy(key=new_key))
    assert sorted(r.text or "" for r in reader.records()) == sorted(
        [UPSERTED, "keeps the store busy", BRANCHED]
    )
    assert next(r for r in reader.records("a")).metadata == {"secret": VALUE}


# ---------------------------------------------------------------------- rotation


def test_a_rotation_interrupted_while_writing_leaves_the_store_on_its_old_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, old, new = str(tmp_path / "s.lance"), os.urandom(32), os.urandom(32)
    store = open_sealed(path, old)
    store.add([text(f"message {i}", run_id="s") for i in range(3)])
    version = store.version()
    written = keyring.write_fragments

    def fails_after_writing(*args: Any, **kwargs: Any) -> Any:
        written(*args, **kwargs)  # the re-encrypted files reach the store, then the disk fills up
        raise OSError("no space left on device")

    monkeypatch.setattr(keyring, "write_fragments", fails_after_writing)
    with pytest.raises(StoreError, match="no space left"):
        store.rotate_key(EncryptionPolicy(key=new, clear_metadata={"topic"}))
    monkeypatch.undo()
    assert store.version() == version  # nothing committed
    assert [r.text for r in open_sealed(path, old).records()] == ["message 0", "message 1", "message 2"]
    with pytest.raises(EncryptionError):
        open_sealed(path, new)  # the new key was never put in charge
    store.add(text("message 3", run_id="s"))  # the handle still writes with the old key
    store.rotate_key(EncryptionPolicy(key=new, clear_metadata={"topic"}))  # and a retry completes
    assert [r.text for r in open_sealed(path, new).records()][-1] == "message 3"
    store.cleanup(timedelta(0))
    assert holding(local_files(path), [b"message 0", b"message 3"]) == {}


def test_rotating_per_tenant_keys_with_one_tenant_key_gone_writes_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "s.lance")
    keys = {"acme": os.urandom(32), "globex": os.urandom(32)}
    store = ContextStore.open(path, embedder=None, encryption=EncryptionPolicy(key_provider=keys.__getitem__))
    store.add([text("acme plans", run_id="acme"), text("globex plans", run_id="globex")])
    version = store.version()
    only_acme = {"acme": os.urandom(32)}
    with pytest.raises(EncryptionError, match="key provider failed for session 'globex'"):
        store.rotate_key(EncryptionPolicy(key_provider=only_acme.__getitem__))
    assert store.version() == version
    assert [r.text for r in store.records()] == ["acme plans", "globex plans"]


def test_restoring_one_session_from_before_a_rotation_seals_it_with_the_current_key(tmp_path: Path) -> None:
    path, old, new = str(tmp_path / "s.lance"), os.urandom(32), os.urandom(32)
    store = open_sealed(path, old)
    store.add(text("before the rotation", run_id="a"))
    version = store.version()
    store.rotate_key(EncryptionPolicy(key=new, clear_metadata={"topic"}))
    store.add(text("after the rotation", run_id="a"))
    store.restore(version, run_id="a")
    store.add(text("after the restore", run_id="a"))
    assert [r.text for r in open_sealed(path, new).records()] == ["before the rotation", "after the restore"]


def test_restoring_a_whole_version_from_before_a_rotation_is_refused_and_sessions_restore(
    tmp_path: Path,
) -> None:
    """The whole version would bring back its schema, whose marker names the retired key."""
    path, old, new = str(tmp_path / "s.lance"), os.urandom(32), os.urandom(32)
    store = open_sealed(path, old)
    store.add(text("before the rotation", run_id="a"))
    version = store.version()
    store.rotate_key(EncryptionPolicy(key=new, clear_metadata={"topic"}))  # say the old key leaked
    store.add(text("after the rotation", run_id="a"))
    latest = store.version()
    with pytest.raises(EncryptionError, match="retired"):
        store.restore(version)
    assert store.version() == latest and open_sealed(path, new).version() == latest  # nothing written
    store.restore(version, run_id="a")  # the session way re-seals with the current key
    store.add(text("after the restore", run_id="a"))
    assert [r.text for r in open_sealed(path, new).records()] == ["before the rotation", "after the restore"]
    assert store.restore(latest) > latest  # a version sealed with the current key restores whole


# ---------------------------------------------------------------------- adapters


def test_a_llama_index_async_chat_store_archives_on_an_encrypted_store(tmp_path: Path) -> None:
    from llama_index.core.llms import ChatMessage
    from llama_index.core.storage.chat_store.base_db import MessageStatus

    from lance_context.llama_index import LanceAsyncChatStore

    path = str(tmp_path / "chat.lance")
    # the chat store's status lives under the metadata key "llama_index.status"
    policy = EncryptionPolicy(key=os.urandom(32), clear_metadata={"llama_index.status"})
    store = ContextStore.open(path, embedder=HashingEmbedder(16), encryption=policy)
    chats = LanceAsyncChatStore(store=store)

    async def run() -> tuple[list[str], list[str]]:
        await chats.add_messages("user-1", [ChatMessage(role="user", content=SECRET),
                                            ChatMessage(role="assistant", content=UPSERTED)])  # fmt: skip
        await chats.archive_oldest_messages("user-1", n=1)
        active = await chats.get_messages("user-1", status=MessageStatus.ACTIVE)
        archived = await chats.get_messages("user-1", status=MessageStatus.ARCHIVED)
        return [str(m.content) for m in active], [str(m.content) for m in archived]

    assert asyncio.run(run()) == ([UPSERTED], [SECRET])
    assert holding(local_files(path), [SECRET.encode(), UPSERTED.encode()]) == {}


def test_a_langgraph_store_round_trips_on_an_encrypted_store(tmp_path: Path) -> None:
    from lance_context.langgraph import LanceStore

    path = str(tmp_path / "lg.lance")
    policy = EncryptionPolicy(key=os.urandom(32), clear_metadata={"key", "expires_at"})
    memory = LanceStore(store=ContextStore.open(path, embedder=HashingEmbedder(16), encryption=policy))
    memory.put(("users", "u1"), "prefs", {"food": VALUE})
    item = memory.get(("users", "u1"), "prefs")
    assert item is not None and item.value == {"food": VALUE}
    assert [i.key for i in memory.search(("users",))] == ["prefs"]
    assert memory.list_namespaces() == [("users", "u1")]
    memory.delete(("users", "u1"), "prefs")
    assert memory.get(("users", "u1"), "prefs") is None
    assert holding(local_files(path), [VALUE.encode()]) == {}


def test_a_langgraph_store_searches_by_query_on_an_encrypted_store(tmp_path: Path) -> None:
    from lance_context.langgraph import LanceStore

    policy = EncryptionPolicy(key=os.urandom(32), clear_metadata={"key", "expires_at"})
    store = ContextStore.open(str(tmp_path / "lg.lance"), embedder=HashingEmbedder(16), encryption=policy)
    plain = ContextStore.open(str(tmp_path / "plain.lance"), embedder=HashingEmbedder(16))
    found = []
    for memory in (LanceStore(store=store), LanceStore(store=plain)):
        memory.put(("users", "u1"), "prefs", {"food": "pizza with olives"})
        memory.put(("users", "u1"), "raw", {"food": "pizza"}, index=False)  # found by the fill, unranked
        memory.put(("users", "u2"), "other", {"food": "soup"}, index=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            hits = memory.search(("users",), query="pizza")
            soup = memory.search(("users",), query="pizza", filter={"food": "soup"})
            listed = memory.search(("users",), filter={"food": {"$ne": "soup"}})
        found.append(
            ([(h.key, h.score is None) for h in hits], [h.key for h in soup], [h.key for h in listed])
        )
    # filters on values compare after opening on the encrypted store (its values are sealed)
    assert (
        found[0]
        == found[1]
        == (
            [("prefs", False), ("raw", True), ("other", True)],
            ["other"],
            ["raw", "prefs"],
        )
    )


def test_a_checkpointer_on_a_store_sealing_its_keys_says_which_to_list(tmp_path: Path) -> None:
    from lance_context.langgraph import LanceCheckpointSaver

    store = ContextStore.open(
        str(tmp_path / "cp.lance"),
        embedder=HashingEmbedder(8),
        encryption=EncryptionPolicy(key=os.urandom(32)),
    )
    saver = LanceCheckpointSaver(store=store)
    with pytest.raises(InvalidFilterError, match="clear_metadata=\\{'checkpoint_ns', 'checkpoint_id'"):
        saver.get_tuple({"configurable": {"thread_id": "t"}})
    assert store.version() == 1  # nothing written
