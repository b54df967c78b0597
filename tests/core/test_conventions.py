"""What a user sees: version numbers they can predict, readable records, honest maintenance logs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from lance_context import CompactionPolicy, ContextRecord, ContextStore, HashingEmbedder
from lance_context import _maintenance as maintenance
from lance_context.api import Context


def test_a_new_stores_first_write_is_version_two(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s.lance"), embedder=HashingEmbedder(8))
    assert store.version() == 1  # the creation
    assert store.add(ContextRecord.from_content("first", run_id="s")) == 2
    assert store.add(ContextRecord.from_content("second", run_id="s")) == 3
    ctx = Context.create(str(tmp_path / "c.lance"), embedder=HashingEmbedder(8))
    ctx.add("user", "hello")
    assert ctx.version() == 2 and [e.text for e in ctx.entries()] == ["hello"]


def test_records_read_well_in_a_repr() -> None:
    image = ContextRecord.from_content(Image.new("RGB", (2, 2), color="teal"), role="assistant", run_id="s")
    shown = repr(image)
    assert "content=<image/png 2x2, " in shown
    assert "\\x89PNG" not in shown and "=b'" not in shown and '=b"' not in shown
    long = repr(ContextRecord.from_content("word " * 100, run_id="s"))
    assert len(long) < 260 and "…" in long
    data = repr(ContextRecord.from_content(b"\x00" * 5000, run_id="s"))
    assert "<application/octet-stream, 5,000 B>" in data


def test_skipped_maintenance_after_a_committed_write_is_not_reported_as_a_failed_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = ContextStore.open(
        str(tmp_path / "s.lance"),
        embedder=None,
        compaction=CompactionPolicy(fanout=2, max_rows_per_fragment=64),
    )

    def conflicting(ds: Any, target: int, **options: Any) -> None:
        raise OSError("Commit conflict for version 9: This Rewrite transaction was preempted by Append")

    monkeypatch.setattr(maintenance, "sorted_compaction", conflicting)
    with caplog.at_level(logging.INFO, logger="lance_context"):
        store.add(ContextRecord.from_content("one", run_id="s"))
        version = store.add(ContextRecord.from_content("two", run_id="s"))
    assert [r.text for r in store.records("s")] == ["one", "two"]  # the writes landed
    said = caplog.text
    assert f"version {version} was written; compaction was left to a later write" in said
    assert "another writer committed first" in said
    assert all(r.levelno == logging.INFO for r in caplog.records)  # normal with several writers: no warning

    def failing(ds: Any, target: int, **options: Any) -> None:
        raise OSError("disk quota exceeded")

    monkeypatch.setattr(maintenance, "sorted_compaction", failing)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lance_context"):
        store.add(ContextRecord.from_content("three", run_id="s"))
        version = store.add(ContextRecord.from_content("four", run_id="s"))
    said = caplog.text
    assert f"version {version} was written; compaction was skipped (" in said and "quota" in said
    assert "will run after a later write" in said
    assert "Nothing was written" not in said and "retry the call" not in said
