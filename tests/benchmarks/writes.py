"""Write workloads: one-message adds (target 1), growth against lance-context 0.6.7
(target 2), version checkout (target 6), disk after many appends (target 7), and the same
store governed (issue 16): forgetting a session, then disk past the retention window."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import lance
import pyarrow as pa
from common import FAIL, PASS, Bench, Row, check, dir_bytes, ms, p50, time_each, time_once
from data import DIM, Corpus, corpus

from lance_context import ContextRecord, ContextStore, RetentionPolicy

REPO = Path(__file__).resolve().parents[2]
UPSTREAM_VENV = REPO / ".bench" / "upstream"
UPSTREAM_SPEC = "lance-context==0.6.7"


def records(data: Corpus, lo: int, hi: int) -> list[ContextRecord]:
    """ContextRecords for rows ``lo:hi`` of the corpus, with their precomputed embeddings."""
    return [
        ContextRecord(
            run_id=data.run_ids[i],
            role=data.roles[i],
            text_payload=data.texts[i],
            embedding=data.vectors[i],
        )
        for i in range(lo, hi)
    ]


def open_store(path: str) -> ContextStore:
    """A store that takes caller-made vectors: no embedder runs, so the store's cost is measured."""
    return ContextStore.open(path, embedder=None, dimension=DIM)


def schema_of(store: ContextStore) -> pa.Schema:
    """The store's Arrow schema (raw pylance peers write exactly these columns)."""
    return lance.dataset(store.uri).schema


def raw_rows(data: Corpus, lo: int, hi: int) -> list[dict[str, Any]]:
    """The same records as plain Python rows of the store's columns, for raw pylance."""
    now = datetime.now(timezone.utc)
    return [
        {
            "id": f"raw-{i}",
            "run_id": data.run_ids[i],
            "seq": i,
            "created_at": now,
            "role": data.roles[i],
            "content_type": "text/plain",
            "text_payload": data.texts[i],
            "binary_payload": None,
            "state_metadata": None,
            "metadata": "{}",
            "metadata_index": "{}",
            "relationships": [],
            "embedding": data.vectors[i],
        }
        for i in range(lo, hi)
    ]


