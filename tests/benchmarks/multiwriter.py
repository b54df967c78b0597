"""Writers on one object-store memory (issue 18): one-record adds per second held by 1, 2 and 4
writer processes on the S3 server (moto on 127.0.0.1), with conflict retries counted.

Each writer is a spawned process with its own store that adds one record at a time for a
fixed time. Its commits are counted by wrapping Lance's commit in the writer process:
a commit Lance had to rebase over others' commits landed since the version it read,
and a conflict is an append Lance gave up on, retried by the store's backoff loop (a compaction
merge that conflicts with another writer's is counted apart: it is left to a later write).
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from common import Bench, Row

SPAWN = multiprocessing.get_context("spawn")
REPO = Path(__file__).resolve().parents[2]


def writer(
    uri: str, options: dict[str, str], name: str, seconds: float, ready: Any, go: Any, out: Any
) -> None:
    """Add one record at a time until ``seconds`` have passed; report counts and latencies."""
    import lance

    from lance_context import CommitConflictError, ContextRecord, ContextStore

    counts = {"commits": 0, "rebased": 0, "conflicts": 0, "refused": 0, "merges_skipped": 0}
    real = lance.LanceDataset.commit

    def counted(base: Any, operation: Any, *args: Any, **kwargs: Any) -> Any:
        read = int(getattr(operation, "read_version", 0) or 0)
        # the writes' appends; a compaction's merge (a Rewrite) that conflicts is left to a later write
        append = type(getattr(operation, "operation", operation)).__name__ == "Append"
        try:
            new = real(base, operation, *args, **kwargs)
        except OSError as exc:
            if "conflict" in str(exc).lower():
                counts["conflicts" if append else "merges_skipped"] += 1
            raise
        if append:
            counts["commits"] += 1
            counts["rebased"] += int(new.version) > read + 1
        return new

    lance.LanceDataset.commit = staticmethod(counted)  # type: ignore[method-assign,assignment]
    store = ContextStore.open(uri, storage_options=options, embedder=None)
    store.add(ContextRecord.from_content("warm up", run_id=name))  # opens, checks commits once
    for key in counts:
        counts[key] = 0
    ready.put(name)
    go.wait(60)
    latencies, deadline, i = [], time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            store.add(ContextRecord.from_content(f"{name} message {i}", run_id=name))
            latencies.append(time.perf_counter() - started)
        except CommitConflictError:
            counts["refused"] += 1
        i += 1
    out.put({"writer": name, "writes": len(latencies), "latencies": latencies, **counts})


def _round(server: Any, writers: int, seconds: float) -> dict[str, Any]:
    from lance_context import ContextStore

    bucket = server.bucket()
    uri, options = bucket.uri("writers"), bucket.storage_options
    ContextStore.open(uri, storage_options=options, embedder=None)
    ready, go, out = SPAWN.Queue(), SPAWN.Event(), SPAWN.Queue()
    processes = [
        SPAWN.Process(target=writer, args=(uri, options, f"w{n}", seconds, ready, go, out))
        for n in range(writers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=120)
    go.set()
    results = [out.get(timeout=seconds + 300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    store = ContextStore.open(uri, storage_options=options, embedder=None)
    written = sum(r["writes"] for r in results)
    assert store.count() == written + writers, "every acknowledged write is in the store"
    return {
        "writes_per_second": written / seconds,
        "p50_ms": 1000 * statistics.median([x for r in results for x in r["latencies"]] or [0.0]),
        **{
            key: sum(r[key] for r in results)
            for key in ("commits", "rebased", "conflicts", "refused", "merges_skipped")
        },
    }


def s3_writers(bench: Bench) -> None:
    """Rows: writes per second by 1, 2 and 4 writers, with rebases and conflict retries."""
    sys.path.insert(0, str(REPO))
    from tests.conftest import MotoServer

    seconds = bench.size(20, 5)
    server = MotoServer()
    server.start()
    try:
        for writers in (1, 2, 4):
            got = _round(server, writers, seconds)
            share = 100 * got["rebased"] / max(1, got["commits"])
            bench.add(
                Row(
                    f"one-record adds on S3 (moto), {writers} writer process{'es' if writers > 1 else ''}",
                    got["writes_per_second"],
                    "writes/s",
                    note=(
                        f"p50 {got['p50_ms']:.0f} ms; {share:.0f} % of appends rebased over others'; "
                        f"{got['conflicts']} conflict retries; {got['refused']} refused; "
                        f"{got['merges_skipped']} compaction merges left to a later write"
                    ),
                )
            )
    finally:
        server.stop()
