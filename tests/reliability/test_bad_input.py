"""Bad input gets a clear, specific error and writes nothing.

Oversized payloads, wrong or non-finite embeddings, a path that is not a context store,
a store written by a newer schema version, a missing tag, version or branch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lance
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest

from lance_context import (
    ContextRecord,
    ContextStore,
    EmbeddingError,
    HashingEmbedder,
    NotAContextStoreError,
    PayloadTooLargeError,
    SchemaVersionError,
    StoreLimits,
    VersionNotFoundError,
)

from .report import TALLY

pytestmark = pytest.mark.reliability


def _snapshot(path: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``path`` with its size and modification time."""
    found = {}
    for root, _, files in os.walk(path):
        for name in files:
            stat = os.stat(os.path.join(root, name))
            found[os.path.join(root, name)] = (stat.st_size, stat.st_mtime_ns)
    return found


def _refused(
    store: ContextStore, error: type[BaseException], attempts: Sequence[Callable[[], Any]], path: Path
) -> None:
    """Each attempt raises ``error``, and the store's files and version stay as they were."""
    version, files, count = store.version(), _snapshot(path), store.count()
    for attempt in attempts:
        with pytest.raises(error) as info:
            attempt()
        assert str(info.value), "the error must say what went wrong"
        TALLY.add(inputs_tried=1)
    assert store.version() == version
    assert store.count() == count
    assert _snapshot(path) == files, "a refused call wrote to the store"


def test_oversized_payloads(tmp_path: Path) -> None:
    assert StoreLimits().max_record_bytes == 64 * 1024 * 1024  # the default limit
    path = tmp_path / "store"
    store = ContextStore.open(str(path), embedder=None, limits=StoreLimits(max_record_bytes=1000))
    store.add(ContextRecord(run_id="s", text_payload="a" * 1000))  # exactly the limit is fine
    good = ContextRecord(run_id="s", text_payload="fine")
    _refused(
        store,
        PayloadTooLargeError,
        [
            lambda: store.add(ContextRecord(run_id="s", text_payload="a" * 1001)),
            lambda: store.add(ContextRecord(run_id="s", text_payload="é" * 501)),  # 1002 bytes
            lambda: store.add(
                ContextRecord(
                    run_id="s", binary_payload=b"\0" * 1001, content_type="application/octet-stream"
                )
            ),
            lambda: store.add(ContextRecord(run_id="s", text_payload="a" * 600, binary_payload=b"\0" * 401)),
            lambda: store.add([good, ContextRecord(run_id="s", text_payload="a" * 5000)]),
            lambda: store.upsert([good, ContextRecord(run_id="s", text_payload="a" * 5000)]),
            lambda: store.add(ContextRecord.from_content(b"\0" * 2000, run_id="s")),
        ],
        path,
    )
    with pytest.raises(PayloadTooLargeError, match="max_record_bytes"):
        store.add(ContextRecord(run_id="s", text_payload="a" * 1001))


