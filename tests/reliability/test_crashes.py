"""Writers killed with SIGKILL in the middle of add, compaction and cleanup.

Each round starts a real writer process on the same store, waits until it is inside the
chosen operation, kills it after a random delay, then checks the store: it opens, every
batch the writer reported committed is there in full, no batch is partial, nothing is
duplicated, every listed version reads, and a new write is accepted.
"""

from __future__ import annotations

import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO

import pytest

from lance_context import CachePolicy, ContextRecord, ContextStore, VersionNotFoundError

from . import scale
from .report import TALLY

pytestmark = pytest.mark.reliability

CHILD = Path(__file__).with_name("_crash_child.py")
_TYPICAL_SECONDS = {"add": 0.006, "compact": 0.03, "cleanup": 0.02}
"""About how long each operation takes in the child here: the kill lands within it."""


@dataclass
class Ledger:
    """What the killed writers reported, over every round."""

    committed: dict[str, tuple[int, int]] = field(default_factory=dict)
    """batch -> (size, version its add returned)"""
    in_flight: set[str] = field(default_factory=set)
    """batches whose add began but was not reported: allowed to be there, but only whole"""
    cleanup_interrupted: bool = False
    """a kill landed inside ``cleanup()`` and no cleanup has finished since"""


def _reader(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _kill_during(phase: str, uri: str, round_: int, rng: random.Random, ledger: Ledger) -> bool:
    """Run a writer, SIGKILL it inside ``phase``; return True if it died inside the operation."""
    process = subprocess.Popen(
        [sys.executable, str(CHILD), phase, uri, str(round_)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True).start()
    target = rng.randint(1, 3)
    begun = 0
    pending: str | None = None
    deadline = time.monotonic() + 120
    try:
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"the writer exited early (code {process.wait()})")
            pending = _note(line, ledger, pending)
            if line.startswith(f"BEGIN {phase}"):
                begun += 1
                if begun == target:
                    time.sleep(rng.uniform(0, _TYPICAL_SECONDS[phase]))
                    process.send_signal(signal.SIGKILL)
                    break
    finally:
        process.kill()
        process.wait(timeout=30)
    last = line
    while (line := lines.get(timeout=30)) is not None:  # what it printed before dying
        pending = _note(line, ledger, pending)
        last = line
    if pending is not None:
        ledger.in_flight.add(pending)
    assert process.returncode == -signal.SIGKILL
    if last == "BEGIN cleanup":
        ledger.cleanup_interrupted = True
    return last.startswith(f"BEGIN {phase}")  # it died inside the operation


def _note(line: str, ledger: Ledger, pending: str | None) -> str | None:
    parts = line.split()
    if parts[:2] == ["BEGIN", "add"]:
        return parts[2]
    if parts[:1] == ["COMMITTED"]:
        ledger.committed[parts[1]] = (int(parts[2]), int(parts[3]))
        return None
    return pending


def _verify(uri: str, ledger: Ledger, probe: int) -> None:
    """The checks after every kill (they raise on the first problem)."""
    store = ContextStore.open(uri, embedder=None)
    everything = store.records()
    counts = Counter(r.id for r in everything)
    batches: dict[str, list[ContextRecord]] = defaultdict(list)
    for record in everything:
        if "batch" in record.metadata:
            batches[record.metadata["batch"]].append(record)
    lost = [b for b in ledger.committed if b not in batches]
    partial = [
        b
        for b, rs in batches.items()
        if sorted(r.metadata["i"] for r in rs) != list(range(rs[0].metadata["n"]))
    ]
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    unexpected = [b for b in batches if b not in ledger.committed and b not in ledger.in_flight]
    TALLY.add(
        writes_lost=sum(ledger.committed[b][0] for b in lost),
        partial_batches=len(partial),
        writes_duplicated=duplicated,
    )
    assert lost == [], f"acknowledged batches missing after a crash: {lost}"
    assert partial == [], f"partial batches after a crash: {partial}"
    assert duplicated == 0
    assert unexpected == [], unexpected
    _check_versions(store, ledger)
    # and it accepts new writes
    record = ContextRecord(id=f"probe-{probe}", run_id="probe", text_payload="after the crash")
    store.add(record)
    assert store.get(record.id) == record


def _unreadable(store: ContextStore, versions: list[int]) -> list[int]:
    broken = []
    for version in versions:
        try:
            store.at_version(version).records()  # reads the data files, not just the manifest
        except VersionNotFoundError:
            broken.append(version)
    return broken


def _check_versions(store: ContextStore, ledger: Ledger) -> None:
    """Every listed version reads, except versions an interrupted cleanup was removing.

    Lance's cleanup deletes the old versions' data files first and their manifests last,
    so a kill in between leaves those versions listed without their data: reading one
    raises VersionNotFoundError, and the next cleanup finishes the job. The versions
    cleanup keeps (the newest two here) must always read.
    """
    listed = sorted(info.version for info in store.versions())
    assert store.version() == listed[-1]
    # only cleanup removes data, so older versions read last round still read, unless a
    # cleanup was cut short since
    broken = _unreadable(store, listed if ledger.cleanup_interrupted else listed[-20:])
    if broken:
        assert ledger.cleanup_interrupted, f"versions {broken} lost their data outside a cleanup"
        assert max(broken) < listed[-2], f"a version cleanup keeps lost its data: {broken} of {listed}"
        store.cleanup(older_than=timedelta(0), keep_versions=2)
        listed = sorted(info.version for info in store.versions())
        assert _unreadable(store, listed) == []
    ledger.cleanup_interrupted = False  # every leftover was just found and removed
    for batch, (size, version) in ledger.committed.items():
        if version in listed and version >= listed[-1] - 15:  # acknowledged versions hold their batch
            assert store.at_version(version).count(where={"metadata.batch": batch}) == size


def test_sigkill_during_add_compaction_and_cleanup(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    ContextStore.open(uri, embedder=None)
    rng = random.Random(7)
    ledger = Ledger()
    rounds = [
        phase for _ in range(scale.current().kills_per_phase) for phase in ("add", "compact", "cleanup")
    ]
    mid_operation: Counter[str] = Counter()
    for round_, phase in enumerate(rounds):
        acknowledged_before = sum(size for size, _ in ledger.committed.values())
        if _kill_during(phase, uri, round_, rng, ledger):
            mid_operation[phase] += 1
            TALLY.add(crashes_mid_operation=1)
        TALLY.add(crashes=1)
        acknowledged = sum(size for size, _ in ledger.committed.values())
        TALLY.add(
            writes_attempted=acknowledged - acknowledged_before,
            writes_committed=acknowledged - acknowledged_before,
        )
        _verify(uri, ledger, round_)
        TALLY.add(crashes_survived=1)
    # the kills really landed inside the operations, not only between them
    assert sum(mid_operation.values()) >= len(rounds) // 3, mid_operation


def _create_and_write(uri: str) -> subprocess.Popen[str]:
    code = (
        "import sys\n"
        "from lance_context import ContextRecord, ContextStore\n"
        "store = ContextStore.open(sys.argv[1], embedder=None)\n"
        "store.add(ContextRecord(id='first', run_id='s', text_payload='first'))\n"
        "print('COMMITTED', flush=True)\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, uri], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )


def test_sigkill_while_creating_a_store(tmp_path: Path) -> None:
    """A process killed while it creates a store leaves a path that opens (or is created again)."""
    rng = random.Random(11)
    started = time.monotonic()
    _create_and_write(str(tmp_path / "timing")).communicate(timeout=60)
    full = time.monotonic() - started  # how long creating and writing takes here
    for attempt in range(max(3, scale.current().kills_per_phase)):
        uri = str(tmp_path / f"store-{attempt}")
        process = _create_and_write(uri)
        time.sleep(rng.uniform(0.3, 1.0) * full)
        process.send_signal(signal.SIGKILL)
        out, _ = process.communicate(timeout=30)
        TALLY.add(crashes=1, crashes_mid_operation=int("COMMITTED" not in out))
        store = ContextStore.open(uri, embedder=None)
        found = [r.id for r in store.records()]
        if "COMMITTED" in out:
            assert found == ["first"]
        else:
            assert found in ([], ["first"])
        store.add(ContextRecord(id="after", run_id="s", text_payload="after the crash"))
        assert store.get("after") is not None
        TALLY.add(crashes_survived=1)


def test_a_cleanup_cut_short_leaves_clear_errors_and_heals(tmp_path: Path) -> None:
    """The state a kill between cleanup's two steps leaves, made on purpose.

    Cleanup deletes old data files, then old manifests. Putting the manifests back after
    a full cleanup gives exactly the state of a kill between the two.
    """
    uri = tmp_path / "store"
    store = ContextStore.open(str(uri), embedder=None)
    for i in range(4):
        store.add(ContextRecord(id=f"r{i}", run_id="s", text_payload=f"m{i}"))
    old = store.version()  # its data files are merged away by the compaction below
    store.compact()
    manifests = {p: p.read_bytes() for p in (uri / "_versions").iterdir()}
    store.cleanup(older_than=timedelta(0), keep_versions=1)
    for path, content in manifests.items():
        path.write_bytes(content)
    # as a restarted process opens it: Lance's caches of this process (which still hold the
    # removed files' data) are not shared with a store opened with other cache settings
    reopened = ContextStore.open(str(uri), embedder=None, caches=CachePolicy(metadata_bytes=2**20))
    assert old in {v.version for v in reopened.versions()}  # listed again...
    with pytest.raises(VersionNotFoundError):  # ...but its data is gone: a clear error
        reopened.at_version(old).records()
    assert [r.id for r in reopened.records()] == ["r0", "r1", "r2", "r3"]  # the latest is whole
    reopened.add(ContextRecord(id="r4", run_id="s", text_payload="m4"))
    reopened.cleanup(older_than=timedelta(0), keep_versions=2)  # the next cleanup finishes
    assert _unreadable(reopened, [v.version for v in reopened.versions()]) == []
