"""recall() reuses a session's outline at one version, and never once the store moved on.

Recalled again at the same version, a session is not read again; any write (here, in
another handle or process, a restore, a forget) is recalled at once, and a recall of a
past version reads that version. The memo stays within its bounds.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder, _reader
from lance_context._outlines import OutlineMemo
from lance_context._ranking import ExactRows
from lance_context._reader import Outline
from lance_context._search import rank_exactly

TURNS = [
    "we hiked up the glacier trail",
    "the harbor was full of boats",
    "my sister bakes sourdough on sundays",
    "the castle tour ran late",
    "we crossed the old stone bridge",
    "the meadow had wild orchids",
]


def _store(path: Path) -> ContextStore:
    store = ContextStore.open(str(path), embedder=HashingEmbedder())
    store.add(
        [
            ContextRecord.from_content(text, role="user" if i % 2 == 0 else "assistant", run_id="chat")
            for i, text in enumerate(TURNS)
        ]
    )
    store.add(ContextRecord.from_content("the other chat talks about orchids", run_id="other"))
    return store


def _count_outlines(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    reads: list[str | None] = []
    real = _reader.Reader.outline

    def spy(self: _reader.Reader, run_id: str | None, *args: object, **kwargs: object) -> Outline:
        reads.append(run_id)
        return real(self, run_id, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_reader.Reader, "outline", spy)
    return reads


def _texts(store: ContextStore, query: str, **kwargs: object) -> list[list[str]]:
    found = store.recall(query, run_id="chat", k=2, before=1, after=1, **kwargs)  # type: ignore[arg-type]
    return [[t.text or "" for t in r.turns] for r in found]


def test_recall_again_at_the_same_version_reads_the_session_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path / "m.lance")
    reads = _count_outlines(monkeypatch)
    first = _texts(store, "sourdough")
    assert _texts(store, "sourdough") == first
    assert _texts(store, "stone bridge") != first
    assert reads == ["chat"]
    assert first[0][1] == "my sister bakes sourdough on sundays"
    # another filter of the same session is its own outline, and keeps to it
    users = store.recall("orchids", run_id="chat", roles="user", k=3, before=0, after=0)
    assert reads == ["chat", "chat"]
    assert {r.match.role for r in users} == {"user"}


def test_a_write_to_the_session_is_recalled_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path / "m.lance")
    reads = _count_outlines(monkeypatch)
    assert "volcano" not in str(_texts(store, "volcano"))
    store.add(ContextRecord.from_content("next year we climb a volcano", run_id="chat"))
    found = _texts(store, "volcano")
    assert found[0][-1] == "next year we climb a volcano"
    assert found[0][0] == TURNS[-1]  # its neighbour: the new turn is last in the outline too
    assert reads == ["chat", "chat"]


def _add_elsewhere(path: str) -> None:
    ContextStore.open(path, embedder=HashingEmbedder()).add(
        ContextRecord.from_content("a lighthouse on the cliff", run_id="chat")
    )


def test_another_processes_write_is_recalled_on_the_next_call(tmp_path: Path) -> None:
    path = tmp_path / "m.lance"
    store = _store(path)
    assert "lighthouse" not in str(_texts(store, "lighthouse"))
    child = multiprocessing.get_context("spawn").Process(target=_add_elsewhere, args=(str(path),))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    found = _texts(store, "lighthouse")
    assert found[0][-1] == "a lighthouse on the cliff"
    assert [r.text for r in store.records("chat")][-1] == "a lighthouse on the cliff"


def test_past_and_latest_versions_alternate_without_mixing(tmp_path: Path) -> None:
    store = _store(tmp_path / "m.lance")
    past = store.version()
    store.add(ContextRecord.from_content("the glacier melted into a lake", run_id="chat"))
    for _ in range(2):
        then = store.recall("glacier", run_id="chat", k=5, before=0, after=0, version=past)
        now = store.recall("glacier", run_id="chat", k=5, before=0, after=0)
        assert "the glacier melted into a lake" not in [r.match.text for r in then]
        assert "the glacier melted into a lake" in [r.match.text for r in now]
    store.restore(past)  # a restore is a new version whose records are the past one's
    assert "the glacier melted into a lake" not in [
        r.match.text for r in store.recall("glacier", run_id="chat")
    ]


def test_a_forgotten_turn_is_never_recalled_from_memory(tmp_path: Path) -> None:
    store = _store(tmp_path / "m.lance")
    assert any("sourdough" in t for group in _texts(store, "sourdough") for t in group)
    gone = next(r.id for r in store.records("chat") if "sourdough" in (r.text or ""))
    store.forget(gone)
    found = store.recall("sourdough", run_id="chat", k=6, before=1, after=1)
    assert found and all("sourdough" not in (t.text or "") for r in found for t in r.turns)


def _outline(rows: int, dim: int = 4) -> Outline:
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(rows * dim, np.float32)), dim)
    table = pa.table(
        {
            "id": [f"r{i}" for i in range(rows)],
            "_rowid": pa.array(range(rows), pa.uint64()),
            "embedding": vectors,
        }
    )
    return Outline(table, "s", None, None)  # type: ignore[arg-type]


def test_the_memo_keeps_one_version_within_its_bounds() -> None:
    memo = OutlineMemo(max_entries=2, max_bytes=10_000)
    reads: list[str] = []

    def read(name: str, rows: int) -> Outline:
        reads.append(name)
        return _outline(rows)

    at = ("main", 3)
    a = memo.get(at, ("a", None, None), lambda: read("a", 10))
    assert a.order.ids[:2] == ["r0", "r1"] and [a.row_of["r0"], a.row_of["r1"]] == [0, 1]
    assert memo.get(at, ("a", None, None), lambda: read("a", 10)) is a
    memo.get(at, ("b", None, None), lambda: read("b", 10))
    memo.get(at, ("c", None, None), lambda: read("c", 10))  # drops a, the least recently used
    assert len(memo) == 2
    memo.get(at, ("a", None, None), lambda: read("a", 10))
    assert reads == ["a", "b", "c", "a"]
    memo.get(at, ("big", None, None), lambda: read("big", 1_000))  # larger than the bound: not kept
    memo.get(at, ("big", None, None), lambda: read("big", 1_000))
    assert reads[-2:] == ["big", "big"] and len(memo) == 2
    memo.get(("main", 4), ("a", None, None), lambda: read("a", 10))  # another version: emptied first
    assert reads[-1] == "a" and len(memo) == 1
    memo.get(("branch", 4), ("a", None, None), lambda: read("a", 10))  # same number, another branch
    assert reads[-1] == "a" and len(memo) == 1


def test_rows_kept_for_ranking_rank_every_query_as_a_fresh_read() -> None:
    """A kept outline's vectors are converted once; each query ranks them exactly, as a new read."""
    rng = np.random.default_rng(5)
    vectors: list[list[float] | None] = [list(v) for v in rng.normal(size=(40, 8)).astype(np.float32)]
    vectors[3] = [0.0] * 8  # no direction: never a hit
    vectors[7] = None  # no vector: never a hit
    table = pa.table(
        {
            "id": [f"r{i}" for i in range(40)],
            "_rowid": pa.array(range(100, 140), pa.uint64()),
            "embedding": pa.array(vectors, pa.list_(pa.float32(), 8)),
        }
    )
    rows = ExactRows.of(table)
    assert "r7" not in rows.ids
    for _ in range(5):
        query = rng.normal(size=8).astype(np.float32)
        ranked = rows.rank(query, 10)
        usable = [(i, np.asarray(v)) for i, v in enumerate(vectors) if v is not None and any(v)]
        cosine = {i: float(v @ query / (np.linalg.norm(v) * np.linalg.norm(query))) for i, v in usable}
        best = sorted(cosine, key=lambda i: -cosine[i])[:10]
        assert ranked.ids == [f"r{i}" for i in best]
        assert ranked.row_ids == [100 + i for i in best]
        assert ranked.scores == pytest.approx([cosine[i] for i in best], abs=1e-6)
        assert ranked == rank_exactly(table, query, 10)


def test_recall_from_a_kept_outline_ranks_as_a_new_handle(tmp_path: Path) -> None:
    store = _store(tmp_path / "m.lance")
    for query in ("sourdough", "stone bridge", "orchids in the meadow", "boats", "sourdough"):
        kept = store.recall(query, run_id="chat", k=3, before=1, after=1)
        fresh = ContextStore.open(str(tmp_path / "m.lance"), embedder=HashingEmbedder()).recall(
            query, run_id="chat", k=3, before=1, after=1
        )
        assert [(r.match.id, r.score, [t.id for t in r.turns]) for r in kept] == [
            (r.match.id, r.score, [t.id for t in r.turns]) for r in fresh
        ]
    assert len(store._recaller._outlines) == 1
