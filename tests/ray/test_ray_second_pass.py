"""``lance_context.ray`` against the store's own methods: same records as ``add()``, same vectors as
``reembed()``, nothing written by a bad or failing job, on S3 and on a branch, beside other writers."""

from __future__ import annotations

import io
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lance_context import (
    ContextRecord,
    ContextStore,
    EmbeddingError,
    EncryptionError,
    EncryptionPolicy,
    HashingEmbedder,
    InvalidRecordError,
)
from lance_context.ray import ingest, reembed

from ._embedders import AppendsMeanwhile, FailsOn

pytestmark = [
    pytest.mark.filterwarnings("ignore:lance is not fork-safe:UserWarning"),
    pytest.mark.usefixtures("ray_cluster"),
]

_AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (3, 2), color="teal").save(out, format="PNG")
    return out.getvalue()


def _records() -> list[ContextRecord]:
    vector = np.linspace(-1, 1, 8, dtype=np.float32)
    return [
        ContextRecord.from_content("own vector", run_id="a", id="vec", created_at=_AT, embedding=vector),
        ContextRecord.from_content(
            "hello", run_id="a", id="t", created_at=_AT, metadata={"k": [1, {"x": None}], "f": 1.5}
        ),
        ContextRecord.from_content(
            _png(), run_id="a", id="img", created_at=_AT, text="a teal picture", content_type="image/png"
        ),
        ContextRecord.from_content(b"\x00\x01raw", run_id="b", id="bin", created_at=_AT, metadata={"m": "n"}),
        ContextRecord.from_content("hint", run_id="b", id="hint", created_at=_AT, embed_text="other words"),
        ContextRecord.from_content("a tool said", run_id="b", id="tool", role="tool", created_at=_AT),
    ]


def _rows() -> pd.DataFrame:
    """The same records as rows of a DataFrame (keys some rows lack are NaN cells there)."""
    rows: list[dict[str, Any]] = []
    for r in _records():
        row: dict[str, Any] = {"id": r.id, "run_id": r.run_id, "role": r.role, "created_at": _AT}
        if r.binary_payload is not None and r.content_type == "image/png":
            row.update(image=r.binary_payload, text=r.text_payload)
        elif r.binary_payload is not None:
            row["content"] = r.binary_payload
        else:
            row["text"] = r.text_payload
        if r.metadata:
            row["metadata"] = r.metadata
        if r.embedding is not None:
            row["embedding"] = r.embedding  # the first row: a vector column with empty cells after it
        if r.embed_text:
            row["embed_text"] = r.embed_text
        rows.append(row)
    return pd.DataFrame(rows)


def _ray_dataset(rows: list[dict[str, Any]]) -> Any:
    """A Ray Dataset of ``rows`` (Ray's first DataContext warns about settings it sets itself)."""
    import ray

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return ray.data.from_items(rows)


def _stored(store: ContextStore) -> list[tuple[Any, ...]]:
    return [
        (
            r.id,
            r.run_id,
            r.role,
            r.content_type,
            r.text_payload,
            r.binary_payload,
            r.metadata,
            r.created_at,
            None if r.embedding is None else r.embedding.tolist(),
        )
        for session in ("a", "b")
        for r in store.records(session)
    ]


def _everything(store: ContextStore) -> tuple[int, list[tuple[Any, ...]]]:
    return store.version(), [
        (r.id, r.run_id, r.text_payload, None if r.embedding is None else r.embedding.tolist())
        for r in store.records(None)
    ]


def test_ingested_records_and_rows_come_back_as_add_stores_them(tmp_path: Path) -> None:
    added = ContextStore.open(str(tmp_path / "added"), embedder=HashingEmbedder(8))
    added.add(_records())
    expected = _stored(added)
    assert len(expected) == 6

    for kind, items in (("records", _records()), ("frame", _rows())):
        store = ContextStore.open(str(tmp_path / kind), embedder=HashingEmbedder(8))
        before = store.version()
        version = ingest(items, store, batch_size=4, workers=2, progress=False)
        assert version == before + 1 or store.versions()[before].operation == "add", kind
        assert _stored(store) == expected, kind
        assert store.search("other words", k=1)[0].record.id == "hint", f"{kind}: embed_text was embedded"
        image = store.get("img")
        assert image is not None and image.content.size == (3, 2), kind


