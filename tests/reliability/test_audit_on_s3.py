"""Audit findings that need a real S3-protocol server (moto on 127.0.0.1)."""

from __future__ import annotations

import time
import traceback
from datetime import timedelta
from typing import Any

import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder, StorageUnavailableError

from ._net import StallableLink
from .report import TALLY

pytestmark = pytest.mark.reliability


def test_a_writer_idle_across_another_processs_cleanup_writes_again(s3_bucket: Any) -> None:
    uri, options = s3_bucket.uri("idle"), s3_bucket.storage_options
    idle = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(16))
    idle.add([ContextRecord.from_content(f"m{i}", run_id="s", id=f"m{i}") for i in range(3)])
    busy = ContextStore.open(uri, storage_options=options)  # another process's handle
    for i in range(3, 6):
        busy.add(ContextRecord.from_content(f"m{i}", run_id="s", id=f"m{i}"))
    busy.compact()
    time.sleep(1.1)
    busy.cleanup(older_than=timedelta(seconds=1))  # the idle writer's version is gone
    idle.add(ContextRecord.from_content("after the cleanup", run_id="s", id="after"))
    assert [r.id for r in idle.records("s")] == [f"m{i}" for i in range(6)] + ["after"]
    assert [r.id for r in busy.records("s", last=1)] == ["after"]
    TALLY.add(writes_attempted=7, writes_committed=7)


def _everything(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


@pytest.mark.long_only  # 17 s of outage retries: make reliability runs it
def test_a_password_in_the_endpoint_url_never_shows(s3_bucket: Any, moto_server: Any) -> None:
    link = StallableLink(moto_server.port)
    try:
        endpoint = f"http://robert:hunter2-pa55@127.0.0.1:{link.port}"
        options = s3_bucket.options(endpoint, timeout="1s", connect_timeout="1s", client_max_retries="0")
        link.stall()
        with pytest.raises(StorageUnavailableError) as info:
            ContextStore.open(s3_bucket.uri("userinfo"), storage_options=options)
        shown = _everything(info.value)
        assert "hunter2-pa55" not in shown and "robert:" not in shown
        store_uri = f"s3://robert:hunter2-pa55@{s3_bucket.name}/x"
        with pytest.raises(StorageUnavailableError) as again:
            ContextStore.open(store_uri, storage_options=options)
        assert "hunter2-pa55" not in _everything(again.value)
    finally:
        link.close()


def test_an_endpoint_that_is_not_a_url_is_a_clear_error(s3_bucket: Any) -> None:
    options = s3_bucket.options("::not a url::")
    with pytest.raises(StorageUnavailableError, match="endpoint|storage"):
        ContextStore.open(s3_bucket.uri("bad-endpoint"), storage_options=options)


def _stalled_calls(s3_bucket: Any, link: StallableLink, name: str, **options: str) -> list[tuple[str, float, Any]]:
    opts = s3_bucket.options(link.endpoint, **options)
    uri = s3_bucket.uri(name)
    store = ContextStore.open(uri, storage_options=opts, embedder=HashingEmbedder(16))
    store.add(ContextRecord.from_content("before the stall", run_id="s"))
    link.stall()
    outcomes = []
    for label, call in (
        ("records", lambda: store.records("s")),
        ("add", lambda: store.add(ContextRecord.from_content("during", run_id="s"))),
        ("open", lambda: ContextStore.open(uri, storage_options=opts)),
    ):
        started = time.monotonic()
        try:
            call()
            error: Any = None
        except Exception as exc:
            error = exc
        outcomes.append((label, time.monotonic() - started, error))
    link.resume()
    return outcomes


@pytest.mark.long_only  # make reliability only: too slow for make test
def test_a_silent_endpoint_fails_every_call_in_bounded_time(
    s3_bucket: Any, moto_server: Any, reliability_long: bool
) -> None:
    """Bounds: ~7 x timeout when only ``timeout`` is set; under two minutes with the defaults."""
    cases = [("one-second", {"timeout": "1s"}, 15.0)]
    if reliability_long:
        cases = [("two-seconds", {"timeout": "2s"}, 30.0), ("defaults", {}, 120.0)]
    for name, options, bound in cases:
        link = StallableLink(moto_server.port)
        try:
            for label, elapsed, error in _stalled_calls(s3_bucket, link, name, **options):
                assert isinstance(error, StorageUnavailableError), (name, label, repr(error))
                assert elapsed < bound, f"{label} with {options or 'the defaults'} took {elapsed:.1f} s"
                TALLY.add(outages=1, outages_survived=1)
        finally:
            link.close()
