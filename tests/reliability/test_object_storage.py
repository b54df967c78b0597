"""``s3://`` stores against a real S3-protocol server (moto, on 127.0.0.1).

- the core store operations work there;
- the server going away mid-operation gives a clear error in bounded time, corrupts
  nothing, and the store works again when the server is back;
- no credential from ``storage_options`` is written into the bucket, the logs or an
  error message.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from lance_context import (
    ContextRecord,
    ContextStore,
    HashingEmbedder,
    InvalidFilterError,
    LanceContextError,
    StorageUnavailableError,
    VersionNotFoundError,
)

from ._net import ReplyLosingLink, StallableLink
from .report import TALLY

pytestmark = pytest.mark.reliability


def _message(session: str, i: int, **metadata: Any) -> ContextRecord:
    return ContextRecord(
        run_id=session,
        role="user",
        text_payload=f"{session} note {i} about paris",
        metadata={"i": i, **metadata},
    )


def test_core_store_operations_on_s3(s3_bucket: Any) -> None:
    store = ContextStore.open(
        s3_bucket.uri("core"), storage_options=s3_bucket.storage_options, embedder=HashingEmbedder(16)
    )
    first = store.add([_message("a", i) for i in range(3)])
    store.add([_message("b", i) for i in range(2)])
    store.add(
        ContextRecord(
            run_id="a",
            role="assistant",
            text_payload="the louvre opens at nine",
            metadata={"topic": "museum"},
        )
    )
    # reads
    assert [r.metadata["i"] for r in store.records("a", roles="user")] == [0, 1, 2]
    assert store.count() == 6 and store.run_ids() == ["a", "b"]
    assert store.records(where={"topic": "museum"})[0].text == "the louvre opens at nine"
    some = store.records("b")[0]
    assert store.get(some.id) == some and store.get_many([some.id, "missing"]) == [some]
    # search, every mode, scoped to a session
    for mode in ("vector", "text", "hybrid"):
        hits = store.search("louvre museum", k=3, run_id="a", mode=mode)
        assert hits and all(h.record.run_id == "a" for h in hits)
    assert store.search("louvre museum", k=1, mode="text")[0].record.text == "the louvre opens at nine"
    # versions, tags, time travel, diff, restore
    store.tag("before-upsert", first)
    store.upsert(ContextRecord(id=some.id, run_id="b", text_payload="edited"))
    assert store.get(some.id).text == "edited"
    assert store.at_version("before-upsert").count() == 3
    assert store.tags() == {"before-upsert": first}
    changes = store.diff(first)  # the replaced record never existed at `first`: only additions
    assert sorted(r.text for r in changes.added) == sorted(
        ["b note 1 about paris", "the louvre opens at nine", "edited"]
    )
    assert changes.removed == []
    # branches
    branch = store.branch("experiment")
    branch.add(_message("c", 0))
    assert store.count("c") == 0 and branch.count("c") == 1
    assert store.branches() == ["main", "experiment"]
    # delete, compaction, cleanup, and the store still reads the same
    store.delete(run_id="b")
    before = [r.id for r in store.records()]
    store.compact()
    assert [r.id for r in store.records()] == before
    store.cleanup(older_than=timedelta(0), keep_versions=1)
    assert [r.id for r in store.records()] == before
    assert store.at_version("before-upsert").count() == 3  # tagged: kept by cleanup
    restored = store.restore("before-upsert")
    assert restored == store.version() and store.count() == 3
    reopened = ContextStore.open(s3_bucket.uri("core"), storage_options=s3_bucket.storage_options)
    assert reopened.embedder is not None and reopened.embedder.name == "hashing"
    assert [r.id for r in reopened.records()] == [r.id for r in store.records()]


def _writer(store: ContextStore, acknowledged: list[str], outcome: dict[str, Any]) -> None:
    """Append until an error; remember what was acknowledged and what was in flight."""
    step = 0
    while True:
        step += 1
        batch = [_message("w", step * 10 + i, batch=step, n=3) for i in range(3)]
        outcome["in_flight"] = [r.id for r in batch]
        try:
            store.add(batch)
        except BaseException as exc:
            outcome["error"] = exc
            outcome["failed_at"] = time.monotonic()
            return
        acknowledged.extend(r.id for r in batch)
        outcome["in_flight"] = []


def _within(seconds: float, fn: Callable[[], Any]) -> tuple[BaseException | None, float]:
    """Run ``fn`` in a thread; fail the test if it has not returned or raised in time."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            result["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the operation hung for more than {seconds}s"
    return result.get("error"), time.monotonic() - started


