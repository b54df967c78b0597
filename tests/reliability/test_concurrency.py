"""Several processes and threads appending to one store at once, on disk and on S3.

Nothing acknowledged is lost, nothing is duplicated, each writer's order is kept, and a
compaction in the middle changes none of it. Writer processes use the ``spawn`` start
method: Lance is not fork-safe (see ``test_use_after_fork_is_refused``).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import Counter
from typing import Any

import lance
import pytest

from lance_context import (
    CommitConflictError,
    ContextRecord,
    ContextStore,
    ForkSafetyError,
    HashingEmbedder,
)

from . import _workers, scale
from .report import TALLY

pytestmark = pytest.mark.reliability

SPAWN = multiprocessing.get_context("spawn")


def _records_per_thread(appends: int) -> int:
    batches = appends // _workers.BATCH_EVERY
    return appends + 2 * batches


def _compact_while_writing(store: ContextStore, done: threading.Event, seen: list[Any]) -> None:
    """Compact again and again until the writers finish; note each outcome.

    Each entry is the record count before a compaction that committed, ``"conflict"``
    for one that lost to a writer's own compaction (the error says to retry, so we do),
    or the exception that stopped the loop.
    """
    while not done.is_set():
        try:
            before = store.count()
            if before == 0:
                time.sleep(0.02)
                continue
            store.compact()
            seen.append(before)
        except CommitConflictError:
            seen.append("conflict")
        except BaseException as exc:
            seen.append(exc)
            return
        time.sleep(0.05)


def _run_writers(
    uri: str, storage_options: dict[str, str] | None, processes: int, threads: int, appends: int
) -> dict[str, Any]:
    ready, go, results = SPAWN.Queue(), SPAWN.Event(), SPAWN.Queue()
    workers = [
        SPAWN.Process(
            target=_workers.append_worker,
            args=(uri, storage_options, p, threads, appends, ready, go, results),
        )
        for p in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:
            status, detail = ready.get(timeout=120)
            assert status == "ready", detail
        store = ContextStore.open(
            uri, storage_options=storage_options, embedder=HashingEmbedder(_workers.DIMENSION)
        )
        expected = processes * threads * _records_per_thread(appends)
        done = threading.Event()
        compaction_counts: list[Any] = []
        compactor = threading.Thread(target=_compact_while_writing, args=(store, done, compaction_counts))
        go.set()
        compactor.start()
        outcomes = [results.get(timeout=900) for _ in range(processes * threads)]
        done.set()
        compactor.join(timeout=300)
    finally:
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()
    assert [w.exitcode for w in workers] == [0] * processes
    return {"store": store, "outcomes": outcomes, "expected": expected, "compactions": compaction_counts}


def _check_nothing_lost(run: dict[str, Any]) -> None:
    store: ContextStore = run["store"]
    outcomes: list[dict[str, Any]] = run["outcomes"]
    everything = store.records()
    counts = Counter(r.id for r in everything)
    committed = [i for o in outcomes for i in o["committed"]]
    refused = [i for o in outcomes for batch in o["refused"] for i in batch]
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    lost = [i for i in committed if i not in counts]
    half_applied = [i for i in refused if i in counts]
    TALLY.add(
        writes_attempted=len(committed) + len(refused),
        writes_committed=len(committed),
        writes_refused=len(refused),
        writes_lost=len(lost),
        writes_duplicated=duplicated,
        partial_batches=len(half_applied),
    )
    errors = [e for o in outcomes for e in o["errors"]]
    assert not errors, "a writer failed:\n" + errors[0]
    assert lost == []
    assert duplicated == 0
    assert half_applied == [], "a batch refused with CommitConflictError was written"
    assert set(counts) == set(committed)
    for outcome in outcomes:
        # each writer's records come back in the order it wrote them
        assert [r.id for r in store.records(outcome["writer"])] == outcome["committed"]
    assert store.count() == len(committed)
    compactions = run["compactions"]
    assert not [c for c in compactions if isinstance(c, BaseException)], compactions
    assert compactions, "the compactor never ran"
    # A compaction landed while writers were still adding: ours or a writer's own (under
    # load every one of ours can lose to the writers' compactions, which is allowed).
    operations = [v.operation for v in store.versions()]
    last_add = max(i for i, op in enumerate(operations) if op == "add")
    assert "compact" in operations[:last_add], f"no compaction mid-run: {compactions}"


def test_concurrent_processes_and_threads_on_local_disk(tmp_path: Any) -> None:
    sizes = scale.current()
    uri = str(tmp_path / "store")
    ContextStore.open(uri, embedder=HashingEmbedder(_workers.DIMENSION))
    run = _run_writers(uri, None, sizes.processes, sizes.threads, sizes.appends_per_thread)
    _check_nothing_lost(run)
    assert run["store"].run_ids() == sorted(o["writer"] for o in run["outcomes"])


@pytest.mark.long_only  # make test: the local-disk run above and two servers on S3 (test_many_writers_on_s3)
def test_concurrent_processes_and_threads_on_s3(s3_bucket: Any) -> None:
    sizes = scale.current()
    uri = s3_bucket.uri("concurrent")
    ContextStore.open(
        uri, storage_options=s3_bucket.storage_options, embedder=HashingEmbedder(_workers.DIMENSION)
    )
    run = _run_writers(
        uri, s3_bucket.storage_options, sizes.s3_processes, sizes.threads, sizes.s3_appends_per_thread
    )
    _check_nothing_lost(run)


def test_threads_sharing_one_store_keep_their_order(tmp_path: Any) -> None:
    store = ContextStore.open(str(tmp_path / "store"), embedder=None)
    appends = scale.current().appends_per_thread
    committed: dict[str, list[str]] = {}

    def write(writer: str) -> None:
        committed[writer] = []
        for i in range(appends):
            store.add(ContextRecord(id=f"{writer}-{i}", run_id=writer, text_payload=str(i)))
            committed[writer].append(f"{writer}-{i}")

    threads = [threading.Thread(target=write, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sum(len(ids) for ids in committed.values())
    TALLY.add(writes_attempted=total, writes_committed=total)
    for writer, ids in committed.items():
        assert [r.id for r in store.records(writer)] == ids
    assert store.count() == total


def test_concurrent_upserts_of_the_same_ids_never_duplicate(tmp_path: Any) -> None:
    uri = str(tmp_path / "store")
    store = ContextStore.open(uri, embedder=None)
    ids = [f"shared-{i}" for i in range(5)]
    rounds = scale.current().conflicting_upserts
    ready, go, results = SPAWN.Queue(), SPAWN.Event(), SPAWN.Queue()
    workers = [
        SPAWN.Process(target=_workers.upsert_worker, args=(uri, p, ids, rounds, ready, go, results))
        for p in range(4)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=120)
    go.set()
    outcomes = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    found = Counter(r.id for r in store.records())
    duplicated = sum(n - 1 for n in found.values())
    committed = sum(o["committed"] for o in outcomes)
    TALLY.add(
        writes_attempted=len(ids) * rounds * len(workers),
        writes_committed=len(ids) * committed,
        writes_refused=len(ids) * sum(o["refused"] for o in outcomes),
        writes_duplicated=duplicated,
    )
    assert [e for o in outcomes for e in o["errors"]] == []
    assert duplicated == 0, found
    assert set(found) == set(ids)
    # every record holds one writer's whole upsert: all five agree on who wrote last
    assert len({(r.metadata["p"], r.metadata["r"]) for r in store.records()}) == 1


def _conflict(message: str = "Commit conflict for version 7: concurrent Append") -> OSError:
    return OSError(f"LanceError(CommitConflict): {message}, src/io/commit.rs:1:1")


def test_commit_conflicts_are_retried_then_committed_once(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ContextStore.open(str(tmp_path / "store"), embedder=None)
    store.add(ContextRecord(run_id="s", text_payload="first"))
    real_commit = lance.LanceDataset.commit
    failures = {"left": 3}

    def flaky_commit(*args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise _conflict()
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(lance.LanceDataset, "commit", staticmethod(flaky_commit))
    batch = [ContextRecord(run_id="s", text_payload=f"m{i}") for i in range(3)]
    before = store.version()
    version = store.add(batch)
    assert failures["left"] == 0
    assert version == before + 1
    assert [r.text for r in store.records("s")] == ["first", "m0", "m1", "m2"]
    TALLY.add(writes_attempted=3, writes_committed=3)


def test_a_writer_that_cannot_commit_gets_a_clear_error_and_writes_nothing(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ContextStore.open(str(tmp_path / "store"), embedder=None)
    store.add(ContextRecord(run_id="s", text_payload="first"))
    calls = {"n": 0}

    def always_conflicts(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        raise _conflict()

    monkeypatch.setattr(lance.LanceDataset, "commit", staticmethod(always_conflicts))
    before = store.version()
    batch = [ContextRecord(run_id="s", text_payload=f"m{i}") for i in range(3)]
    started = time.monotonic()
    with pytest.raises(CommitConflictError, match="conflicted with another writer") as info:
        store.add(batch)
    elapsed = time.monotonic() - started
    monkeypatch.undo()
    assert "Nothing was written" in str(info.value)
    assert 1 < calls["n"] <= 10, "retries must be bounded"
    assert elapsed < 15, "backoff must be bounded"
    assert store.version() == before
    assert store.get_many([r.id for r in batch]) == []
    TALLY.add(writes_attempted=3, writes_refused=3)


def test_use_after_fork_is_refused(tmp_path: Any) -> None:
    store = ContextStore.open(str(tmp_path / "store"), embedder=None)
    store.add(ContextRecord(run_id="s", text_payload="before fork"))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: touch nothing of Lance beyond the calls that must refuse
        try:
            os.close(read_end)
            outcome = []
            for call in (
                lambda: store.records("s"),
                lambda: store.add(ContextRecord(run_id="s", text_payload="x")),
            ):
                try:
                    call()
                    outcome.append("no error")
                except ForkSafetyError as exc:
                    outcome.append("ForkSafetyError: " + str(exc))
                except BaseException as exc:
                    outcome.append(type(exc).__name__)
            os.write(write_end, "\n".join(outcome).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    lines = b"".join(chunks).decode().splitlines()
    assert len(lines) == 2
    assert all(line.startswith("ForkSafetyError: ") and "spawn" in line for line in lines), lines
    # the parent's store is untouched and still works
    store.add(ContextRecord(run_id="s", text_payload="after fork"))
    assert [r.text for r in store.records("s")] == ["before fork", "after fork"]
