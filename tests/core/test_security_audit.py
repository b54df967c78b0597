"""Regression tests for the security and fault audit: what a writer with access, or a bad day, could do.

Each test reproduces one finding against a real store on local disk.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import lance
import numpy as np
import pytest
from PIL import Image

from lance_context import (
    ContextRecord,
    ContextStore,
    HashingEmbedder,
    InvalidRecordError,
    UnsupportedContentError,
)


def _store(tmp_path: Path, name: str = "s.lance", **options: Any) -> ContextStore:
    options.setdefault("embedder", HashingEmbedder(16))
    return ContextStore.open(str(tmp_path / name), **options)


# ---------------------------------------------------------------------- 3. reembed vs concurrent appends
class _AppendsMeanwhile(HashingEmbedder):
    """An embedder that, the first time it runs, lets another writer append a record."""

    def __init__(self, other: ContextStore) -> None:
        super().__init__(8)
        self.other = other
        self.appended = False

    @property
    def name(self) -> str:
        return "hashing-8"

    def embed_texts(self, texts: Any) -> Any:
        if not self.appended:
            self.appended = True
            self.other.add(ContextRecord.from_content("written while re-embedding", run_id="s", id="late"))
        return super().embed_texts(texts)


def test_reembed_keeps_a_record_appended_by_another_writer_meanwhile(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add([ContextRecord.from_content(f"m{i}", run_id="s") for i in range(5)])
    other = ContextStore.open(store.uri, embedder=HashingEmbedder(16))  # another process's handle
    embedder = _AppendsMeanwhile(other)
    store.reembed(embedder)
    assert embedder.appended
    late = store.get("late")
    assert late is not None, "an acknowledged write was dropped by the re-embed"
    assert late.embedding is not None and late.embedding.shape == (8,)  # re-embedded too
    assert np.allclose(late.embedding, HashingEmbedder(8).embed_texts(["written while re-embedding"])[0])
    assert store.count("s") == 6 and store.dimension == 8


# ---------------------------------------------------------------------- 4. order from commits, not clocks
def test_append_order_follows_commits_not_a_writers_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path)
    skewed = ContextStore.open(store.uri)  # a writer whose clock runs 120 s ahead
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() + 120 * 10**9)
    skewed.add(ContextRecord.from_content("from the fast clock", run_id="s"))
    monkeypatch.setattr(time, "time_ns", real)
    store.add(ContextRecord.from_content("committed after it", run_id="s"))
    assert [r.text for r in ContextStore.open(store.uri).records("s")] == [
        "from the fast clock",
        "committed after it",
    ]
    assert [r.text for r in store.records("s", last=1)] == ["committed after it"]


def test_the_latest_checkpoint_is_the_last_committed_whatever_the_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    from lance_context.langgraph import LanceCheckpointSaver

    store = _store(tmp_path)
    ahead, behind = (
        LanceCheckpointSaver(store=store),
        LanceCheckpointSaver(store=ContextStore.open(store.uri)),
    )
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() + 120 * 10**9)
    first = {**empty_checkpoint(), "id": "1f0-ahead", "channel_values": {"step": 1}}
    saved = ahead.put(config, first, {}, {})  # type: ignore[arg-type]
    monkeypatch.setattr(time, "time_ns", real)
    parent = behind.get_tuple(config)
    assert parent is not None and parent.checkpoint["id"] == "1f0-ahead"
    second = {**empty_checkpoint(), "id": "1f0-behind", "channel_values": {"step": 2}}
    behind.put(saved, second, {}, {})  # type: ignore[arg-type]
    for reader in (behind, LanceCheckpointSaver(store=ContextStore.open(store.uri)), ahead):
        latest = reader.get_tuple(config)
        assert latest is not None and latest.checkpoint["id"] == "1f0-behind"
        assert latest.parent_config is not None
        assert latest.parent_config["configurable"]["checkpoint_id"] == "1f0-ahead"
    assert [t.checkpoint["id"] for t in behind.list(config)] == ["1f0-behind", "1f0-ahead"]


# ---------------------------------------------------------------------- 5. no lock across a network call
@pytest.mark.parametrize("read", [{}, {"last": 1}, {"limit": 1}], ids=["whole", "tail", "head"])
def test_a_stalled_freshness_probe_does_not_block_other_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read: dict[str, int]
) -> None:
    """Session reads go through the version-checked cache: its lock is never held across a probe."""
    store = _store(tmp_path)
    store.add(ContextRecord.from_content("hello", run_id="s"))
    handle = store._state.handle
    real = handle._newer
    stalled, release = threading.Event(), threading.Event()

    def newer(ds: lance.LanceDataset) -> int | None:
        if threading.current_thread().name == "stalled":
            stalled.set()
            release.wait(30)
        return real(ds)

    monkeypatch.setattr(handle, "_newer", newer)
    store.records("s", **read)  # cached: the next reads only ask for the latest version
    blocked = threading.Thread(target=lambda: store.records("s", **read), name="stalled")
    blocked.start()
    assert stalled.wait(10)
    started = time.monotonic()
    assert [r.text for r in store.records("s", **read)] == ["hello"]  # another thread reads meanwhile
    assert time.monotonic() - started < 5
    release.set()
    blocked.join(30)


# ---------------------------------------------------------------------- 6. duplicate pending writes
def test_a_pending_write_saved_twice_at_once_reads_back_once(tmp_path: Path) -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    from lance_context.langgraph import LanceCheckpointSaver

    store = _store(tmp_path)
    saver = LanceCheckpointSaver(store=store)
    config = saver.put({"configurable": {"thread_id": "t", "checkpoint_ns": ""}}, empty_checkpoint(), {}, {})
    saver.put_writes(config, [("channel", "value")], task_id="task")
    [write] = store.records("langgraph.checkpoints:t", roles="checkpoint_write")
    store.add(write)  # what a second process appending the same write at the same moment leaves
    assert store.count("langgraph.checkpoints:t", roles="checkpoint_write") == 2  # two physical rows
    fresh = LanceCheckpointSaver(store=ContextStore.open(store.uri))
    found = fresh.get_tuple({"configurable": {"thread_id": "t"}})
    assert found is not None and found.pending_writes == [("task", "channel", "value")]
    listed = list(fresh.list({"configurable": {"thread_id": "t"}}))
    assert [t.pending_writes for t in listed] == [[("task", "channel", "value")]]
    assert [r.id for r in store.records("langgraph.checkpoints:t", roles="checkpoint_write")] == [write.id]


# ---------------------------------------------------------------------- 11. models named by stored data
def test_opening_never_loads_a_model_named_in_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(tmp_path)
    store.add(ContextRecord.from_content("hello", run_id="s"))
    ds = lance.dataset(store.uri)
    metadata = {k.decode(): v.decode() for k, v in ds.schema.metadata.items()}
    metadata["lance_context.embedder"] = json.dumps(
        {"name": "sentence-transformers/attacker-org/model", "dimension": 16}
    )
    ds.update_schema_metadata(metadata, replace=True)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="lance_context"):
        reopened = ContextStore.open(store.uri)
    assert time.monotonic() - started < 10  # no download attempted
    assert reopened.embedder is None
    assert "not available here without a download" in caplog.text
    assert reopened.search("hello", k=1, mode="text")[0].record.text == "hello"


# ---------------------------------------------------------------------- 12. deep JSON and image bombs
def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


def test_deeply_nested_json_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(InvalidRecordError):
        store.add(ContextRecord.from_content(_nested(100_000), run_id="s"))
    with pytest.raises(InvalidRecordError, match="nests deeper than 200"):
        store.add(ContextRecord.from_content(_nested(500), run_id="s"))
    with pytest.raises(InvalidRecordError, match="metadata nests deeper"):
        store.add(ContextRecord.from_content("x", run_id="s", metadata=_nested(5_000)))
    with pytest.raises(InvalidRecordError, match="nested too deeply|nests deeper"):
        store.add(
            ContextRecord(run_id="s", text_payload="[" * 300 + "]" * 300, content_type="application/json")
        )
    assert store.count() == 0
    store.add(ContextRecord.from_content(_nested(50), run_id="s", metadata=_nested(50)))
    assert store.records("s")[0].content == _nested(50)


def _png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's shape)."""
    small = io.BytesIO()
    Image.new("1", (1, 1)).save(small, format="PNG")
    data = bytearray(small.getvalue())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")  # IHDR width, height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # the chunk's CRC, kept valid
    return bytes(data)