def _check_recovered(store: ContextStore, acknowledged: list[str], in_flight: list[str]) -> None:
    found = Counter(r.id for r in store.records())
    lost = [i for i in acknowledged if i not in found]
    duplicated = sum(n - 1 for n in found.values() if n > 1)
    partial = 0 < sum(1 for i in in_flight if i in found) < len(in_flight)
    TALLY.add(writes_lost=len(lost), writes_duplicated=duplicated, partial_batches=int(partial))
    assert lost == [] and duplicated == 0 and not partial
    assert set(found) <= set(acknowledged) | set(in_flight)
    record = _message("after", 0)
    store.add(record)
    found_again = store.get(record.id)
    assert found_again is not None and found_again.text == record.text


def test_server_killed_mid_operation_then_back(new_moto_server: Callable[..., Any]) -> None:
    """moto is terminated while a writer appends, then restarted from its request journal."""
    server = new_moto_server(journal=True)
    bucket = server.bucket()
    options, uri = bucket.storage_options, bucket.uri("store")
    store = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(16))
    acknowledged: list[str] = []
    outcome: dict[str, Any] = {"in_flight": []}
    writer = threading.Thread(target=_writer, args=(store, acknowledged, outcome), daemon=True)
    writer.start()
    while len(acknowledged) < 15 and writer.is_alive():
        time.sleep(0.01)
    time.sleep(random.Random(3).uniform(0, 0.05))
    server.stop()  # mid-operation: the writer appends all the time
    went_away = time.monotonic()
    TALLY.add(outages=1)
    writer.join(60)
    assert not writer.is_alive(), "the writer hung after the server went away"
    TALLY.add(writes_attempted=len(acknowledged) + 3, writes_committed=len(acknowledged), writes_refused=3)
    assert isinstance(outcome["error"], StorageUnavailableError), repr(outcome["error"])
    assert "storage did not answer" in str(outcome["error"])
    assert outcome["failed_at"] - went_away < 30
    # while it is down every call fails the same clear way, in bounded time
    for call in (lambda: store.records("w"), lambda: ContextStore.open(uri, storage_options=options)):
        error, elapsed = _within(60, call)
        assert isinstance(error, StorageUnavailableError), repr(error)
        assert elapsed < 30
    # the server comes back with its data: moto replays the requests it had received
    server.start()
    server.replay()
    _check_recovered(store, acknowledged, outcome["in_flight"])
    reopened = ContextStore.open(uri, storage_options=options)
    assert [r.id for r in reopened.records()] == [r.id for r in store.records()]
    TALLY.add(outages_survived=1)


@pytest.mark.long_only  # 18 s of timeouts; test_server_killed_mid_operation_then_back covers outages in make test
def test_stalled_link_times_out_then_recovers(s3_bucket: Any, moto_server: Any) -> None:
    """A server that accepts connections but never answers: the timeout ends the call."""
    link = StallableLink(moto_server.port)
    try:
        options = s3_bucket.options(
            link.endpoint,
            timeout="1s",
            connect_timeout="1s",
            client_max_retries="0",
            client_retry_timeout="2",
        )
        store = ContextStore.open(
            s3_bucket.uri("stall"), storage_options=options, embedder=HashingEmbedder(16)
        )
        first = [_message("w", i) for i in range(3)]
        store.add(first)
        acknowledged = [r.id for r in first]
        link.stall()
        TALLY.add(outages=1)
        in_flight = [_message("w", i, batch=1) for i in range(3)]
        # with timeout=1s and no retries Lance gives up after about six silent requests
        for call in (lambda: store.add(in_flight), lambda: store.records("w")):
            error, elapsed = _within(120, call)
            assert isinstance(error, StorageUnavailableError), repr(error)
            assert elapsed < 30
        link.resume()
        _check_recovered(store, acknowledged, [r.id for r in in_flight])
        TALLY.add(outages_survived=1)
    finally:
        link.close()


