"""Regression tests for the core fixes found by the reliability suite (tests/reliability)."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import lance
import numpy as np
import pytest

from lance_context import (
    CommitConflictError,
    ContextRecord,
    ContextStore,
    EmbeddingError,
    InvalidRecordError,
    StorageAccessError,
    StorageUnavailableError,
)
from lance_context._dataset import DatasetHandle
from lance_context._errors import translate_lance_error
from lance_context._storage import is_missing


@pytest.fixture
def filled(tmp_path: Path) -> ContextStore:
    store = ContextStore.open(str(tmp_path / "store"), embedder=None)
    values = {"space": " ", "bang": "a!", "a": "a", "newline": "x\ny", "ctrl": "\x01", "quote": 'say "hi"'}
    store.add(
        [
            ContextRecord(id=name, run_id="s", text_payload=name, metadata={"v": v})
            for name, v in values.items()
        ]
        + [
            ContextRecord(id="obj", run_id="s", text_payload="obj", metadata={"v": {"b": 1, "a": [2, "x"]}}),
            ContextRecord(id="num", run_id="s", text_payload="num", metadata={"v": 5}),
        ]
    )
    return store


def _ids(store: ContextStore, where: dict[str, object]) -> list[str]:
    return [r.id for r in store.records(where=where)]


def test_string_order_compares_raw_strings_not_json_text(filled: ContextStore) -> None:
    # on JSON text the closing quote made '"a"' sort after '"a!"' and '" "' before '""'
    assert _ids(filled, {"metadata.v": {"$lt": "a!"}}) == ["space", "a", "ctrl"]
    assert _ids(filled, {"metadata.v": {"$gt": ""}}) == ["space", "bang", "a", "newline", "ctrl", "quote"]
    assert _ids(filled, {"metadata.v": {"$gte": "a"}}) == ["bang", "a", "newline", "quote"]


def test_contains_never_matches_inside_json_escapes(filled: ContextStore) -> None:
    assert _ids(filled, {"metadata.v": {"$contains": "n"}}) == []  # not the "\n" escape
    assert _ids(filled, {"metadata.v": {"$contains": "u00"}}) == []  # not the "\u0001" escape
    assert _ids(filled, {"metadata.v": {"$contains": "\\"}}) == []  # not the escape of '"'
    assert _ids(filled, {"metadata.v": {"$contains": "\n"}}) == ["newline"]
    assert _ids(filled, {"metadata.v": {"$contains": '"hi"'}}) == ["quote"]
    assert _ids(filled, {"metadata.v": {"$contains": ""}}) == [
        "space",
        "bang",
        "a",
        "newline",
        "ctrl",
        "quote",
    ]


def test_object_equality_ignores_key_order(filled: ContextStore) -> None:
    assert _ids(filled, {"metadata.v": {"$eq": {"b": 1, "a": [2, "x"]}}}) == ["obj"]
    assert _ids(filled, {"metadata.v": {"$in": [{"a": [2, "x"], "b": 1}]}}) == ["obj"]
    assert filled.get("obj").metadata == {"v": {"b": 1, "a": [2, "x"]}}  # type: ignore[union-attr]


def test_id_is_marked_as_the_primary_key(tmp_path: Path) -> None:
    ContextStore.open(str(tmp_path / "store"), embedder=None)
    field = lance.dataset(str(tmp_path / "store")).schema.field("id")
    assert (field.metadata or {}).get(b"lance-schema:unenforced-primary-key") == b"true"


def test_concurrent_upserts_of_one_new_id_leave_one_record(tmp_path: Path) -> None:
    # The key's metadata is not enough: Lance rebases two merge inserts of one new id as
    # compatible when they are committed from execute_uncommitted, so the writer checks after.
    uri = str(tmp_path / "store")
    writers = [ContextStore.open(uri, embedder=None) for _ in range(3)]

    def upsert(n: int, store: ContextStore, barrier: threading.Barrier, record_id: str) -> None:
        barrier.wait()
        store.upsert(ContextRecord.from_content(f"writer {n}", run_id="shared", id=record_id))

    for round_ in range(3):
        barrier = threading.Barrier(len(writers))
        threads = [
            threading.Thread(target=upsert, args=(n, w, barrier, f"new-{round_}"))
            for n, w in enumerate(writers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    reader = ContextStore.open(uri, embedder=None)
    assert reader.count("shared") == 3 and [r.id for r in reader.records("shared")] == [
        "new-0",
        "new-1",
        "new-2",
    ]
    assert all(r.text in {"writer 0", "writer 1", "writer 2"} for r in reader.records("shared"))
    reader.delete(run_id="shared")
    assert reader.count() == 0


def test_versions_survive_a_compaction_that_remaps_indexes(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "store"), embedder=None)
    for i in range(4):
        store.add(ContextRecord(run_id="s", text_payload=f"m{i}"))
    store._state.handle.latest().optimize.optimize_indices()  # the indexes now cover those fragments
    store.add(ContextRecord(run_id="s", text_payload="m4"))
    store.compact()
    operations = [v.operation for v in store.versions()]  # pylance cannot decode one of them
    assert "compact" in operations
    assert store.count() == 5


def test_lone_surrogates_are_invalid_records(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "store"), embedder=None)
    for record in (
        ContextRecord(run_id="\ud800", text_payload="x"),
        ContextRecord(run_id="s", text_payload="\udfff"),
        ContextRecord(run_id="s", text_payload="x", metadata={"\ud83d": 1}),
    ):
        with pytest.raises(InvalidRecordError, match="lone surrogate"):
            store.add(record)
    assert store.count() == 0


def test_embedding_beyond_float32_is_an_embedding_error_without_a_warning(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "store"), embedder=None, dimension=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(EmbeddingError, match="NaN or infinity"):
            store.add(ContextRecord(run_id="s", text_payload="x", embedding=np.array([1e39, 0.0])))


def test_storage_outages_are_translated_and_not_retried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ContextStore.open(str(tmp_path / "store"), embedder=None)
    handle = DatasetHandle(str(tmp_path / "store"), None)
    calls = []

    def down() -> None:
        calls.append(1)
        raise OSError("LanceError(IO): Generic S3 error: error sending request: connection refused")

    with pytest.raises(StorageUnavailableError, match="storage did not answer"):
        handle.call(down, "read records")
    assert len(calls) == 1  # Lance's client already retried the request

    def newer(ds: lance.LanceDataset) -> int | None:
        raise OSError("LanceError(IO): Generic S3 error: error sending request")

    monkeypatch.setattr(handle, "_newer", newer)
    with pytest.raises(StorageUnavailableError):  # was a raw OSError
        handle.latest()


def test_lance_giving_up_on_concurrent_writers_is_a_commit_conflict() -> None:
    exc = OSError(
        "Too many concurrent writers. Attempted 8 times, but failed on retry_timeout of 30.000 seconds., "
        "rust/lance/src/io/commit.rs:130:5"
    )
    assert isinstance(translate_lance_error(exc, "add 1 records"), CommitConflictError)


def test_an_append_meeting_a_restore_is_a_commit_conflict() -> None:
    exc = OSError(
        "Incompatible transaction: Append transaction is not compatible with Overwrite at version 7"
    )
    translated = translate_lance_error(exc, "add 1 records")
    assert isinstance(translated, CommitConflictError) and "Nothing was written" in str(translated)


@pytest.mark.parametrize(
    ("message", "says"),
    [
        (  # an unknown key: "does not exist" must not read as "no store here"
            "LanceError(IO): Generic S3 error: Error performing list request: ... 403 Forbidden: <Code>"
            "InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist</Message>",
            "refused access",
        ),
        (
            "LanceError(IO): Generic S3 error: ... Server returned non-2xx status code: 403 Forbidden:\n"
            "<Code>SignatureDoesNotMatch</Code>",
            "refused access",
        ),
        (  # no credentials anywhere: the token error's body says "retryable", which is no conflict
            "LanceError(IO): Failed to get AWS credentials: CredentialsNotLoaded { retryable: true }",
            "refused access",
        ),
        (
            "LanceError(IO): Generic S3 error: Error performing list request: ... 404 Not Found: <?xml ?>\n"
            "<Error><Code>NoSuchBucket</Code></Error>",
            "the bucket does not exist",
        ),
    ],
)
def test_an_object_store_refusing_access_is_not_a_retry_or_a_missing_store(message: str, says: str) -> None:
    translated = translate_lance_error(OSError(message), "open s3://bucket/store")
    assert isinstance(translated, StorageAccessError) and says in str(translated)
    assert not is_missing(OSError(message))


def test_a_bucket_that_does_not_exist_is_named(s3_bucket: Any) -> None:
    missing = "s3://no-such-bucket-here/store"
    for read_only in (True, False):
        with pytest.raises(StorageAccessError, match="the bucket does not exist"):
            ContextStore.open(
                missing, storage_options=s3_bucket.storage_options, read_only=read_only, embedder=None
            )