def test_images_too_large_to_decode_are_refused_at_write(tmp_path: Path) -> None:
    store = _store(tmp_path)
    bomb = _png_header(20_000, 20_000)
    with pytest.raises(InvalidRecordError, match="image"):
        store.add(ContextRecord.from_content(bomb, run_id="s", content_type="image/png"))
    huge = Image.new("1", (20_000, 20_000))
    with pytest.raises(InvalidRecordError, match="image"):
        store.add(ContextRecord.from_content(huge, run_id="s"))
    assert store.count() == 0
    fine = Image.new("RGB", (2, 2), color="teal")
    store.add(ContextRecord.from_content(fine, run_id="s"))
    assert store.records("s")[0].content.size == (2, 2)


def test_content_nested_past_the_interpreter_recursion_limit_is_refused_not_crashing() -> None:
    with pytest.raises((InvalidRecordError, UnsupportedContentError)):
        ContextRecord.from_content(_nested(100_000), run_id="s")


# ---------------------------------------------------------------------- 13. metadata keys address members only
def test_a_metadata_key_that_looks_like_an_index_never_matches_array_elements(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add(
        [
            ContextRecord.from_content("array", run_id="s", id="array", metadata={"tags": ["a", "b"]}),
            ContextRecord.from_content("object", run_id="s", id="object", metadata={"tags": {"0": "a"}}),
            ContextRecord.from_content("top", run_id="s", id="top", metadata={"0": "a"}),
        ]
    )
    assert [r.id for r in store.records(where={("metadata", "tags", "0"): "a"})] == ["object"]
    assert [r.id for r in store.records(where={"metadata.0": "a"})] == ["top"]
    assert [r.id for r in store.records(where={("metadata", "tags", "1"): {"$exists": True}})] == []


# ---------------------------------------------------------------------- credentials in URLs
def _error_chain_text(exc: BaseException) -> str:
    seen: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 10:
        seen.append(f"{type(current).__name__} {current!r} {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(seen)


def test_a_password_in_an_object_store_url_never_shows_in_the_error() -> None:
    import socket

    from lance_context import StorageUnavailableError

    with socket.socket() as probe:  # a port nothing listens on: the request is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = {
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": "secret-value-9137",
        "aws_region": "us-east-1",
        "aws_endpoint": f"http://robert:hunter2-pa55@127.0.0.1:{port}",
        "allow_http": "true",
        "client_max_retries": "0",
        "timeout": "1s",
        "connect_timeout": "1s",
    }
    with pytest.raises(StorageUnavailableError) as info:
        ContextStore.open("s3://robert:hunter2-pa55@bucket/x", storage_options=options)
    shown = _error_chain_text(info.value)
    assert "127.0.0.1" in shown  # the error still says where it failed
    for secret in ("hunter2-pa55", "robert:", "secret-value-9137"):
        assert secret not in shown
