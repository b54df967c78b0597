"""The store's read and write behaviour users rely on."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
import pytest

from lance_context import (
    ContextRecord,
    ContextStore,
    EmbedderMismatchError,
    EmbeddingError,
    HashingEmbedder,
    InvalidFilterError,
    InvalidRecordError,
    NotAContextStoreError,
    PayloadTooLargeError,
    ReadOnlyError,
    Relationship,
    SchemaVersionError,
    SearchError,
    StateMetadata,
    StoreLimits,
    VersionNotFoundError,
)

from .conftest import text


def test_open_creates_and_reopens(store_path: str) -> None:
    first = ContextStore.open(store_path, embedder=HashingEmbedder(16))
    first.add(text("hello"))
    again = ContextStore.open(store_path)
    assert again.embedder is not None and again.embedder.dimension == 16
    assert [r.content for r in again.records()] == ["hello"]


def test_add_is_one_commit_returning_the_new_version(store: ContextStore) -> None:
    before = store.version()
    version = store.add([text("a"), text("b"), text("c")])
    assert version == before + 1 == store.version()
    assert store.versions()[-1].operation == "add"


def test_records_come_back_in_append_order_even_with_equal_timestamps(store: ContextStore) -> None:
    stamp = datetime(2025, 1, 1, tzinfo=timezone.utc)
    ids = []
    for batch in range(3):
        records = [text(f"m{batch}-{i}", created_at=stamp, id=f"z{9 - i}-{batch}") for i in range(4)]
        ids += [r.id for r in records]
        store.add(records)
    assert [r.id for r in store.records("s1")] == ids


def test_order_is_kept_across_sessions(store: ContextStore) -> None:
    store.add(text("a1", run_id="a"))
    store.add(text("b1", run_id="b"))
    store.add(text("a2", run_id="a"))
    assert [r.content for r in store.records()] == ["a1", "b1", "a2"]
    assert [r.content for r in store.records("a")] == ["a1", "a2"]


def test_all_fields_round_trip(store: ContextStore) -> None:
    created = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    record = ContextRecord.from_content(
        "plan step",
        role="assistant",
        run_id="run-9",
        id="rec-1",
        created_at=created,
        state_metadata=StateMetadata(step=3, active_plan_id="p1", tokens_used=42, custom={"mood": ["ok"]}),
        metadata={"z": 1, "a": {"nested": [1, 2, {"x": None}]}, "big": 2**70, "f": 1.0},
        relationships=[Relationship("rec-0", "replies_to", 0.5), Relationship("doc-3", "cites")],
        embedding=np.arange(32, dtype=np.float32) / 32,
    )
    store.add(record)
    found = store.get("rec-1")
    assert found == record
    assert found is not None
    assert found.created_at == created and found.created_at.tzinfo is not None
    assert json.dumps(found.metadata) == json.dumps(record.metadata)  # key order, big int, float kept
    assert isinstance(found.metadata["f"], float) and found.metadata["big"] == 2**70
    assert found.embedding is not None and found.embedding.dtype == np.float32


def test_filters_roles_time_limit_last_offset(store: ContextStore) -> None:
    base = datetime(2025, 1, 1, tzinfo=timezone.utc)
    store.add(
        [
            text(f"m{i}", role="user" if i % 2 else "assistant", created_at=base + timedelta(hours=i))
            for i in range(10)
        ]
    )
    assert [r.content for r in store.records("s1", roles="user")] == ["m1", "m3", "m5", "m7", "m9"]
    assert [r.content for r in store.records("s1", roles=["user"], last=2)] == ["m7", "m9"]
    assert [r.content for r in store.records("s1", limit=2, offset=3)] == ["m3", "m4"]
    window = store.records("s1", since=base + timedelta(hours=2), until=base + timedelta(hours=4))
    assert [r.content for r in window] == ["m2", "m3"]
    assert store.count("s1", roles="assistant") == 5
    assert store.count() == 10


def test_get_many_keeps_order_and_omits_missing(store: ContextStore) -> None:
    store.add([text("a", id="1"), text("b", id="2"), text("c", id="3")])
    assert [r.id for r in store.get_many(["3", "missing", "1"])] == ["3", "1"]
    assert store.get("missing") is None
    assert store.get_many([]) == []


def test_run_ids(store: ContextStore) -> None:
    store.add([text("a", run_id="b"), text("b", run_id="a"), text("c", run_id="b")])
    assert store.run_ids() == ["a", "b"]


def test_run_ids_of_sessions_holding_a_role(store: ContextStore) -> None:
    store.add([text("q", run_id="chat"), text("a", run_id="chat", role="assistant")])
    store.add([text("note", run_id="notes", role="note'); --"), text("x", run_id="tools", role="tool")])
    assert store.run_ids(roles="assistant") == ["chat"]
    assert store.run_ids(roles=["tool", "note'); --"]) == ["notes", "tools"]
    assert store.run_ids(roles=[]) == [] and store.run_ids(roles="nobody") == []
    with pytest.raises(InvalidFilterError, match="roles are strings"):
        store.run_ids(roles=["user", 3])  # type: ignore[list-item]
    version = store.version()
    store.delete(run_id="chat")
    assert store.run_ids(roles="assistant") == []
    assert store.at_version(version).run_ids(roles="user") == ["chat"]


def test_delete_is_a_new_version_and_history_keeps_rows(store: ContextStore) -> None:
    store.add([text("keep", id="k"), text("drop", id="d"), text("other", run_id="s2")])
    before = store.version()
    after = store.delete(ids=["d"])
    assert after == before + 1
    assert [r.id for r in store.records("s1")] == ["k"]
    assert [r.id for r in store.at_version(before).records("s1")] == ["k", "d"]
    store.delete(run_id="s2")
    assert store.run_ids() == ["s1"]
    assert store.delete(ids=["nope"]) == store.version()  # nothing matched, no new version


def test_delete_needs_a_target(store: ContextStore) -> None:
    with pytest.raises(InvalidFilterError):
        store.delete()


def test_upsert_replaces_by_id(store: ContextStore) -> None:
    store.add([text("v1", id="x"), text("y", id="y")])
    store.upsert([text("v2", id="x"), text("z", id="z")])
    assert [(r.id, r.content) for r in store.records()] == [("y", "y"), ("x", "v2"), ("z", "z")]
    assert store.count() == 3


def test_failed_batch_writes_nothing(store: ContextStore) -> None:
    before = store.version()
    bad = ContextRecord(
        run_id="s1", role="user", text_payload="x", embedding=np.full(32, np.nan, dtype=np.float32)
    )
    with pytest.raises(EmbeddingError, match="NaN"):
        store.add([text("good"), bad])
    assert store.version() == before and store.count() == 0


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (ContextRecord(run_id="", role="user"), "run_id must not be empty"),
        (ContextRecord(run_id="s", role=""), "role must not be empty"),
        (ContextRecord(run_id="s", role="user", id=""), "id must not be empty"),
        (ContextRecord(run_id="s", created_at=datetime(2025, 1, 1)), "timezone-aware"),
        (ContextRecord(run_id="s", metadata={"k": object()}), "JSON-serializable"),
        (ContextRecord(run_id="s", metadata={1: "x"}), "keys must be str"),  # type: ignore[dict-item]
        (ContextRecord(run_id="s", embedding=np.ones(3, dtype=np.float32)), "3 dimensions"),
        (ContextRecord(run_id="s", embedding=np.array([np.inf] * 32, dtype=np.float32)), "NaN or infinity"),
        (
            ContextRecord(run_id="s", state_metadata=StateMetadata(step=2**70)),
            "step must be a 64-bit integer",
        ),
        (ContextRecord(run_id="s", state_metadata=StateMetadata(step="3")), "step must be a 64-bit integer"),
        (ContextRecord.from_content("{not", run_id="s", content_type="application/json"), "text is not JSON"),  # type: ignore[arg-type]
        (ContextRecord(run_id="s", state_metadata=StateMetadata(active_plan_id=7)), "active_plan_id must be"),  # type: ignore[arg-type]
        (ContextRecord(run_id="s", relationships=[Relationship(None, "r")]), "needs a target id"),  # type: ignore[arg-type]
        (
            ContextRecord(run_id="s", relationships=[Relationship("t", "r", "heavy")]),
            "weight must be a number",
        ),  # type: ignore[arg-type]
    ],
)
def test_invalid_records_are_rejected_with_specific_errors(
    store: ContextStore, record: ContextRecord, message: str
) -> None:
    with pytest.raises(InvalidRecordError, match=message):
        store.add(record)
    assert store.count() == 0


def test_a_record_stored_twice_is_deleted_whole(store: ContextStore) -> None:
    twice = text("status: boarding", id="status")
    store.add(twice)
    store.add(twice)  # add() of a stored id keeps both copies
    store.add(text("kept", id="kept"))
    store.delete("status")
    assert [r.id for r in store.records()] == ["kept"] and store.count() == 1
    store.add([twice])
    store.add([twice])
    store.delete(run_id="s1")
    assert store.count() == 0


def test_a_delete_scoped_to_a_session_leaves_another_sessions_copy_of_the_id(store: ContextStore) -> None:
    store.add(text("in chat-1", id="x", run_id="chat-1"))
    store.add(text("in chat-2", id="x", run_id="chat-2"))  # add() stores an id again, in another session
    store.delete("x", run_id="chat-1")
    assert [r.text for r in store.records("chat-1")] == []
    assert [r.text for r in store.records("chat-2")] == ["in chat-2"]
    store.add(text("again in chat-1", id="x", run_id="chat-1", metadata={"n": 1}))
    store.delete(where={"n": 1})
    assert [r.text for r in store.records("chat-2")] == ["in chat-2"] and store.count() == 1


def test_duplicate_ids_in_one_batch(store: ContextStore) -> None:
    with pytest.raises(InvalidRecordError, match="twice"):
        store.add([text("a", id="same"), text("b", id="same")])


def test_not_a_record(store: ContextStore) -> None:
    with pytest.raises(InvalidRecordError, match="ContextRecord"):
        store.add(["just a string"])  # type: ignore[list-item]
    for wrong in (..., "just a string", {"text": "hi"}, 42):
        with pytest.raises(InvalidRecordError, match=f"got {type(wrong).__name__}; build records with"):
            store.add(wrong)  # type: ignore[arg-type]
    assert store.count() == 0


def test_payload_limit(store_path: str) -> None:
    small = ContextStore.open(store_path, embedder=None, limits=StoreLimits(max_record_bytes=100))
    small.add(ContextRecord.from_content(b"x" * 100, run_id="s"))
    with pytest.raises(PayloadTooLargeError, match="over the store's limit of 100"):
        small.add(ContextRecord.from_content(b"x" * 101, run_id="s"))
    assert small.count() == 1


def test_read_only_store(store_path: str) -> None:
    ContextStore.open(store_path, embedder=None).add(text("a"))
    ro = ContextStore.open(store_path, read_only=True)
    assert ro.count() == 1
    with pytest.raises(ReadOnlyError):
        ro.add(text("b"))
    with pytest.raises(ReadOnlyError, match="nothing to open"):
        ContextStore.open(store_path + "-missing", read_only=True)


def test_a_new_store_refuses_a_bad_dimension_or_a_branch_and_writes_nothing(store_path: str) -> None:
    for bad in (-1, 0, 1.5, True, "4"):
        with pytest.raises(EmbedderMismatchError, match="dimension must be a positive integer"):
            ContextStore.open(store_path, embedder=None, dimension=bad)  # type: ignore[arg-type]
    with pytest.raises(VersionNotFoundError, match="a new store has only 'main'"):
        ContextStore.open(store_path, embedder=None, branch="what-if")
    assert not os.path.exists(store_path)


def test_store_without_embedder_takes_its_dimension_from_the_first_vectors(store_path: str) -> None:
    plain = ContextStore.open(store_path, embedder=None)
    plain.add(text("hello"))
    assert plain.dimension is None
    assert plain.records()[0].embedding is None
    with pytest.raises(SearchError, match="holds no vectors"):
        plain.search([1.0, 0.0, 0.0, 0.0], k=3)
    assert plain.search("hello", k=3, mode="text")[0].record.text == "hello"
    before = plain.version()
    with pytest.raises(
        EmbeddingError, match="has 5 dimensions, the store expects 4"
    ):  # a batch that disagrees
        plain.add([ContextRecord(run_id="s", embedding=np.ones(n, dtype=np.float32)) for n in (4, 5)])
    assert plain.version() == before and plain.dimension is None  # not even the vector column

    plain.add(ContextRecord(run_id="s", text_payload="first vector", embedding=np.ones(4, dtype=np.float32)))
    assert plain.dimension == 4
    assert ContextStore.open(store_path).dimension == 4  # the schema records it
    before = plain.version()
    with pytest.raises(EmbeddingError, match="has 3 dimensions, the store expects 4"):
        plain.add(ContextRecord(run_id="s", embedding=np.ones(3, dtype=np.float32)))
    assert plain.version() == before  # nothing written
    hits = plain.search([1.0, 1.0, 1.0, 1.0], k=3)
    assert [h.record.text for h in hits] == ["first vector"]
    assert [r.embedding is None for r in plain.records()] == [True, False]


def test_caller_vectors_without_embedder(store_path: str) -> None:
    plain = ContextStore.open(store_path, embedder=None, dimension=4)
    plain.add(ContextRecord(run_id="s", text_payload="v", embedding=np.array([1, 0, 0, 0], dtype=np.float32)))
    plain.add(text("no vector"))
    assert [r.embedding is None for r in plain.records()] == [False, True]
    assert plain.search([1.0, 0.0, 0.0, 0.0], k=1)[0].record.text == "v"


def test_open_refuses_non_store_locations(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("hi")
    with pytest.raises(NotAContextStoreError, match="non-empty folder"):
        ContextStore.open(str(folder))
    assert sorted(os.listdir(folder)) == ["notes.txt"]  # nothing half-created
    a_file = tmp_path / "file.lance"
    a_file.write_text("x")
    with pytest.raises(NotAContextStoreError):
        ContextStore.open(str(a_file))
    other = tmp_path / "other.lance"
    lance.write_dataset(pa.table({"x": [1]}), str(other))
    with pytest.raises(NotAContextStoreError, match="not a lance-context store"):
        ContextStore.open(str(other))
    assert lance.dataset(str(other)).version == 1  # untouched


def test_empty_folder_becomes_a_store(tmp_path: Path) -> None:
    folder = tmp_path / "empty.lance"
    folder.mkdir()
    ContextStore.open(str(folder), embedder=None).add(text("a"))
    assert ContextStore.open(str(folder)).count() == 1


def test_newer_schema_version_is_refused(store: ContextStore, store_path: str) -> None:
    ds = lance.dataset(store_path)
    metadata = {k.decode(): v.decode() for k, v in (ds.schema.metadata or {}).items()}
    metadata["lance_context.schema_version"] = "99"
    ds.update_schema_metadata(metadata, replace=True)
    with pytest.raises(SchemaVersionError, match="upgrade lance-context"):
        ContextStore.open(store_path)


def test_hostile_run_id_only_matches_itself(store: ContextStore) -> None:
    hostile = "x' OR '1'='1"
    store.add([text("secret", run_id="victim"), text("mine", run_id=hostile)])
    assert [r.content for r in store.records(hostile)] == ["mine"]
    assert store.count(hostile) == 1
    assert [h.record.content for h in store.search("secret mine", k=5, run_id=hostile)] == ["mine"]
    store.delete(run_id=hostile)
    assert [r.content for r in store.records()] == ["secret"]


@pytest.mark.parametrize(
    "run_id", ["quote'd", 'dq"', "back\\slash", "50%_off", "ünï©ødé 🌍", "a" * 5000, "--", "); DROP", "\n\t"]
)
def test_odd_run_ids_round_trip_and_isolate(store: ContextStore, run_id: str) -> None:
    store.add([text("other", run_id="other"), text("mine", run_id=run_id)])
    assert [(r.run_id, r.content) for r in store.records(run_id)] == [(run_id, "mine")]
    assert run_id in store.run_ids()


def test_replace_swaps_a_session_in_one_commit(store: ContextStore) -> None:
    store.add([text("old 1", id="o1"), text("old 2", id="o2"), text("other", id="x", run_id="s2")])
    before = store.version()
    version = store.replace("s1", [text("old 2 edited", id="o2"), text("new", id="n")])
    assert version == before + 1
    assert [r.content for r in store.records("s1")] == ["old 2 edited", "new"]
    assert [r.content for r in store.records("s2")] == ["other"]
    assert [r.content for r in store.at_version(before).records("s1")] == ["old 1", "old 2"]
    with pytest.raises(InvalidRecordError, match="do not belong to session"):
        store.replace("s1", [text("wrong", run_id="s2")])
    store.replace("s1", [])
    assert store.records("s1") == [] and store.count("s2") == 1


def test_a_creation_killed_before_its_commit_can_be_redone(tmp_path: Path) -> None:
    path = tmp_path / "half.lance"
    (path / "data").mkdir(parents=True)
    (path / "data" / "orphan.lance").write_bytes(b"partial file")
    (path / "_versions").mkdir()
    store = ContextStore.open(str(path), embedder=None)
    store.add(text("after the crash"))
    assert [r.content for r in ContextStore.open(str(path)).records()] == ["after the crash"]


def test_records_with_index_text_return_what_was_indexed_and_slice_like_records(store: ContextStore) -> None:
    store.add([ContextRecord.from_content(f"turn {i}", run_id="s1", search_text=f"[ctx] turn {i}",
                                          embed_text=f"Ann: turn {i}") for i in range(6)])  # fmt: skip
    store.add(
        [ContextRecord.from_content("other", run_id="s2"), ContextRecord.from_content("more", run_id="s1")]
    )
    for options in (
        {},
        {"last": 3},
        {"last": 0},
        {"limit": 2},
        {"offset": 2, "limit": 3},
        {"last": 4, "offset": 1},
    ):
        plain = store.records("s1", **options)  # type: ignore[arg-type]
        full = store.records("s1", index_text=True, **options)  # type: ignore[arg-type]
        assert [r.id for r in full] == [r.id for r in plain], options
        assert all(r.search_text is None and r.embed_text is None for r in plain)
    full = store.records("s1", index_text=True)
    assert [(r.search_text, r.embed_text) for r in full] == [
        *((f"[ctx] turn {i}", f"Ann: turn {i}") for i in range(6)),
        ("more", None),
    ]  # a record given no index text is indexed by its text
    copy = ContextStore.open(store.uri.replace("store.lance", "copy.lance"), embedder=None)
    copy.add(full)  # a copy written elsewhere keeps what was indexed
    assert [(r.search_text, r.embed_text) for r in copy.records("s1", index_text=True)] == [
        (r.search_text, r.embed_text) for r in full
    ]
