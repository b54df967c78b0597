"""The command line against a store on a real S3-protocol server (moto), reached with -o options."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from lance_context import ContextRecord, ContextStore, HashingEmbedder

from ..conftest import S3Bucket
from ._stores import png
from .conftest import run_cli, run_many


def _options(bucket: S3Bucket) -> list[str]:
    return [arg for key, value in bucket.storage_options.items() for arg in ("-o", f"{key}={value}")]


def test_cli_reads_and_writes_a_store_on_s3(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    # real subprocesses: export and import's entry point, and a second process sees the store on S3
    uri = s3_bucket.uri("memory")
    store = ContextStore.open(uri, storage_options=s3_bucket.storage_options, embedder=HashingEmbedder(16))
    store.add(
        [
            ContextRecord.from_content("Pack light for Lisbon", role="user", run_id="trip"),
            ContextRecord.from_content(png(), role="user", run_id="trip", content_type="image/png"),
        ]
    )
    store.tag("packed")
    store.add(ContextRecord.from_content("Bring a rain jacket", role="assistant", run_id="trip"))
    store.branch("alt", from_version="packed").add(ContextRecord.from_content("Go to Porto", run_id="trip"))
    opts = _options(s3_bucket)
    out = tmp_path / "trip.parquet"
    info, sessions, log, show, diff, search, export = run_many(
        ["info", uri, *opts, "--json"],
        ["sessions", uri, *opts, "--json"],
        ["log", uri, *opts, "--json"],
        ["show", uri, "trip", *opts],
        ["diff", uri, "packed", "alt", *opts, "--json"],
        ["search", uri, "rain jacket", "--mode", "hybrid", *opts, "--json"],
        ["export", uri, str(out), *opts],
    )
    assert info.json()["records"] == 3 and info.json()["branches"]["alt"]["version"] == store.tags()["packed"]
    assert info.json()["disk_bytes"] > 0
    assert [s["run_id"] for s in sessions.json()] == ["trip"]
    assert log.json()[0]["added"] == 1 and log.json()[0]["sessions"] == ["trip"]
    assert "Bring a rain jacket" in show.out and "<image/png 2x2, " in show.out
    assert [r["text"] for r in diff.json()["sessions"][0]["added"]] == ["Go to Porto"]
    assert search.json()["hits"][0]["text"] == "Bring a rain jacket"
    assert export.code == 0 and "exported 3 records" in export.out
    tagged = run_cli("tag", uri, "answered", *opts)
    assert tagged.code == 0 and store.tags()["answered"] == store.version()
    copy = s3_bucket.uri("copy")
    imported = run_cli("import", copy, str(out), *opts)
    assert imported.code == 0
    assert ContextStore.open(copy, storage_options=s3_bucket.storage_options, read_only=True).count() == 3
    missing = run_cli("info", s3_bucket.uri("nothing"), *opts)
    assert missing.code == 1 and len(missing.err.strip().splitlines()) == 1
    secret = s3_bucket.secret_access_key
    for result in (info, sessions, log, show, diff, search, export, tagged, imported, missing):
        assert secret not in result.out and secret not in result.err


def test_inspector_serves_a_store_on_s3(s3_bucket: S3Bucket) -> None:
    from ..inspector.conftest import serve

    uri = s3_bucket.uri("served")
    store = ContextStore.open(uri, storage_options=s3_bucket.storage_options, embedder=HashingEmbedder(16))
    store.add(
        [
            ContextRecord.from_content("Pack light for Lisbon", role="user", run_id="trip"),
            ContextRecord.from_content(png(), role="user", run_id="trip", content_type="image/png"),
        ]
    )
    store.tag("packed")
    store.add(ContextRecord.from_content("Bring a rain jacket", role="assistant", run_id="trip"))
    server = serve(uri, *_options(s3_bucket))
    try:
        pages = {
            path: urllib.request.urlopen(server.url + path).read().decode()
            for path in (
                "/timeline",
                "/sessions",
                "/session?run=trip",
                "/diff?a=packed",
                "/search?q=rain+jacket&mode=hybrid",
                "/session?run=trip&at=packed",
            )
        }
    finally:
        server.stop()
    assert "packed" in pages["/timeline"] and "trip" in pages["/sessions"]
    assert (
        "Bring a rain jacket" in pages["/session?run=trip"]
        and "/binary?record=" in pages["/session?run=trip"]
    )
    assert (
        "Bring a rain jacket" in pages["/diff?a=packed"]
        and "Bring a rain jacket" in pages["/search?q=rain+jacket&mode=hybrid"]
    )
    assert "Bring a rain jacket" not in pages["/session?run=trip&at=packed"]
    assert all(s3_bucket.secret_access_key not in html for html in pages.values())