class _BrokenEmbedder:
    """Returns what it is told to, to check the store refuses it."""

    name = "broken"
    dimension = 8

    def __init__(self, output: Callable[[int], Any]) -> None:
        self.output = output

    def embed_texts(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.asarray(self.output(len(texts)), dtype=np.float32)


def test_wrong_dimension_nan_and_inf_embeddings(tmp_path: Path) -> None:
    path = tmp_path / "store"
    store = ContextStore.open(str(path), embedder=HashingEmbedder(8))
    store.add(ContextRecord(run_id="s", text_payload="hello"))
    good = ContextRecord(run_id="s", text_payload="fine")

    def with_vector(vector: Any) -> Callable[[], Any]:
        return lambda: store.add([good, ContextRecord(run_id="s", text_payload="x", embedding=vector)])

    _refused(
        store,
        EmbeddingError,
        [
            with_vector(np.ones(7, np.float32)),
            with_vector(np.ones(9, np.float32)),
            with_vector(np.ones((2, 8), np.float32)),
            with_vector(np.array([np.nan] + [0.0] * 7, np.float32)),
            with_vector(np.array([np.inf] + [0.0] * 7, np.float32)),
            with_vector(np.array([-np.inf] + [0.0] * 7, np.float32)),
            with_vector(np.array([1e39] + [0.0] * 7)),  # overflows float32 to inf
            with_vector(["a"] * 8),
        ],
        path,
    )
    for n, output in enumerate(
        (
            lambda n: np.full((n, 8), np.nan),
            lambda n: np.full((n, 8), np.inf),
            lambda n: np.ones((n, 7)),
            lambda n: np.ones((n + 1, 8)),
        )
    ):
        broken_path = tmp_path / f"broken-{n}"
        broken = ContextStore.open(str(broken_path), embedder=_BrokenEmbedder(output))  # it misbehaves
        _refused(broken, EmbeddingError, [lambda broken=broken: broken.add([good])], broken_path)
    no_vectors = ContextStore.open(str(tmp_path / "plain"), embedder=None)
    no_vectors.add(ContextRecord(run_id="s", text_payload="x", embedding=np.ones(8, np.float32)))
    with pytest.raises(EmbeddingError, match="has 4 dimensions, the store expects 8"):
        no_vectors.add(ContextRecord(run_id="s", text_payload="y", embedding=np.ones(4, np.float32)))
    assert no_vectors.count() == 1


def test_paths_that_are_not_a_context_store(tmp_path: Path, s3_bucket: Any) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a store")
    a_folder = tmp_path / "photos"
    a_folder.mkdir()
    (a_folder / "cat.jpg").write_bytes(b"\xff\xd8")
    foreign = tmp_path / "other.lance"
    lance.write_dataset(pa.table({"x": [1, 2]}), str(foreign))
    foreign_s3 = s3_bucket.uri("other.lance")
    lance.write_dataset(pa.table({"x": [1, 2]}), foreign_s3, storage_options=s3_bucket.storage_options)
    before = {p: _snapshot(p) if p.is_dir() else p.read_bytes() for p in (a_file, a_folder, foreign)}
    for uri, options in (
        (a_file, None),
        (a_folder, None),
        (foreign, None),
        (foreign_s3, s3_bucket.storage_options),
    ):
        for read_only in (False, True):
            with pytest.raises(NotAContextStoreError, match="not a lance-context store"):
                ContextStore.open(str(uri), storage_options=options, embedder=None, read_only=read_only)
            TALLY.add(inputs_tried=1)
    after = {p: _snapshot(p) if p.is_dir() else p.read_bytes() for p in (a_file, a_folder, foreign)}
    assert after == before
    assert lance.dataset(foreign_s3, storage_options=s3_bucket.storage_options).version == 1


def test_store_written_by_a_newer_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "store"
    store = ContextStore.open(str(path), embedder=None)
    store.add(ContextRecord(run_id="s", text_payload="from the future"))
    ds = lance.dataset(str(path))
    metadata = {k.decode(): v.decode() for k, v in (ds.schema.metadata or {}).items()}
    ds.update_schema_metadata({**metadata, "lance_context.schema_version": "999"}, replace=True)
    version, files = lance.dataset(str(path)).version, _snapshot(path)
    for read_only in (False, True):
        with pytest.raises(SchemaVersionError, match="newer lance-context"):
            ContextStore.open(str(path), embedder=None, read_only=read_only)
        TALLY.add(inputs_tried=1)
    assert lance.dataset(str(path)).version == version
    assert _snapshot(path) == files


def test_missing_tag_version_or_branch(tmp_path: Path) -> None:
    path = tmp_path / "store"
    store = ContextStore.open(str(path), embedder=None)
    first = store.add(ContextRecord(run_id="s", text_payload="one"))
    store.tag("kept", first)
    store.branch("side")
    tags, branches = store.tags(), store.branches()
    _refused(
        store,
        VersionNotFoundError,
        [
            lambda: store.checkout(999),
            lambda: store.checkout("no-such-tag"),
            lambda: store.at_version(999),
            lambda: store.at_version("no-such-tag"),
            lambda: store.tag("new-tag", version=999),
            lambda: store.restore(999),
            lambda: store.restore("no-such-tag"),
            lambda: store.branch("new-branch", from_version=999),
            lambda: store.diff(999),
            lambda: store.delete_tag("no-such-tag"),
            lambda: store.delete_branch("no-such-branch"),
            lambda: store.checkout_branch("no-such-branch"),
            lambda: ContextStore.open(str(path), embedder=None, branch="no-such-branch"),
        ],
        path,
    )
    assert isinstance(VersionNotFoundError("x"), KeyError)
    assert store.tags() == tags and store.branches() == branches
    assert store.branch_name == "main" and [r.text for r in store.records()] == ["one"]