def test_bad_input_and_arguments_write_nothing(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s"), embedder=HashingEmbedder(8))
    store.add([ContextRecord.from_content(f"kept {i}", run_id="s", id=f"k{i}") for i in range(3)])
    before = _everything(store)
    good = [{"id": f"g{i}", "text": f"good {i}", "embedding": [0.5] * 8} for i in range(6)]
    # One actor per failing job: a failed job's actors can hold their CPUs until the test ends.

    short = _ray_dataset([*good, {"id": "short", "text": "x", "embedding": [0.5] * 4}])
    with pytest.raises(EmbeddingError, match="'short': embedding has 4 dimensions, the store expects 8"):
        ingest(short, store, batch_size=2, workers=1, progress=False)
    assert _everything(store) == before

    no_content = _ray_dataset([*good[:3], {"id": "empty", "title": "no text column"}])
    with pytest.raises(InvalidRecordError, match="a row has no content"):
        ingest(no_content, store, batch_size=2, workers=1, progress=False)
    assert _everything(store) == before

    for arguments, message in (
        ({"workers": 0}, "workers must be a positive integer"),
        ({"workers": -2}, "workers must be a positive integer"),
        ({"max_retries": -1}, "max_retries must be an integer of at least 0"),
    ):
        with pytest.raises(InvalidRecordError, match=message):
            ingest(good, store, progress=False, **arguments)
        with pytest.raises(InvalidRecordError, match=message):
            reembed(store, HashingEmbedder(4), progress=False, **arguments)
    with pytest.raises(InvalidRecordError, match="attempts must be a positive integer"):
        reembed(store, HashingEmbedder(4), attempts=0, progress=False)
    assert _everything(store) == before

    sealed = ContextStore.open(
        str(tmp_path / "sealed"), embedder=HashingEmbedder(8), encryption=EncryptionPolicy(key=b"k" * 32)
    )
    sealed.add(ContextRecord.from_content("secret", id="x"))
    sealed_before = _everything(sealed)
    with pytest.raises(EncryptionError, match="cannot run on an encrypted store"):
        ingest(good, sealed, progress=False)
    with pytest.raises(EncryptionError, match="cannot run on an encrypted store"):
        reembed(sealed, HashingEmbedder(4), progress=False)
    assert _everything(sealed) == sealed_before

    store.add(ContextRecord.from_content("still writable", run_id="s", id="after"))
    assert store.count() == 4


def test_on_s3_ingest_works(tmp_path: Path, s3_bucket: Any) -> None:
    uri, options = s3_bucket.uri("memory"), s3_bucket.storage_options
    items = [{"id": f"d{i}", "text": f"document {i}", "run_id": f"s{i % 2}"} for i in range(40)]
    store = ContextStore.open(uri, storage_options=options, embedder=FailsOn(8, "no such text", "unused"))
    store.add(ContextRecord.from_content("before the jobs", run_id="s0", id="before"))

    ingest(items, store, batch_size=10, workers=2, progress=False)
    reopened = ContextStore.open(uri, storage_options=options, embedder=None)
    assert [r.id for r in reopened.records("s0")] == ["before", *[f"d{i}" for i in range(0, 40, 2)]]
    assert [r.id for r in reopened.records("s1")] == [f"d{i}" for i in range(1, 40, 2)]
    record = reopened.get("d17")
    assert record is not None and record.embedding is not None
    assert np.array_equal(record.embedding, HashingEmbedder(8).embed_texts(["document 17"])[0])


@pytest.mark.long_only  # a failed job's retries; make test fails a job on local disk (test_ray_jobs.py)
def test_on_s3_a_failing_worker_writes_nothing(tmp_path: Path, s3_bucket: Any) -> None:
    uri, options = s3_bucket.uri("memory"), s3_bucket.storage_options
    store = ContextStore.open(uri, storage_options=options, embedder=FailsOn(8, "no such text", "unused"))
    store.add(ContextRecord.from_content("before the job", run_id="s0", id="before"))
    # The only job of the test: a failed job's actors may hold the CPUs until the test ends.
    failing = FailsOn(8, "document 133", str(tmp_path / "failed.flag"))
    store = ContextStore.open(uri, storage_options=options, embedder=failing)
    before = _everything(store)
    more = [{"id": f"d{i}", "text": f"document {i}"} for i in range(100, 140)]
    with pytest.raises(EmbeddingError, match="the model broke"):
        ingest(more, store, batch_size=10, workers=2, progress=False)
    assert (tmp_path / "failed.flag").exists(), "a worker failed"
    assert _everything(store) == before
    assert _everything(ContextStore.open(uri, storage_options=options, embedder=None)) == before


@pytest.mark.long_only  # make reliability only: too slow for make test
def test_beside_another_writer_and_on_a_branch_nothing_is_lost_and_vectors_match_local_reembed(
    tmp_path: Path,
) -> None:
    uri, flag = str(tmp_path / "s"), tmp_path / "appended.flag"
    flag.touch()  # no concurrent append until the job runs
    # The store's embedder appends a record through another store object the first time a worker embeds.
    embedder = AppendsMeanwhile(8, "", str(flag), uri, "late")
    main = ContextStore.open(uri, embedder=embedder)
    main.add([ContextRecord.from_content(f"main {i}", run_id="m", id=f"m{i}") for i in range(30)])
    main.delete(ids=[f"m{i}" for i in range(0, 30, 4)])  # deleted rows inside the slices re-embedded below
    kept = [f"m{i}" for i in range(30) if i % 4]
    branch = main.branch("exp")
    flag.unlink()

    ingest([f"job {i}" for i in range(20)], main, run_id="m", batch_size=6, workers=2, progress=False)
    assert flag.exists(), "another writer committed during the job"
    assert [r.id for r in main.records("late")] == ["late"], "the other writer's record is kept"
    job = main.records("m")
    assert [r.id for r in job[: len(kept)]] == kept and main.count() == len(kept) + 21
    assert [r.text for r in job[len(kept) :]] == [f"job {i}" for i in range(20)], "the job's, in order"
    main_before = _everything(main)

    rows = [
        {"id": f"b{i}", "text": f"branch {i}", "embed_text": f"hint {i}" if i % 3 == 0 else None}
        for i in range(25)
    ]
    ingest(rows, branch, run_id="m", batch_size=6, workers=2, progress=False)
    ids = [r.id for r in branch.records("m")]
    assert ids == [*kept, *[f"b{i}" for i in range(25)]], "the branch holds its own writes only"
    assert _everything(main) == main_before

    at = branch.version()
    reembed(branch, HashingEmbedder(4), rows_per_task=7, workers=2, progress=False)
    local = ContextStore.open(uri, branch="exp", embedder=HashingEmbedder(4)).branch("local", from_version=at)
    local.reembed(HashingEmbedder(4))

    def content(store: ContextStore) -> list[tuple[Any, ...]]:
        return [
            (r.id, r.text, r.created_at, r.metadata, None if r.embedding is None else r.embedding.tolist())
            for r in store.records("m")
        ]

    rewritten = ContextStore.open(uri, branch="exp", embedder=HashingEmbedder(4))
    assert content(rewritten) == content(local)
    assert [r[0] for r in content(rewritten)] == ids
    hinted = rewritten.get("b3")
    assert hinted is not None and hinted.embedding is not None
    assert np.array_equal(hinted.embedding, HashingEmbedder(4).embed_texts(["hint 3"])[0])
    reopened_main = ContextStore.open(uri, embedder=embedder)
    assert reopened_main.dimension == 8 and _everything(reopened_main) == main_before
