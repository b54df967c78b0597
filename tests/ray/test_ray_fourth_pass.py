"""``lance_context.ray.ingest`` on inputs users hand it, against ``store.add()`` of the same records:
content columns mixing kinds, pandas datetimes, missing and repeated ids, sessions; ``reembed`` with a
LangChain embeddings object and with one returning wrong sizes."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from lance_context import (
    ContextRecord,
    ContextStore,
    EmbeddingError,
    HashingEmbedder,
    InvalidRecordError,
    StoreError,
)
from lance_context.ray import ingest, reembed

pytestmark = [
    pytest.mark.filterwarnings("ignore:lance is not fork-safe:UserWarning"),
    pytest.mark.usefixtures("ray_cluster"),
]


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (3, 2), color="teal").save(out, format="PNG")
    return out.getvalue()


def _ray_items(rows: list[Any]) -> Any:
    import ray

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return ray.data.from_items(rows)


def _ray_frame(frame: pd.DataFrame) -> Any:
    import ray

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return ray.data.from_pandas(frame)


def _open(path: Path, embedder: Any = None) -> ContextStore:
    return ContextStore.open(str(path), embedder=embedder or HashingEmbedder(8))


def _stored(store: ContextStore, *, times: bool = True) -> list[tuple[Any, ...]]:
    return [
        (
            r.id,
            r.run_id,
            r.content_type,
            r.text_payload,
            r.binary_payload,
            r.metadata,
            r.created_at if times else None,
            None if r.embedding is None else r.embedding.tolist(),
        )
        for r in store.records(None)
    ]


def _added(path: Path, records: Sequence[ContextRecord], *, times: bool = True) -> list[tuple[Any, ...]]:
    store = _open(path)
    store.add(list(records))
    return _stored(store, times=times)


@pytest.mark.long_only  # 19 s; test_every_input_kind covers the kinds in make test
def test_a_content_column_mixing_texts_bytes_and_json_keeps_each_kind(tmp_path: Path) -> None:
    png = _png()
    contents: list[Any] = ["plain text", png, {"a": 1}, b"\x00\x01raw", {"b": [2, None]}, "more text"]
    # ingest sniffs bytes for images (see lance_context.ray._rows); add() takes the type it is given.
    records = [
        ContextRecord.from_content(c, id=f"r{i}", content_type="image/png" if c is png else None)
        for i, c in enumerate(contents)
    ]
    expected = _added(tmp_path / "added", records, times=False)
    assert [row[2] for row in expected] == [
        "text/plain",
        "image/png",
        "application/json",
        "application/octet-stream",
        "application/json",
        "text/plain",
    ]
    rows = [{"id": f"r{i}", "content": c} for i, c in enumerate(contents)]
    inputs = {
        "dicts": rows,
        "ray items": _ray_items(rows),  # a block per row, typed by its row
    }
    for kind, items in inputs.items():
        store = _open(tmp_path / kind.replace(" ", "-"))
        ingest(items, store, batch_size=4, workers=1, progress=False)
        assert _stored(store, times=False) == expected, kind

    # Bare items, and a text beside bytes that are valid UTF-8 (pandas would make both text).
    store = _open(tmp_path / "bare")
    ingest(["a text", png], store, progress=False)
    assert [(r.content_type, r.text_payload) for r in store.records()] == [
        ("text/plain", "a text"),
        ("image/png", None),
    ]
    store = _open(tmp_path / "utf8")
    ingest(pd.DataFrame({"id": ["t", "b"], "content": ["a text", b"bytes"]}), store, progress=False)
    assert [(r.text_payload, r.binary_payload) for r in store.records()] == [
        ("a text", None),
        (None, b"bytes"),
    ]


def test_a_kind_that_cannot_travel_beside_others_is_refused_before_any_work(tmp_path: Path) -> None:
    from PIL import Image

    store = _open(tmp_path / "s")
    store.add(ContextRecord.from_content("kept", id="k"))
    before = (store.version(), _stored(store))
    rows = [{"content": "a text"}, {"content": Image.new("RGB", (2, 2))}]
    with pytest.raises(InvalidRecordError, match=r"the 'content' column mixes Image, str across rows"):
        ingest(rows, store, progress=False)
    assert (store.version(), _stored(store)) == before

    # Ray's own JSON reader cannot read such a column: its error, as a StoreError, not Ray's wrapper.
    lines = tmp_path / "mixed.jsonl"
    lines.write_text('{"id": "t", "content": "a text"}\n{"id": "j", "content": {"x": 1}}\n')
    with pytest.raises(StoreError, match=r"^the Ray job failed \(\w+: .*nothing was written") as failed:
        ingest(str(lines), store, progress=False)
    assert "ray::" not in str(failed.value)
    assert (store.version(), _stored(store)) == before


def test_pandas_datetimes_missing_ids_and_sessions_match_add(tmp_path: Path) -> None:
    aware = pd.to_datetime(
        ["2024-01-02T03:04:05+02:00", "2024-01-02T03:04:06+02:00", "2024-01-02T03:04:07+02:00"]
    )
    naive = pd.to_datetime(["2024-01-02T03:04:05", "2024-01-02T03:04:06", "2024-01-02T03:04:07"])
    for name, times, kind in (("aware", aware, "frame"), ("naive", naive, "ray")):
        frame = pd.DataFrame(
            {
                "id": ["x", None, "z"],
                "text": ["one", "two", "three"],
                "run_id": ["col", None, "col"],
                "created_at": times,
                "seen": times,
            }
        )
        records = []
        for row_id, text, session, at in zip(frame["id"], frame["text"], frame["run_id"], times, strict=True):
            when = at.to_pydatetime()
            records.append(
                ContextRecord.from_content(
                    text,
                    run_id=session if isinstance(session, str) else "arg",
                    created_at=when if when.tzinfo else when.replace(tzinfo=timezone.utc),
                    metadata={"seen": at.isoformat()},
                    **({"id": row_id} if isinstance(row_id, str) else {}),
                )
            )
        expected = _added(tmp_path / f"added-{name}", records)
        store = _open(tmp_path / name)
        ingest(frame if kind == "frame" else _ray_frame(frame), store, run_id="arg", progress=False)
        got = _stored(store)
        assert got[1][0] and got[1][0] not in ("x", "z", "None", "nan"), "a missing id gets a fresh one"
        assert [row[1:] for row in got] == [row[1:] for row in expected], name
        assert [got[0][0], got[2][0]] == ["x", "z"]
    assert aware[0].to_pydatetime().astimezone(timezone.utc) == datetime(
        2024, 1, 2, 1, 4, 5, tzinfo=timezone.utc
    )


def test_an_id_twice_in_the_input_is_refused_with_the_store_message_and_nothing_written(
    tmp_path: Path,
) -> None:
    store = _open(tmp_path / "s")
    store.add(ContextRecord.from_content("kept", id="k"))
    before = (store.version(), _stored(store))
    rows = [{"id": "d", "text": "first"}, {"id": "e", "text": "other"}, {"id": "d", "text": "second"}]
    with pytest.raises(InvalidRecordError) as one_batch:
        ingest(rows, store, workers=1, progress=False)
    assert str(one_batch.value) == "record id 'd' appears twice in one batch", "no Ray retry advice appended"
    with pytest.raises(InvalidRecordError, match="record id 'd' appears twice in one bulk write"):
        ingest(rows, store, batch_size=1, workers=1, progress=False)
    assert (store.version(), _stored(store)) == before
    assert ingest(_ray_items([]), store, progress=False) == before[0], "an empty dataset adds nothing"


def test_reembed_with_a_langchain_embeddings_object_and_with_wrong_sizes(tmp_path: Path) -> None:
    import numpy.typing as npt

    store = _open(tmp_path / "s")
    store.add([ContextRecord.from_content(f"text {i}", id=f"r{i}", run_id="a") for i in range(9)])
    local = store.branch("local")
    reembed(store, DeterministicFakeEmbedding(size=6), rows_per_task=4, workers=2, progress=False)
    local.reembed(DeterministicFakeEmbedding(size=6))
    assert store.dimension == 6 and _stored(store) == _stored(local)
    first = store.get("r0")
    assert first is not None and first.embedding is not None
    assert np.allclose(first.embedding, DeterministicFakeEmbedding(size=6).embed_query("text 0"))

    class Narrow:
        name, dimension = "narrow", 4

        def embed_texts(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
            return np.ones((len(texts), 3), np.float32)

    class Fewer:
        name, dimension = "fewer", 4

        def embed_texts(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
            return np.ones((len(texts) - 1, 4), np.float32)

    before = (store.version(), _stored(store))
    for embedder, message in (
        (Narrow(), r"returned shape \(\d+, 3\), expected"),
        (Fewer(), "returned 3 vectors for 4"),
    ):
        with pytest.raises(EmbeddingError, match=message):
            reembed(store, embedder, rows_per_task=4, workers=1, progress=False)
        assert (store.version(), _stored(store)) == before