def test_a_commit_whose_answer_is_lost_lands_once(s3_bucket: Any, moto_server: Any) -> None:
    """The server commits a version, the answer never arrives: neither lost nor done twice.

    The client retries the request, finds the version taken, and must recognise its own
    commit: an append that counted it as another writer's would append its rows again,
    and a merge that counted itself as lost would delete the files of its own version.
    Upserts and deletes are checked the same way.
    """
    link = ReplyLosingLink(moto_server.port, rb"PUT /[^ ]*/_versions/[^ ]*\.manifest")
    try:
        options = s3_bucket.options(link.endpoint)
        store = ContextStore.open(s3_bucket.uri("lost"), storage_options=options, embedder=None)
        store.add(_message("s", 0))
        link.armed.set()
        store.add(_message("s", 1))
        assert len(link.lost) == 1
        for i in range(2, 6):
            store.add(_message("s", i))
        link.armed.set()
        store.compact()
        assert len(link.lost) == 2
        fresh = ContextStore.open(s3_bucket.uri("lost"), storage_options=s3_bucket.storage_options)
        assert [r.metadata["i"] for r in fresh.records("s")] == list(range(6))
        assert [v.operation for v in fresh.versions()].count("compact") == 1
        for version in fresh.versions():  # every version still reads: no file of one was deleted
            assert fresh.at_version(version.version).count() == min(version.version - 1, 6)
        first, second = fresh.records("s")[:2]
        link.armed.set()  # an upsert and a delete are merges of rows: neither may happen twice
        store.upsert(
            ContextRecord(id=first.id, run_id="s", role="user", text_payload="changed", metadata={"i": 0})
        )
        link.armed.set()
        store.delete(ids=[second.id])
        assert len(link.lost) == 4
        TALLY.add(writes_attempted=8, writes_committed=8)
        after = [(r.metadata["i"], r.text) for r in fresh.records("s")]  # an upserted record moves last
        assert after == [(i, f"s note {i} about paris") for i in range(2, 6)] + [(0, "changed")]
    finally:
        link.close()


def _everything_said(errors: list[BaseException]) -> str:
    return "\n".join("".join(traceback.format_exception(e)) + repr(e) for e in errors)


def test_no_secret_is_written_logged_or_shown(
    s3_bucket: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [s3_bucket.access_key_id, s3_bucket.secret_access_key]
    options = s3_bucket.storage_options
    store = ContextStore.open(s3_bucket.uri("secrets"), storage_options=options, embedder=HashingEmbedder(16))
    store.add([_message("s", i) for i in range(5)])
    store.tag("t1")
    store.branch("b1").add(_message("s", 9))
    store.upsert(_message("s", 10))
    store.search("paris", k=2, mode="hybrid")
    store.compact()
    store.delete(run_id="nobody")
    store.cleanup(older_than=timedelta(0))
    errors: list[BaseException] = []
    attempts: list[Callable[[], Any]] = [
        lambda: store.at_version(999),
        lambda: store.checkout("no-such-tag"),
        lambda: store.checkout_branch("no-such-branch"),
        lambda: store.records(where={"metadata.x": {"$regex": "."}}),
        lambda: store.add(ContextRecord(run_id="s", text_payload="x", embedding=np.ones(3, np.float32))),
        lambda: ContextStore.open(
            s3_bucket.uri_prefix + "-missing/x", storage_options=options, read_only=True
        ),
        lambda: ContextStore.open(
            s3_bucket.uri("secrets"),
            storage_options=s3_bucket.options("http://127.0.0.1:9", client_max_retries="0"),
        ),
    ]
    for attempt in attempts:
        try:
            attempt()
        except (LanceContextError, InvalidFilterError, VersionNotFoundError) as exc:
            errors.append(exc)
    assert len(errors) == len(attempts)
    # logs first: the boto3 client that reads the bucket below logs its own signed headers
    logged = "\n".join(r.getMessage() for r in caplog.records).encode()
    printed = "".join(capfd.readouterr()).encode()
    objects = s3_bucket.objects()
    assert len(objects) > 10, "the store wrote almost nothing to the bucket?"
    places = {
        "dataset files": b"\n".join(objects.values()),
        "log records": logged,
        "stdout and stderr": printed,
        "error messages and tracebacks": _everything_said(errors).encode(),
        "store repr": repr(store).encode(),
    }
    leaks = [(where, s) for where, blob in places.items() for s in secrets if s.encode() in blob]
    TALLY.add(leak_checks=len(places) * len(secrets), leaks_found=len(leaks))
    assert leaks == []
