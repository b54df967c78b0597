"""Portable snapshots: a version exported as a self-contained store, across local disk and S3, and back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from lance_context import (
    ContextRecord,
    ContextStore,
    EmbedderMismatchError,
    HashingEmbedder,
    InvalidFilterError,
    NotAContextStoreError,
)

from .conftest import text


def fill(store: ContextStore) -> list[ContextRecord]:
    records = [text(f"note {i} about kyoto gardens", run_id=f"s{i % 2}") for i in range(6)]
    records.append(
        ContextRecord.from_content(Image.new("RGB", (2, 2), "teal"), run_id="s0", role="assistant")
    )
    store.add(records)
    store.compact()  # indexes, so the snapshot carries them
    return store.records()


def same(a: list[ContextRecord], b: list[ContextRecord]) -> None:
    assert [r.id for r in a] == [r.id for r in b]
    for left, right in zip(a, b, strict=True):
        assert left.content_type == right.content_type and left.binary_payload == right.binary_payload
        assert left.text == right.text and left.metadata == right.metadata
        assert (left.embedding is None) == (right.embedding is None)
        if left.embedding is not None:
            assert np.array_equal(left.embedding, right.embedding)


def check_copy(dest: ContextStore, records: list[ContextRecord]) -> None:
    same(dest.records(), records)  # the very vectors of the source: nothing was embedded again
    assert dest.embedder is not None and dest.embedder.name == "hashing"
    assert dest.search("kyoto gardens", mode="text", k=1)[0].record.run_id in ("s0", "s1")
    assert dest.search(records[0].embedding, k=1)[0].record.id == records[0].id


def test_export_a_tag_local_to_s3_and_back(tmp_path: Path, s3_bucket: Any) -> None:
    store = ContextStore.open(str(tmp_path / "a.lance"), embedder=HashingEmbedder(32))
    records = fill(store)
    store.tag("snap")
    store.add(text("written after the tag", run_id="s0"))
    report = store.export(s3_bucket.uri("snap"), tag="snap", storage_options=s3_bucket.storage_options)
    assert report.records == len(records) and report.tags == ("snap",) and report.files > 3
    assert s3_bucket.secret_access_key not in str(report)
    remote = ContextStore.open(s3_bucket.uri("snap"), storage_options=s3_bucket.storage_options)
    check_copy(remote, records)
    assert remote.tags() == {"snap": report.version}
    objects = s3_bucket.objects()
    assert any("/_indices/" in key for key in objects)  # indexes travelled with the data
    assert not any(s3_bucket.secret_access_key.encode() in data for data in objects.values())
    back = remote.export(str(tmp_path / "back.lance"))
    assert back.records == len(records)
    check_copy(ContextStore.open(str(tmp_path / "back.lance")), records)


def test_export_with_history_copies_later_versions_and_their_tags(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "a.lance"), embedder=HashingEmbedder(16))
    for i in range(4):
        store.add(text(f"m{i}", run_id="s"))
    start = store.version() - 2
    store.tag("third", start + 1)
    report = store.export(str(tmp_path / "h.lance"), version=start, history=True)
    copy = ContextStore.open(str(tmp_path / "h.lance"))
    assert [v.version for v in copy.versions()] == list(range(start, store.version() + 1))
    assert report.versions == tuple(range(start, store.version() + 1)) and copy.tags() == {"third": start + 1}
    for version in range(start, store.version() + 1):
        same(copy.at_version(version).records(), store.at_version(version).records())
    copy.add(text("the copy takes writes", run_id="s"))
    assert store.count() == 4


def test_export_a_branch_and_refusals(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "a.lance"), embedder=HashingEmbedder(16))
    store.add(text("main", run_id="s"))
    side = store.branch("side")
    side.add(text("side only", run_id="s"))
    store.export(str(tmp_path / "side.lance"), branch="side")
    assert [r.text for r in ContextStore.open(str(tmp_path / "side.lance")).records()] == [
        "main",
        "side only",
    ]
    with pytest.raises(NotAContextStoreError):
        store.export(str(tmp_path / "side.lance"))
    with pytest.raises(InvalidFilterError):
        side.export(str(tmp_path / "x.lance"), history=True)
    with pytest.raises(InvalidFilterError):
        store.export(str(tmp_path / "y.lance"), version=1, tag="t")


def test_import_copies_or_merges_as_one_version(tmp_path: Path, s3_bucket: Any) -> None:
    source = ContextStore.open(s3_bucket.uri("src"), storage_options=s3_bucket.storage_options,
                               embedder=HashingEmbedder(16))  # fmt: skip
    records = fill(source)
    copied = ContextStore.import_(source.uri, str(tmp_path / "copy.lance"),
                                  source_storage_options=s3_bucket.storage_options)  # fmt: skip
    same(copied.records(), records)
    target = ContextStore.open(str(tmp_path / "target.lance"), embedder=HashingEmbedder(16))
    own = text("already here", run_id="mine")
    target.add(own)
    before = target.version()
    merged = ContextStore.import_(source.uri, target, source_storage_options=s3_bucket.storage_options)
    assert merged is target and target.version() == before + 1
    assert target.count() == len(records) + 1 and target.get(own.id) is not None
    same(target.records(where={"run_id": {"$in": ["s0", "s1"]}}), records)
    other = ContextStore.open(str(tmp_path / "other.lance"), embedder=HashingEmbedder(8))
    with pytest.raises(EmbedderMismatchError):
        ContextStore.import_(str(tmp_path / "copy.lance"), other)


def test_importing_a_snapshot_where_no_store_is_keeps_its_versions_and_tags(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "store.lance"), embedder=HashingEmbedder(16))
    store.add(text("one"))
    store.tag("first")
    store.add(text("two"))
    store.tag("second")
    store.export(str(tmp_path / "history.lance"), version=2, history=True)
    store.export(str(tmp_path / "tagged.lance"), tag="first")

    copy = ContextStore.import_(str(tmp_path / "history.lance"), str(tmp_path / "copy.lance"))
    assert [v.version for v in copy.versions()] == [2, 3] and copy.tags() == {"first": 2, "second": 3}
    assert [r.text for r in copy.at_version("first").records()] == ["one"]
    single = ContextStore.import_(str(tmp_path / "tagged.lance"), str(tmp_path / "single.lance"))
    assert single.tags() == {"first": 2} and [r.text for r in single.records()] == ["one"]


def test_a_merge_import_keeps_each_records_index_text(tmp_path: Path) -> None:
    source = ContextStore.open(str(tmp_path / "src.lance"), embedder=HashingEmbedder(16))
    turn = ContextRecord.from_content(
        "Sure, it erupted in 2010", run_id="chat", search_text="Ana: Eyjafjallajokull volcano"
    )
    source.add(turn)
    target = ContextStore.open(str(tmp_path / "target.lance"), embedder=HashingEmbedder(16))
    target.add(text("already here", run_id="mine"))

    ContextStore.import_(source.uri, target)

    assert [h.record.id for h in target.search("volcano", mode="text")] == [turn.id]  # indexed as written
    assert target.get(turn.id).text == "Sure, it erupted in 2010"  # type: ignore[union-attr]


def test_a_snapshot_outlives_its_source(tmp_path: Path) -> None:
    import shutil

    source = tmp_path / "a.lance"
    store = ContextStore.open(str(source), embedder=HashingEmbedder(16))
    records = fill(store)
    store.branch("side").add(text("side only", run_id="s0"))
    store.export(str(tmp_path / "one.lance"), branch="side")
    store.export(str(tmp_path / "all.lance"), version=2, history=True)
    shutil.rmtree(source)
    side = ContextStore.open(str(tmp_path / "one.lance"))
    assert [r.text for r in side.records()][-1] == "side only"
    assert side.search("kyoto gardens", mode="text", k=1)
    history = ContextStore.open(str(tmp_path / "all.lance"))
    same(history.records(), records)
    assert history.at_version(2).count() == len(records)
