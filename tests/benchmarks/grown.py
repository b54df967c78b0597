"""Stores grown the way agents grow them (issue 14: targets 1, 4 and 6).

Two stores are built through the LangChain adapter, as an agent builds its memory:

- ``grown``: 10,000 ``LanceChatMessageHistory.add_messages([message])`` calls, one
  message each, sessions taken round-robin over 100 sessions (every add is one Lance
  version and one fragment, with the store's default compaction and index upkeep);
- ``grown-large``: 50,000 messages over 1,000 sessions by 5,000 ``add_messages`` calls
  of 10 messages of one session each (one agent turn), sessions round-robin.

Vectors are the corpus' precomputed ones, handed over by an embedder that looks each
text up (no model runs). SQLChatMessageHistory gets the same messages, inserted in
the same order into its own table, in one SQLite file without and one with an index
on ``session_id``.

Rows: the last 50 messages of a session through ``records(run_id, last=50)`` and
``LanceChatMessageHistory.get_messages(last=50)``, cold (a new store handle per read,
or a new process) and warm (same handle, no new version), against the SQL peer cold
(a new engine per read, or a new process) and warm; disk against the same records in
one batch; a one-message add against a raw pylance one-row append on a copy of the
same dataset.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lance
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from common import Bench, Row, check, ms, p50
from data import DIM, Corpus, corpus
from writes import REPO, raw_rows, records, schema_of

from lance_context import ContextStore
from lance_context._filters import eq
from lance_context._reader import record_columns
from lance_context.adapters import LANGCHAIN_HISTORY

LAST = 50
#: What pylance alone does under a tail read (the floor rows).
FLOOR_READ = "filtered scan of seq + take of 50 rows (the floor)"
FIRST_READ = Path(__file__).with_name("first_read.py")


class PrecomputedEmbedder:
    """Returns the corpus' precomputed vector for each text: the store's cost, not a model's."""

    name = "bench-precomputed"
    dimension = DIM

    def __init__(self, data: Corpus) -> None:
        self.by_text = dict(zip(data.texts, data.vectors))

    def embed_texts(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.stack([self._vector(t) for t in texts])

    def _vector(self, text: str) -> npt.NDArray[np.float32]:
        # The chat history embeds each message as "speaker: text" (its indexing hint).
        found = self.by_text.get(text)
        return found if found is not None else self.by_text[text.split(": ", 1)[1]]


@dataclass
class Grown:
    """A store grown by small adds, the SQLite files holding the same messages, and how."""

    uri: str
    data: Corpus
    order: list[int]  # corpus rows in append order
    sqlite: str
    sqlite_indexed: str
    how: str
    add_seconds: list[float]

    def tail(self, session: str) -> list[str]:
        return [self.data.texts[i] for i in self.order if self.data.run_ids[i] == session][-LAST:]


def _message(data: Corpus, i: int) -> Any:
    from langchain_core.messages import AIMessage, HumanMessage

    return (HumanMessage if data.roles[i] == "user" else AIMessage)(data.texts[i])


def _turns(total: int, sessions: int, per_add: int) -> list[list[int]]:
    """Corpus rows grouped into adds: ``per_add`` messages of one session, sessions round-robin."""
    if per_add == 1:
        return [[i] for i in range(total)]
    rounds = total // (sessions * per_add)
    return [
        [(r * per_add + k) * sessions + s for k in range(per_add)]
        for r in range(rounds)
        for s in range(sessions)
    ]


def grow(bench: Bench, name: str, total: int, sessions: int, per_add: int) -> Grown:
    """Build the store through LanceChatMessageHistory and both SQLite peers."""
    from lance_context.langchain import LanceChatMessageHistory

    data = corpus(total, sessions=sessions, seed=41)
    turns = _turns(total, sessions, per_add)
    uri = bench.path(f"{name}.lance")
    store = ContextStore.open(uri, embedder=PrecomputedEmbedder(data))
    histories = {s: LanceChatMessageHistory(s, store=store) for s in sorted(set(data.run_ids))}
    seconds = []
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for n, turn in enumerate(turns):
            history = histories[data.run_ids[turn[0]]]
            batch = [_message(data, i) for i in turn]
            start = time.perf_counter()
            history.add_messages(batch)
            seconds.append(time.perf_counter() - start)
            if n % 2000 == 1999:
                print(
                    f"  {name}: {n + 1:,}/{len(turns):,} adds in {time.perf_counter() - started:.0f} s",
                    flush=True,
                )
    order = [i for turn in turns for i in turn]
    plain, indexed = bench.path(f"{name}.sqlite"), bench.path(f"{name}-indexed.sqlite")
    _fill_sql(plain, data, order)
    shutil.copyfile(plain, indexed)
    with sqlite3.connect(indexed) as db:
        db.execute("CREATE INDEX ix_message_store_session ON message_store (session_id)")
    if per_add == 1:
        how = f"{len(turns):,} one-message adds over {sessions:,} sessions"
    else:
        how = f"{len(turns):,} adds of {per_add} messages of one session, {sessions:,} sessions"
    return Grown(uri, data, order, plain, indexed, how, seconds)


def _fill_sql(path: str, data: Corpus, order: Sequence[int]) -> None:
    """SQLChatMessageHistory's own table and rows (its JSON format), in append order."""
    from langchain_community.chat_message_histories import SQLChatMessageHistory
    from langchain_core.messages import message_to_dict
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{path}")
    SQLChatMessageHistory("setup", connection=engine)  # creates the table
    engine.dispose()
    rows = [(data.run_ids[i], json.dumps(message_to_dict(_message(data, i)))) for i in order]
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO message_store (session_id, message) VALUES (?, ?)", rows)


# ---------------------------------------------------------------------- target 1
def _readers(grown: Grown) -> dict[str, Callable[..., Any]]:
    """Factories of one read each: ours through the core and the adapter, the SQL peers."""
    from langchain_community.chat_message_histories import SQLChatMessageHistory
    from sqlalchemy import create_engine

    from lance_context.langchain import LanceChatMessageHistory

    def store() -> ContextStore:
        return ContextStore.open(grown.uri, embedder=None)

    def engine(path: str) -> Any:
        return create_engine(f"sqlite:///{path}")

    return {
        "lance": lambda ds, s: _lance_tail(ds, LANGCHAIN_HISTORY.run_id(s)),
        "dataset": lambda: lance.dataset(grown.uri),
        "records": lambda st, s: st.records(LANGCHAIN_HISTORY.run_id(s), last=LAST, with_vectors=False),
        "get_messages": lambda st, s: LanceChatMessageHistory(s, store=st).get_messages(last=LAST),
        "sql": lambda eng, s: SQLChatMessageHistory(s, connection=eng).messages[-LAST:],
        "store": store,
        "engine": engine,
    }


def _lance_tail(ds: lance.LanceDataset, run_id: str) -> pa.Table:
    """The floor under a tail read: pylance alone does the store's two steps, nothing else.

    A filtered scan of the session's ``seq`` (with row ids), then a take of the newest 50 rows'
    columns (those ``records(..., with_vectors=False)`` reads).
    """
    outline = ds.to_table(columns=["seq"], filter=eq("run_id", run_id), with_row_id=True)
    newest = outline.take(pc.sort_indices(outline["seq"]))["_rowid"].to_pylist()[-LAST:]
    return ds._take_rows(newest, columns=record_columns(ds.schema, with_vectors=False))


def _check_same(grown: Grown, session: str) -> None:
    r = _readers(grown)
    want = grown.tail(session)
    st, eng = r["store"](), r["engine"](grown.sqlite_indexed)
    got = {
        "records": [x.text_payload for x in r["records"](st, session)],
        "get_messages": [m.content for m in r["get_messages"](st, session)],
        "sql": [m.content for m in r["sql"](eng, session)],
        "lance": r["lance"](r["dataset"](), session).column("text_payload").to_pylist(),
    }
    eng.dispose()
    for name, texts in got.items():
        assert texts == want, f"{name} returned the wrong last {LAST} messages"


def tail_reads(bench: Bench, grown: Grown, label: str, *, new_process: bool) -> None:
    """Last 50 messages, cold and warm, ours (two APIs) against SQLChatMessageHistory."""
    sessions = sorted(set(grown.data.run_ids))
    picks = random.Random(3).choices(sessions, k=bench.size(200, 60))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _check_same(grown, picks[0])
        r = _readers(grown)
        for api in ("records", "get_messages"):
            _cold(bench, grown, label, api, picks, r)
            _warm(bench, grown, label, api, picks, r)
    if new_process:
        for api in ("records", "get_messages"):
            _new_process(bench, grown, label, api, picks[: bench.size(12, 3)])


def _api_name(api: str) -> str:
    return f"records(run_id, last={LAST})" if api == "records" else f"get_messages(last={LAST})"


Side = tuple[Callable[[], Any], Callable[[Any, str], object]]


def _interleaved(picks: list[str], sides: dict[str, Side], *, fresh: bool) -> dict[str, list[float]]:
    """Seconds of each side's read per session; sides take turns going first.

    A side is ``(open, read)``: ``open()`` gives the handle to read through (not timed);
    ``fresh`` handles are released after their one read.
    """
    times: dict[str, list[float]] = defaultdict(list)
    keys = list(sides)
    for n, session in enumerate(picks):
        for key in keys[n % len(keys) :] + keys[: n % len(keys)]:
            open_, read = sides[key]
            handle = open_()
            start = time.perf_counter()
            read(handle, session)
            times[key].append(time.perf_counter() - start)
            if fresh and hasattr(handle, "dispose"):
                handle.dispose()
    return times


def _cold(bench: Bench, grown: Grown, label: str, api: str, picks: list[str], r: dict[str, Any]) -> None:
    times = _interleaved(
        picks,
        {
            "ours": (r["store"], r[api]),
            "indexed": (lambda: r["engine"](grown.sqlite_indexed), r["sql"]),
            "plain": (lambda: r["engine"](grown.sqlite), r["sql"]),
            "lance": (r["dataset"], r["lance"]),
        },
        fresh=True,
    )
    name = f"last {LAST} messages, {_api_name(api)}, cold: new store handle per read; {label}"
    row = Row(
        name,
        ms(p50(times["ours"])),
        "ms",
        "SQLChatMessageHistory + index on session_id, new engine per read",
        ms(p50(times["indexed"])),
        target="14.1",
        goal="cold ≤ peer",
    )
    bench.add(check(row, row.ratio is not None and row.ratio <= 1))
    peer = "SQLChatMessageHistory, no index, new engine per read"
    bench.add(Row(name, ms(p50(times["ours"])), "ms", peer, ms(p50(times["plain"]))))
    floor = f"pylance alone, new dataset per read: {FLOOR_READ}"
    bench.add(Row(name, ms(p50(times["ours"])), "ms", floor, ms(p50(times["lance"]))))


def _warm(bench: Bench, grown: Grown, label: str, api: str, picks: list[str], r: dict[str, Any]) -> None:
    ours, plain, indexed = r["store"](), r["engine"](grown.sqlite), r["engine"](grown.sqlite_indexed)
    for session in dict.fromkeys(picks):  # each session read once first: its first read is a cold row
        r[api](ours, session)
        r["sql"](plain, session)
        r["sql"](indexed, session)
    times = _interleaved(
        picks,
        {
            "ours": (lambda: ours, r[api]),
            "indexed": (lambda: indexed, r["sql"]),
            "plain": (lambda: plain, r["sql"]),
        },
        fresh=False,
    )
    plain.dispose()
    indexed.dispose()
    name = f"last {LAST} messages, {_api_name(api)}, warm: same handle, no new version; {label}"
    row = Row(
        name,
        ms(p50(times["ours"])),
        "ms",
        "SQLChatMessageHistory + index on session_id, same engine",
        ms(p50(times["indexed"])),
        target="14.1",
        goal="warm ≤ 0.1 ms",
    )
    bench.add(check(row, row.ours is not None and row.ours <= 0.1))
    peer = "SQLChatMessageHistory, no index, same engine"
    bench.add(Row(name, ms(p50(times["ours"])), "ms", peer, ms(p50(times["plain"]))))


def whole_session_warm(bench: Bench, grown: Grown, label: str) -> None:
    """Every message of a session, what ``RunnableWithMessageHistory`` reads each turn, warm."""
    from langchain_community.chat_message_histories import SQLChatMessageHistory

    from lance_context.langchain import LanceChatMessageHistory

    r = _readers(grown)
    ours, indexed = r["store"](), r["engine"](grown.sqlite_indexed)
    picks = random.Random(4).choices(sorted(set(grown.data.run_ids)), k=bench.size(200, 60))

    def mine(st: ContextStore, s: str) -> list[Any]:
        return LanceChatMessageHistory(s, store=st).messages

    def theirs(eng: Any, s: str) -> list[Any]:
        return SQLChatMessageHistory(s, connection=eng).messages

    for session in dict.fromkeys(picks):  # each session read once first
        assert [m.content for m in mine(ours, session)] == [m.content for m in theirs(indexed, session)]
    times = _interleaved(
        picks, {"ours": (lambda: ours, mine), "indexed": (lambda: indexed, theirs)}, fresh=False
    )
    indexed.dispose()
    size = len(grown.data) // len(set(grown.data.run_ids))
    bench.add(
        Row(
            f"every message of a session (~{size}), history.messages, warm: same handle, no new version; {label}",
            ms(p50(times["ours"])),
            "ms",
            "SQLChatMessageHistory + index on session_id, same engine",
            ms(p50(times["indexed"])),
        )
    )


def first_read_in_new_process(spec: dict[str, Any]) -> dict[str, float]:
    """Run ``first_read.py`` once: a fresh Python process times its first read of each side."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run(
        [sys.executable, str(FIRST_READ), json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"first_read.py failed: {done.stderr.strip()[-300:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _new_process(bench: Bench, grown: Grown, label: str, api: str, picks: list[str]) -> None:
    times: dict[str, list[float]] = defaultdict(list)
    for n, session in enumerate(picks):
        spec = {
            "kind": api,
            "uri": grown.uri,
            "sqlite": grown.sqlite_indexed,
            "key": session,
            "first": "ours" if n % 2 == 0 else "peer",
        }
        for key, value in first_read_in_new_process(spec).items():
            times[key].append(value)
    row = Row(
        f"last {LAST} messages, {_api_name(api)}, cold: first read in a new process; {label}",
        ms(p50(times["ours"])),
        "ms",
        "SQLChatMessageHistory + index on session_id, first read in a new process",
        ms(p50(times["peer"])),
        target="14.1",
        goal="cold ≤ peer",
        note=f"{len(picks)} processes; opening the store, not timed, took {ms(p50(times['open'])):.1f} ms",
    )
    bench.add(check(row, row.ratio is not None and row.ratio <= 1))
    if api == "records":
        floor = [
            first_read_in_new_process({"kind": "lance-tail", "uri": grown.uri, "key": s})["floor"]
            for s in picks
        ]
        peer = f"pylance alone, first read in a process of its own: {FLOOR_READ}"
        bench.add(Row(row.workload, row.ours, "ms", peer, ms(p50(floor))))


# ---------------------------------------------------------------------- targets 4 and 6
def disk_breakdown(path: str) -> dict[str, tuple[int, int]]:
    """Bytes and files under each top-level folder of a Lance dataset."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for file in Path(path).rglob("*"):
        if file.is_file():
            top = file.relative_to(path).parts[0]
            out[top][0] += file.stat().st_size
            out[top][1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def disk(bench: Bench, grown: Grown) -> None:
    """Disk of the grown store, every version kept, against the same records in one batch."""
    grown_store = ContextStore.open(grown.uri, embedder=None)
    same = grown_store.records()  # the records exactly as stored, vectors included
    batch_uri = bench.path("grown-batch.lance")
    ContextStore.open(batch_uri, embedder=None, dimension=DIM).add(same)
    parts = disk_breakdown(grown.uri)
    grown_bytes = sum(b for b, _ in parts.values())
    batch_bytes = sum(b for b, _ in disk_breakdown(batch_uri).values())
    ds = lance.dataset(grown.uri)
    note = ", ".join(
        f"{name.strip('_')} {size / 1e6:.1f} MB / {files:,} files"
        for name, (size, files) in sorted(parts.items(), key=lambda kv: -kv[1][0])
    )
    row = Row(
        f"disk after {grown.how}, every version kept",
        grown_bytes / 1e6,
        "MB",
        "same records written in one batch",
        batch_bytes / 1e6,
        target="14.6",
        goal="≤ 6x",
        note=f"{ds.version:,} versions, {len(ds.get_fragments())} fragments; {note}",
    )
    bench.add(check(row, row.ratio is not None and row.ratio <= 6))


def one_message_add(bench: Bench, grown: Grown) -> None:
    """A one-message add on the grown store against a raw pylance one-row append on a
    copy of the same dataset (same fragments, versions and indexes), interleaved."""
    raw_uri = bench.path("grown-raw-copy.lance")
    shutil.copytree(grown.uri, raw_uri)
    os.sync()  # the copy's pages are written back now, not during the timed appends
    store = ContextStore.open(grown.uri, embedder=None)
    schema = schema_of(store)
    adds = bench.size(300, 100)
    extra = corpus(adds, sessions=100, seed=43)
    mine_records = records(extra, 0, adds)
    rows = raw_rows(extra, 0, adds)
    raw = lance.dataset(raw_uri)
    mine, theirs = [], []
    for n, (record, row) in enumerate(zip(mine_records, rows)):
        table = pa.Table.from_pylist([row], schema=schema)
        ours_first = n % 2 == 0
        for side in ("ours", "raw") if ours_first else ("raw", "ours"):
            start = time.perf_counter()
            if side == "ours":
                store.add(record)
                mine.append(time.perf_counter() - start)
            else:
                raw = lance.write_dataset(table, raw, mode="append")
                theirs.append(time.perf_counter() - start)
    row = Row(
        f"one-message add, store grown by {grown.how}",
        ms(p50(mine)),
        "ms",
        "raw pylance one-row append on a copy of the same dataset",
        ms(p50(theirs)),
        target="14.4",
        goal="≤ 1.2x raw",
        note=f"mean ours {ms(sum(mine) / len(mine)):.2f} ms incl. compaction",
    )
    bench.add(check(row, row.ratio is not None and row.ratio <= 1.2))


# ---------------------------------------------------------------------- workloads
def grown_small(bench: Bench) -> None:
    """``grown``: 10,000 one-message adds over 100 sessions; reads, disk, one-message add."""
    total, sessions = bench.size(10_000, 2_000), bench.size(100, 20)
    grown = grow(bench, "grown", total, sessions, per_add=1)
    ds = lance.dataset(grown.uri)
    bench.add(
        Row(
            f"build: {grown.how} through LanceChatMessageHistory (per add)",
            ms(p50(grown.add_seconds)),
            "ms",
            note=f"mean {ms(sum(grown.add_seconds) / len(grown.add_seconds)):.2f} ms incl. compaction; "
            f"{ds.version:,} versions, {len(ds.get_fragments())} fragments",
        )
    )
    label = f"{grown.how}"
    tail_reads(bench, grown, label, new_process=True)
    whole_session_warm(bench, grown, label)
    disk(bench, grown)
    one_message_add(bench, grown)


def grown_large(bench: Bench) -> None:
    """``grown-large``: 50,000 messages over 1,000 sessions by adds of 10 messages."""
    total, sessions = bench.size(50_000, 5_000), bench.size(1_000, 100)
    grown = grow(bench, "grown-large", total, sessions, per_add=10)
    ds = lance.dataset(grown.uri)
    bench.add(
        Row(
            f"build: {grown.how} through LanceChatMessageHistory (per add)",
            ms(p50(grown.add_seconds)),
            "ms",
            note=f"mean {ms(sum(grown.add_seconds) / len(grown.add_seconds)):.2f} ms incl. compaction; "
            f"{ds.version:,} versions, {len(ds.get_fragments())} fragments",
        )
    )
    tail_reads(bench, grown, f"{total:,} messages: {grown.how}", new_process=False)
