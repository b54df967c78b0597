"""One store object shared by threads: readers and writers never trip over each other."""

from __future__ import annotations

import threading

from lance_context import CompactionPolicy, ContextStore

from .conftest import text


def test_readers_and_writers_share_a_store(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=None, compaction=CompactionPolicy(fanout=2))
    store.add(text("seed", run_id="a", id="seed"))
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                assert store.records("a", last=1)
                store.records("b")  # scans the snapshot appends are committed on
                store.count()
        except BaseException as exc:  # a pyo3 panic is a BaseException
            errors.append(exc)

    def writer(n: int) -> None:
        try:
            for i in range(25):
                store.upsert(text(f"w{n}-{i}", run_id="a", id=f"w{n}-{i % 5}"))
                store.add(text(f"x{n}-{i}", run_id="b"))
                if i % 5 == 4:
                    store.delete(run_id="b")
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert sorted(r.id for r in store.records("a")) == sorted(
        ["seed"] + [f"w{n}-{i}" for n in range(2) for i in range(5)]
    )
    assert store.count("b") == 0
