"""The newest records of a long session, chosen without ordering all of its rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lance_context import CachePolicy, ContextRecord, ContextStore
from lance_context._reader import Reader
from lance_context._tail import tail_rows

LAST = 5
ROWS = 300  # far more than 4 * LAST + 64: the long path


def _msg(text: str, **fields: Any) -> ContextRecord:
    return ContextRecord.from_content(text, run_id="long", **fields)


def _texts(records: list[ContextRecord]) -> list[str | None]:
    return [r.text for r in records]


@pytest.fixture
def uri(tmp_path: Path) -> str:
    """A 300-message session written in 30 adds, beside a short session."""
    uri = str(tmp_path / "long.lance")
    store = ContextStore.open(uri, embedder=None)
    for start in range(0, ROWS, 10):
        store.add([_msg(f"m{i}", id=f"id-{i}") for i in range(start, start + 10)])
        store.add(ContextRecord.from_content(f"other {start}", run_id="other"))
    return uri


def _uncached(uri: str) -> ContextStore:
    return ContextStore.open(uri, embedder=None, caches=CachePolicy(tail_sessions=0))


def test_the_long_path_runs_and_agrees_with_the_whole_read(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen: list[object] = []
    real = Reader._long_tail

    def spy(reader: Reader, *args: Any, **kwargs: Any) -> Any:
        chosen.append(args[1])
        return real(reader, *args, **kwargs)

    monkeypatch.setattr(Reader, "_long_tail", spy)
    store = _uncached(uri)
    assert _texts(store.records("long", last=LAST)) == [f"m{i}" for i in range(ROWS - LAST, ROWS)]
    assert len(chosen) == 1  # the long session took the long path
    assert _texts(store.records("other", last=LAST)) == [f"other {s}" for s in range(250, 300, 10)]
    assert len(chosen) == 1  # a short session is put in order whole
    for last in (1, 7, 40):
        assert store.records("long", last=last) == store.records("long")[-last:]


def test_a_copy_written_again_counts_once_where_its_newest_copy_is(uri: str) -> None:
    writer = ContextStore.open(uri, embedder=None)
    # add() of a stored id appends a newer copy: readers show only the newest one
    writer.add(_msg("m297, again", id="id-297"))  # a copy of one of the newest rows
    writer.add(_msg("m3, again", id="id-3"))  # and of an old one
    for store in (_uncached(uri), ContextStore.open(uri, embedder=None)):
        tail = _texts(store.records("long", last=LAST))
        assert tail == ["m296", "m298", "m299", "m297, again", "m3, again"]
        assert store.records("long", last=LAST) == store.records("long")[-LAST:]
    for n in range(6):  # six copies are the newest rows: the choice looks further back
        writer.add(_msg(f"x{n}", id="x"))
    store = _uncached(uri)
    assert _texts(store.records("long", last=3)) == ["m297, again", "m3, again", "x5"]
    for last in (LAST, 12, 30):
        assert store.records("long", last=last) == store.records("long")[-last:]


def test_the_first_records_are_cached_only_when_known(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ContextStore.open(uri, embedder=None)
    store.records("long", last=LAST)  # caches the tail and the session's first records
    reads = []
    real = Reader._outline_rows
    monkeypatch.setattr(Reader, "_outline_rows", lambda *a, **k: reads.append(1) or real(*a, **k))
    assert _texts(store.records("long", limit=2)) == ["m0", "m1"] and not reads  # from the cache
    monkeypatch.undo()
    writer = ContextStore.open(uri, embedder=None)
    writer.add(_msg("m0, again", id="id-0"))  # the first record moves to the end
    fresh = ContextStore.open(uri, embedder=None)
    assert _texts(fresh.records("long", last=2)) == ["m299", "m0, again"]
    assert _texts(fresh.records("long", limit=2)) == ["m1", "m2"]  # not m0: read from the store
    assert _texts(fresh.records("long", limit=2)) == ["m1", "m2"]


def _outline(rows: list[tuple[int, str]]) -> pa.Table:
    return pa.table(
        {
            "seq": pa.array([s for s, _ in rows], pa.int64()),
            "id": pa.array([i for _, i in rows], pa.string()),
            "_rowid": pa.array(list(range(len(rows))), pa.uint64()),
        }
    )


def test_tail_rows_breaks_ties_by_id_and_keeps_the_newest_copy() -> None:
    rows = [(s, f"r{s:03d}") for s in range(200)]
    rows[150:152] = [(199, "b"), (199, "a")]  # two writers committed on the same version
    rows.append((500, "r010"))  # a newer copy of an old row
    chosen = tail_rows(_outline(rows), 4, 2)
    assert chosen is not None
    assert chosen.newest == [151, 150, 199, 200]  # a, b and r199 (seq 199, by id), then r010's new copy
    assert chosen.first == [0, 1]
    assert tail_rows(_outline(rows[:80]), 4, 2) is None  # short: ordered whole
    rows.append((600, "r000"))  # the first row has a newer copy: the first records are not known
    chosen = tail_rows(_outline(rows), 4, 2)
    assert chosen is not None and chosen.first is None and chosen.newest[-1] == 201


def test_a_record_written_again_and_again_falls_back_to_ordering_everything(tmp_path: Path) -> None:
    rows = [(s, f"id{s}") for s in range(80)] + [(s, "x") for s in range(80, 252)]
    assert tail_rows(_outline(rows), 2, 4) is None  # the window would outgrow half the rows
    store = ContextStore.open(str(tmp_path / "again.lance"), embedder=None)
    store.add([_msg(f"m{i}") for i in range(80)])
    for n in range(172):  # one record kept up to date by add() rather than upsert()
        store.add(_msg(f"state {n}", id="state"))
    assert _texts(store.records("long", last=2)) == ["m79", "state 171"]
    assert _texts(_uncached(store.uri).records("long", last=3)) == ["m78", "m79", "state 171"]