# ---------------------------------------------------------------------- target 1
def one_message_add(bench: Bench) -> None:
    """p50 of a one-message add (precomputed embedding) at 100 and 10,000 records,
    interleaved with raw pylance one-row appends on a dataset of the same records."""
    adds = bench.size(300, 150)
    at: dict[int, float] = {}
    for size in (100, 10_000):
        data = corpus(size + adds, sessions=max(1, size // 100), seed=size)
        store = open_store(bench.path(f"add-{size}"))
        store.add(records(data, 0, size))
        schema = schema_of(store)
        raw = lance.write_dataset(
            pa.Table.from_pylist(raw_rows(data, 0, size), schema=schema), bench.path(f"raw-add-{size}")
        )
        mine, theirs = [], []
        pending = records(data, size, size + adds)
        rows = raw_rows(data, size, size + adds)
        for record, row in zip(pending, rows):
            mine.append(time_once(lambda s=store, r=record: s.add(r)))
            start = time.perf_counter()
            raw = lance.write_dataset(pa.Table.from_pylist([row], schema=schema), raw, mode="append")
            theirs.append(time.perf_counter() - start)
        at[size] = ms(p50(mine))
        row = Row(
            f"one-message add, store of {size:,}",
            at[size],
            "ms",
            "raw pylance one-row append",
            ms(p50(theirs)),
            target="1",
            goal="≤ 1.5x raw",
        )
        bench.add(check(row, row.ratio is not None and row.ratio <= 1.5))
    flat = Row(
        "one-message add at 10,000 vs at 100 records",
        at[10_000],
        "ms",
        "ours at 100 records",
        at[100],
        target="1",
        goal="≤ 1.5x",
    )
    bench.add(check(flat, flat.ratio is not None and flat.ratio <= 1.5))
    _chat_history_peers(bench, adds)


def _chat_history_peers(bench: Bench, adds: int) -> None:
    """Information: what one-message appends cost in LangChain's chat histories (no vectors)."""
    from langchain_community.chat_message_histories import SQLChatMessageHistory
    from langchain_core.chat_history import InMemoryChatMessageHistory
    from langchain_core.messages import HumanMessage

    data = corpus(10_000 + adds, sessions=100, seed=3)
    path = bench.path("sql-add.sqlite")
    history = SQLChatMessageHistory("session-00000", connection=f"sqlite:///{path}")
    _fill_sql(path, data, 0, 10_000)
    memory = InMemoryChatMessageHistory()
    memory.add_messages([HumanMessage(t) for t in data.texts[:10_000]])
    messages = [HumanMessage(t) for t in data.texts[10_000:]]
    sql = time_each(lambda m=m: history.add_message(m) for m in messages)
    mem = time_each(lambda m=m: memory.add_message(m) for m in messages)
    name = "one-message add, 10,000 messages (peers store no vector)"
    bench.add(Row(name, None, "ms", "SQLChatMessageHistory (SQLite)", ms(p50(sql))))
    bench.add(Row(name, None, "ms", "InMemoryChatMessageHistory", ms(p50(mem))))


def _fill_sql(path: str, data: Corpus, lo: int, hi: int) -> None:
    """Bulk-insert messages into SQLChatMessageHistory's own table (same rows it would write)."""
    from langchain_core.messages import AIMessage, HumanMessage, message_to_dict

    kinds = {"user": HumanMessage, "assistant": AIMessage}
    rows = [
        (data.run_ids[i], json.dumps(message_to_dict(kinds[data.roles[i]](data.texts[i]))))
        for i in range(lo, hi)
    ]
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO message_store (session_id, message) VALUES (?, ?)", rows)


# ---------------------------------------------------------------------- target 2
def _upstream_python() -> tuple[str | None, str]:
    """The 0.6.7 virtualenv's python, installing it on first use; (None, reason) when impossible."""
    python = UPSTREAM_VENV / "bin" / "python"
    probe = [str(python), "-c", "import lance_context, sys; print(lance_context.__version__)"]
    if python.exists():
        done = subprocess.run(probe, capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip() == "0.6.7":
            return str(python), ""
    print(f"  installing {UPSTREAM_SPEC} into {UPSTREAM_VENV} ...", flush=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(UPSTREAM_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", UPSTREAM_SPEC],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return None, f"cannot install {UPSTREAM_SPEC}: {(done.stderr or done.stdout).strip()[-300:]}"
    return str(python), ""


def growth_vs_upstream(bench: Bench) -> None:
    """Both stores grow one add at a time to N records; p50 of the per-add time."""
    total = bench.size(500, 200)
    data = corpus(total, sessions=10, seed=11)
    store = open_store(bench.path("grow-ours"))
    mine = time_each(lambda r=r: store.add(r) for r in records(data, 0, total))
    python, reason = _upstream_python()
    goal = "≥ 20x faster (≤ 0.05)"
    name = f"grow to {total} records, one add at a time (per add)"
    if python is None:
        bench.skips.append(f"target 2: {reason}")
        bench.add(
            Row(name, ms(p50(mine)), "ms", UPSTREAM_SPEC, target="2", goal=goal, status="SKIP", note=reason)
        )
        return
    feed = Path(bench.path("grow-upstream.jsonl"))
    with feed.open("w") as out:
        for i in range(total):
            out.write(
                json.dumps(
                    {
                        "text": data.texts[i],
                        "run_id": data.run_ids[i],
                        "role": data.roles[i],
                        "embedding": data.vectors[i].tolist(),
                    }
                )
                + "\n"
            )
    driver = Path(__file__).with_name("upstream_driver.py")
    done = subprocess.run(
        [python, str(driver), bench.path("grow-upstream.lance"), str(feed)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        reason = f"0.6.7 driver failed: {done.stderr.strip()[-300:]}"
        bench.skips.append(f"target 2: {reason}")
        bench.add(
            Row(name, ms(p50(mine)), "ms", UPSTREAM_SPEC, target="2", goal=goal, status="SKIP", note=reason)
        )
        return
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    row = Row(name, ms(p50(mine)), "ms", UPSTREAM_SPEC, ms(p50(theirs)), target="2", goal=goal)
    bench.add(check(row, row.ratio is not None and row.ratio <= 0.05))
    last = Row(
        f"add at {total} records (mean of last 10)",
        ms(sum(mine[-10:]) / 10),
        "ms",
        UPSTREAM_SPEC,
        ms(sum(theirs[-10:]) / 10),
    )
    bench.add(last)


# ---------------------------------------------------------------------- targets 6 and 7
def appends_disk_and_versions(bench: Bench) -> None:
    """10,000 one-message appends under the default policy: disk against one batch
    (target 7), then checkout of random versions among them (target 6)."""
    total = bench.size(10_000, 2_000)
    data = corpus(total, sessions=100, seed=21)
    path = bench.path("appends")
    store = open_store(path)
    each = time_each(lambda r=r: store.add(r) for r in records(data, 0, total))
    bench.add(
        Row(
            f"one-message add while growing to {total:,} (mean, incl. compaction)",
            ms(sum(each) / len(each)),
            "ms",
        )
    )
    batch_path = bench.path("batch")
    open_store(batch_path).add(records(data, 0, total))
    grown, batch = dir_bytes(path) / 1e6, dir_bytes(batch_path) / 1e6
    row = Row(
        f"disk after {total:,} one-message appends",
        grown,
        "MB",
        "same records in one batch",
        batch,
        target="7",
        goal="≤ 10x",
    )
    bench.add(check(row, row.ratio is not None and row.ratio <= 10))
    if not bench.quick:
        _raw_append_disk(bench, data, total)
    _checkout(bench, store, total)
    sessions = random.Random(8).choices(sorted(set(data.run_ids)), k=100)
    reads = time_each(lambda s=s: store.records(s, last=50) for s in sessions)
    fragments = len(lance.dataset(store.uri).get_fragments())
    bench.add(
        Row(
            f"last 50 messages of a session, store grown by {total:,} one-message adds",
            ms(p50(reads)),
            "ms",
            note=f"{fragments} fragments",
        )
    )
    _governed(bench, store, path, batch, total)


# ---------------------------------------------------------------------- issue 16
def _governed(bench: Bench, store: ContextStore, path: str, batch: float, total: int) -> None:
    """Forget one session in a copy of the grown store (target 16.1: verified), then disk once every
    append is past the full-history window of the default RetentionPolicy (target 16.2)."""
    copy = bench.path("appends-forget")
    shutil.copytree(path, copy)
    twin = open_store(copy)
    session = sorted(twin.run_ids())[0]
    start = time.perf_counter()
    report = twin.forget(run_id=session)
    took = time.perf_counter() - start
    bench.add(
        Row(
            f"forget one session ({report.records} records) of a store grown by {total:,} one-message adds",
            took,
            "s",
            note=f"{sum(len(v) for v in report.versions_expired.values()):,} versions expired, "
            f"{report.verification.files_scanned if report.verification else 0:,} files verified",
            status=PASS if report.verified else FAIL,
            target="16.1",
            goal="verified",
        )
    )
    later = datetime.now(timezone.utc) + RetentionPolicy().keep_all + timedelta(hours=1)
    start = time.perf_counter()
    retained = store.apply_retention(RetentionPolicy(), now=later)
    took = time.perf_counter() - start
    row = Row(
        f"disk after {total:,} one-message appends, past the full-history window (default RetentionPolicy)",
        dir_bytes(path) / 1e6,
        "MB",
        "same records in one batch",
        batch,
        target="16.2",
        goal="≤ 3x",
        note=f"apply_retention {took:.1f} s, {retained.versions_removed:,} versions removed",
    )
    bench.add(check(row, row.ratio is not None and row.ratio <= 3))


def _raw_append_disk(bench: Bench, data: Corpus, total: int) -> None:
    """Information: raw pylance one-row appends, never compacted."""
    schema = schema_of(open_store(bench.path("raw-schema")))
    rows = raw_rows(data, 0, total)
    path = bench.path("raw-appends")
    ds = lance.write_dataset(pa.Table.from_pylist(rows[:1], schema=schema), path)
    for row in rows[1:]:
        ds = lance.write_dataset(pa.Table.from_pylist([row], schema=schema), ds, mode="append")
    bench.add(
        Row(f"disk after {total:,} raw pylance one-row appends (no compaction)", dir_bytes(path) / 1e6, "MB")
    )


def _checkout(bench: Bench, store: ContextStore, total: int) -> None:
    """Check out random past versions (each once) and count their records; both sides are
    opened afresh, so no manifest is cached from writing them."""
    latest = store.version()
    picks = random.Random(5).sample(range(1, latest), min(200, latest - 1))
    fresh = ContextStore.open(store.uri, embedder=None)
    ds = lance.dataset(store.uri)

    def ours(v: int) -> None:
        fresh.checkout(v)
        fresh.count()

    mine = time_each(lambda v=v: ours(v) for v in picks)
    theirs = time_each(lambda v=v: ds.checkout_version(v).count_rows() for v in picks)
    row = Row(
        f"checkout a version among {latest:,} + count",
        ms(p50(mine)),
        "ms",
        "raw pylance checkout_version + count_rows",
        ms(p50(theirs)),
        target="6",
        goal="≤ 10 ms",
    )
    bench.add(check(row, row.ours is not None and row.ours <= 10))
