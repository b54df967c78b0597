"""Forgetting under stress: while other processes append, and killed with SIGKILL midway.

After either, the store opens, every acknowledged record of the other sessions is there,
and a forget run (again, after a kill) completes with a verification that found nothing.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lance_context import CachePolicy, CompactionPolicy, ContextRecord, ContextStore, HashingEmbedder

from . import _workers, scale
from .report import TALLY

pytestmark = pytest.mark.reliability

SPAWN = multiprocessing.get_context("spawn")
VICTIM = "victim-session"
PAYLOAD = "VICTIM-PAYLOAD-{i}-do-not-keep"
CHILD = Path(__file__).with_name("_forget_child.py")


def _raw(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file())


def _seed(uri: str, *, embedder: Any = None, rounds: int = 8) -> list[str]:
    """A store whose victim session is spread over many versions, compactions and a tag."""
    store = ContextStore.open(uri, embedder=embedder, compaction=CompactionPolicy(fanout=4))
    keepers = []
    for i in range(rounds):
        keeper = ContextRecord(id=f"keeper-{i}", run_id="keeper", text_payload=f"kept {i}")
        store.add([keeper, ContextRecord(run_id=VICTIM, text_payload=PAYLOAD.format(i=i))])
        keepers.append(keeper.id)
        if i == rounds // 2:
            store.tag("middle")
    store.compact()
    return keepers


def test_forget_while_other_processes_append(tmp_path: Path) -> None:
    size = scale.current()
    processes, threads, appends = max(2, size.processes // 2), size.threads, max(20, size.appends_per_thread // 3)
    uri = str(tmp_path / "store")
    _seed(uri, embedder=HashingEmbedder(_workers.DIMENSION))
    ready, go, results = SPAWN.Queue(), SPAWN.Event(), SPAWN.Queue()
    workers = [
        SPAWN.Process(target=_workers.append_worker, args=(uri, None, p, threads, appends, ready, go, results))
        for p in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:
            status, detail = ready.get(timeout=120)
            assert status == "ready", detail
        store = ContextStore.open(uri, embedder=HashingEmbedder(_workers.DIMENSION))
        go.set()
        time.sleep(0.5)  # let the writers get going (and compacting)
        report = store.forget(run_id=VICTIM)
        outcomes = [results.get(timeout=900) for _ in range(processes * threads)]
    finally:
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()
    committed = [i for o in outcomes for i in o["committed"]]
    refused = [i for o in outcomes for batch in o["refused"] for i in batch]
    counts = Counter(r.id for r in store.records())
    lost = [i for i in committed if i not in counts]
    TALLY.add(
        writes_attempted=len(committed) + len(refused), writes_committed=len(committed),
        writes_refused=len(refused), writes_lost=len(lost),
        writes_duplicated=sum(n - 1 for n in counts.values() if n > 1),
        forgets=1, forgets_verified=int(report.verified),
    )  # fmt: skip
    errors = [e for o in outcomes for e in o["errors"]]
    assert not errors, "a writer failed:\n" + errors[0]
    assert lost == [] and max(counts.values()) == 1
    assert report.verified, report.verification
    assert store.count(VICTIM) == 0 and b"VICTIM-PAYLOAD" not in _raw(tmp_path / "store")


def _kill_during_forget(uri: str, delay: float) -> bool:
    """Start a forget in a child process, SIGKILL it ``delay`` seconds in; True if it was cut short."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, str(CHILD), uri], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(child.stdout.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while "BEGIN\n" not in lines and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.01)
    time.sleep(delay)
    if child.poll() is None:
        child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    reader.join(timeout=10)
    return not any(line.startswith("END") for line in lines)


def test_a_forget_killed_midway_is_finished_by_running_it_again(tmp_path: Path) -> None:
    rng = random.Random(16)
    _seed(str(tmp_path / "timing"))
    start = time.perf_counter()
    ContextStore.open(str(tmp_path / "timing"), embedder=None).forget(run_id=VICTIM)
    takes = time.perf_counter() - start  # kills land anywhere inside a run this long
    for round_ in range(scale.current().kills_per_phase):
        uri = str(tmp_path / f"store-{round_}")
        keepers = _seed(uri)
        cut_short = _kill_during_forget(uri, rng.uniform(0.0, takes))
        TALLY.add(crashes=1, crashes_mid_operation=int(cut_short))
        # opened as a restarted process opens it (caches of this process are not shared)
        store = ContextStore.open(uri, embedder=None, caches=CachePolicy(metadata_bytes=2**20 + round_))
        assert [r.id for r in store.records("keeper")] == keepers
        report = store.forget(run_id=VICTIM)
        assert report.verified or (report.records == 0 and not report.versions_expired)
        assert store.count(VICTIM) == 0 and b"VICTIM-PAYLOAD" not in _raw(Path(uri))
        store.add(ContextRecord(run_id="keeper", text_payload="after the crash"))
        assert store.count("keeper") == len(keepers) + 1
        TALLY.add(crashes_survived=1, forgets=1, forgets_verified=1)
