"""``lance_context.ray.ingest`` on a local Ray cluster: one version, input order, every input kind."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder, InvalidRecordError
from lance_context.ray import ingest

pytestmark = [
    pytest.mark.filterwarnings("ignore:lance is not fork-safe:UserWarning"),  # Ray starting its processes
    pytest.mark.usefixtures("ray_cluster"),
]


def _items(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"d{i}",
            "run_id": f"s{i % 7}",
            "text": f"document {i} about topic {i % 11}",
            "source": f"f{i % 3}",
        }
        for i in range(count)
    ]


def test_a_few_thousand_records_become_one_version_in_input_order(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s"), embedder=HashingEmbedder(32))
    store.add(ContextRecord.from_content("before the job", run_id="s0", id="before"))
    before = store.versions()
    items = _items(3_000)

    version = ingest(items, store, batch_size=400, workers=2, progress=False)

    new = {v.version: v for v in store.versions()[len(before) :]}
    assert [v.operation for v in new.values()].count("add") == 1, "one version holds the records"
    assert new[version].operation == "add" and new[version].rows == 3_001
    assert {v.operation for v in new.values()} <= {"add", "index", "compact"}, "then only upkeep"
    assert store.count() == 3_001
    for session in range(7):
        expected = [f"d{i}" for i in range(3_000) if i % 7 == session]
        assert [r.id for r in store.records(f"s{session}", with_vectors=False)] == (
            ["before", *expected] if session == 0 else expected
        )
    record = store.get("d42")
    assert record is not None and record.metadata == {"source": "f0"} and record.role == "user"
    assert np.allclose(record.embedding, HashingEmbedder(32).embed_texts([record.text])[0])  # type: ignore[list-item]
    assert store.search("document 42 about topic 9", k=1)[0].record.id == "d42"
    assert store.at_version(before[-1].version).count() == 1, "the version before the job is unchanged"


def test_jobs_one_after_another_each_write_their_own_store_with_their_own_embedder(tmp_path: Path) -> None:
    # Worker processes outlive a job (Ray reuses them): each job must start from its own plan.
    first = ContextStore.open(str(tmp_path / "a"), embedder=HashingEmbedder(8))
    second = ContextStore.open(str(tmp_path / "b"), embedder=HashingEmbedder(24))

    for store, name in ((first, "a"), (second, "b"), (first, "a")):
        ingest(
            [f"{name} text {i}" for i in range(30)],
            store,
            run_id=name,
            batch_size=5,
            workers=2,
            progress=False,
        )

    assert [r.text for r in first.records()] == [f"a text {i}" for i in range(30)] * 2
    assert [r.text for r in second.records()] == [f"b text {i}" for i in range(30)]
    assert {len(r.embedding) for r in first.records()} == {8}  # type: ignore[arg-type]
    assert {len(r.embedding) for r in second.records()} == {24}  # type: ignore[arg-type]
    assert [v.operation for v in first.versions()].count("add") == 2


def test_every_input_kind(tmp_path: Path) -> None:
    from PIL import Image

    store = ContextStore.open(str(tmp_path / "s"), embedder=HashingEmbedder(16))
    png = io.BytesIO()
    Image.new("RGB", (3, 2), color="teal").save(png, format="PNG")
    frame = pd.DataFrame(
        {
            "id": ["t", "img", "arr", "vec"],
            "run_id": ["kinds"] * 4,
            "role": ["assistant", "user", "user", "tool"],
            "text": ["plain text", "a teal picture", "pixels", "own vector"],
            "image": [None, png.getvalue(), None, None],
            "embedding": [None, None, None, np.ones(16, np.float32) / 4],
            "metadata": [None, '{"k": 1}', None, None],
        }
    )
    ingest(frame, store, workers=1, progress=False)
    pixels = np.zeros((2, 2, 3), np.uint8)
    ingest([{"id": "arr2", "run_id": "kinds", "image": pixels}], store, workers=1, progress=False)
    path = tmp_path / "corpus.parquet"
    pd.DataFrame({"text": ["from parquet one", "from parquet two"]}).to_parquet(path)
    ingest(str(path), store, run_id="parquet", progress=False)
    jsonl = tmp_path / "corpus.jsonl"
    jsonl.write_text('{"text": "from json", "role": "system"}\n')
    ingest(str(jsonl), store, run_id="json", progress=False)
    ingest(["plain string one", "plain string two"], store, run_id="strings", progress=False)
    made = [ContextRecord.from_content({"tool": "x"}, run_id="records", id=f"r{i}") for i in range(3)]
    ingest(made, store, progress=False)

    kinds = {r.id: r for r in store.records("kinds")}
    assert kinds["t"].content == "plain text" and kinds["t"].role == "assistant"
    assert kinds["img"].content_type == "image/png" and kinds["img"].content.size == (3, 2)
    assert kinds["img"].text == "a teal picture" and kinds["img"].metadata == {"k": 1}
    assert kinds["arr2"].content.size == (2, 2)
    assert np.allclose(kinds["vec"].embedding, np.ones(16) / 4)  # type: ignore[arg-type]
    assert [r.text for r in store.records("parquet")] == ["from parquet one", "from parquet two"]
    assert [(r.text, r.role) for r in store.records("json")] == [("from json", "system")]
    assert [r.text for r in store.records("strings")] == ["plain string one", "plain string two"]
    assert [r.content for r in store.records("records")] == [{"tool": "x"}] * 3
    assert ingest([], store, progress=False) == store.version(), "nothing to add: no new version"


def test_an_id_given_twice_across_workers_writes_nothing(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s"), embedder=HashingEmbedder(8))
    items = [*_items(600), {"id": "d5", "text": "again"}]
    before = store.version()
    with pytest.raises(InvalidRecordError, match="'d5' appears twice"):
        ingest(items, store, batch_size=200, workers=2, progress=False)
    assert store.version() == before and store.count() == 0


@pytest.mark.long_only  # test_bad_input_and_arguments_write_nothing refuses a row without content
def test_a_row_without_content_is_refused(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s"), embedder=HashingEmbedder(8))
    with pytest.raises(InvalidRecordError, match="no content"):
        ingest([{"id": "x", "run_id": "s"}], store, progress=False)
    assert store.count() == 0


def test_each_rows_metadata_comes_back_as_add_stores_it(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "text": "alpha", "metadata": {"n": 1}, "lang": "en"},
        {"id": "b", "text": "beta", "metadata": {"b": "two"}, "lang": 2},  # a column of mixed types
        {"id": "c", "text": "gamma", "metadata": {"n": 2.5, "tags": ["t"]}, "lang": ["en", "fr"]},
    ]
    expected = [
        {"n": 1, "lang": "en"},
        {"b": "two", "lang": 2},
        {"n": 2.5, "tags": ["t"], "lang": ["en", "fr"]},
    ]
    for kind, items in (("rows", rows), ("frame", pd.DataFrame(rows))):
        store = ContextStore.open(str(tmp_path / kind), embedder=HashingEmbedder(8))
        ingest(items, store, run_id="s", progress=False)
        assert [r.metadata for r in store.records("s")] == expected


@pytest.mark.parametrize(
    ("row", "message"),
    [
        # each case is a Ray job (~6 s): make test runs one, make reliability all three
        pytest.param(
            {"text": "x", "metadata": "{not json"}, "metadata is not JSON", marks=pytest.mark.long_only
        ),
        ({"text": "x", "metadata": "[1, 2]"}, "metadata must be a JSON object"),
        pytest.param(
            {"text": "x", "created_at": "yesterday"}, "not an ISO 8601 time", marks=pytest.mark.long_only
        ),
    ],
)
def test_a_bad_row_is_refused_with_what_is_wrong_and_nothing_is_written(
    tmp_path: Path, row: dict[str, Any], message: str
) -> None:
    store = ContextStore.open(str(tmp_path / "s"), embedder=HashingEmbedder(8))
    before = store.version()
    with pytest.raises(InvalidRecordError, match=message):
        ingest([*_items(3), row], store, progress=False)
    assert store.version() == before and store.count() == 0
    ingest(_items(3), store, progress=False)  # after a failed job the next one runs
    assert store.count() == 3


def test_a_bad_batch_size_is_refused_before_the_job_starts(tmp_path: Path) -> None:
    store = ContextStore.open(str(tmp_path / "s"), embedder=HashingEmbedder(8))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidRecordError, match="batch_size must be a positive integer"):
            ingest(_items(3), store, batch_size=bad, progress=False)  # type: ignore[arg-type]
    assert store.count() == 0


def test_the_real_default_model_embeds_in_a_worker_as_in_process(tmp_path: Path) -> None:
    from lance_context import SentenceTransformerEmbedder

    store = ContextStore.open(str(tmp_path / "s"), embedder=SentenceTransformerEmbedder())
    topics = ["the weather in Lisbon", "a recipe for pancakes", "how to fix a bicycle tyre"]
    items = [{"text": f"{topics[i % 3]}, note {i}", "id": f"n{i}"} for i in range(90)]
    # one worker: each worker loads the model, and two would share this machine's two cores
    ingest(items, store, run_id="notes", batch_size=30, workers=1, progress=True)
    assert store.count() == 90
    in_process = SentenceTransformerEmbedder().embed_texts([items[7]["text"]])[0]
    assert np.allclose(store.get("n7").embedding, in_process, atol=1e-4)  # type: ignore[union-attr,arg-type]
    hits = store.search("repairing a flat tire", k=5, run_id="notes")
    assert all("bicycle" in (h.record.text or "") for h in hits)


def test_importing_the_module_does_not_import_ray() -> None:
    code = "import sys, lance_context.ray\nprint('ray' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    store = ContextStore.open(str(tmp_path / "s"), embedder=None)
    with pytest.raises(ImportError, match=r"pip install 'lance-context\[ray\]'"):
        ingest(["x"], store)
