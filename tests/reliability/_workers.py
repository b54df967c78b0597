"""Code that runs in writer processes started with the ``spawn`` method.

Lance is not fork-safe, so every writer process is spawned: it imports this module fresh
and opens its own store. Results travel back through a queue as plain dicts.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any

DIMENSION = 16
BATCH_EVERY = 10
"""Every tenth ``add()`` of a writer carries a batch of three records instead of one."""


def writer_records(writer: str, start: int, size: int) -> list[Any]:
    """The records of one ``add()``: ids and metadata say who wrote them and in what order."""
    from lance_context import ContextRecord

    return [
        ContextRecord(
            id=f"{writer}-{i}",
            run_id=writer,
            role="user" if i % 2 else "assistant",
            text_payload=f"{writer} says message number {i}",
            metadata={"writer": writer, "i": i},
        )
        for i in range(start, start + size)
    ]


def append_worker(
    uri: str,
    storage_options: dict[str, str] | None,
    process: int,
    threads: int,
    appends: int,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """Append from ``threads`` threads sharing one store; report each writer's outcome."""
    from lance_context import CommitConflictError, ContextStore, HashingEmbedder

    try:
        store = ContextStore.open(uri, storage_options=storage_options, embedder=HashingEmbedder(DIMENSION))
    except BaseException:
        ready.put(("error", traceback.format_exc()))
        return
    ready.put(("ready", process))
    go.wait(120)

    def run(thread: int) -> None:
        writer = f"p{process}-t{thread}"
        outcome: dict[str, Any] = {"writer": writer, "committed": [], "refused": [], "errors": []}
        position = 0
        for call in range(appends):
            size = 3 if call % BATCH_EVERY == BATCH_EVERY - 1 else 1
            batch = writer_records(writer, position, size)
            position += size
            try:
                store.add(batch)
                outcome["committed"].extend(r.id for r in batch)
            except CommitConflictError:
                outcome["refused"].append([r.id for r in batch])
            except BaseException:
                outcome["errors"].append(traceback.format_exc())
                break
        results.put(outcome)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def upsert_worker(
    uri: str, process: int, ids: list[str], rounds: int, ready: Any, go: Any, results: Any
) -> None:
    """Upsert the same ids as other processes: real commit conflicts on the same rows."""
    from lance_context import CommitConflictError, ContextRecord, ContextStore, LanceContextError

    store = ContextStore.open(uri, embedder=None)
    ready.put(("ready", process))
    go.wait(120)
    outcome: dict[str, Any] = {"process": process, "committed": 0, "refused": 0, "errors": []}
    for round_ in range(rounds):
        batch = [
            ContextRecord(
                id=i,
                run_id="shared",
                text_payload=f"p{process} r{round_}",
                metadata={"p": process, "r": round_},
            )
            for i in ids
        ]
        try:
            store.upsert(batch)
            outcome["committed"] += 1
        except CommitConflictError:
            outcome["refused"] += 1
        except LanceContextError:
            outcome["errors"].append(traceback.format_exc())
    results.put(outcome)
