"""How many object-store requests the hot paths make, counted on a real S3 server's request journal.

On S3 every request is a round trip (and a charge). One ``add()`` of one record used
to make 31 (27 of them probes for newer versions); it now resolves the latest version
once (one LIST), opens a private copy of it to commit on (one HEAD; the manifest comes
from the shared cache) and commits through Lance's transaction API.

``versions()`` read every manifest twice and its transaction once more (about 4 requests
per version, every call: 95 for 23 versions); it now lists the versions once and reads
each version's manifest, transaction included, once per process (48 cold, 3 after).
Opening a store made 4 LISTs and a GET; the open now takes the dataset its "is there a
store?" probe opened, and reads its schema (embedder, encryption marker) from it instead
of looking for newer versions twice more: one LIST in all.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lance_context import CachePolicy, ContextRecord, ContextStore, EncryptionPolicy, HashingEmbedder


def _journal(server: Any) -> Path:
    path = server.record_to
    assert path is not None
    return Path(path)


def _requests(server: Any, action: Callable[[], object]) -> Counter[str]:
    journal = _journal(server)
    before = len(journal.read_text().splitlines())
    action()
    lines = journal.read_text().splitlines()[before:]
    kinds: Counter[str] = Counter()
    for line in lines:
        entry = json.loads(line)
        path = entry.get("url", "").split("?")[0]
        kinds[f"{entry.get('method')} {path.rsplit('/', 2)[-2] if path.count('/') > 3 else 'bucket'}"] += 1
    return kinds


def test_one_add_makes_at_most_six_requests(new_moto_server: Any) -> None:
    server = new_moto_server(journal=True)
    bucket = server.bucket()
    store = ContextStore.open(
        bucket.uri("s"), storage_options=bucket.storage_options, embedder=HashingEmbedder(16)
    )
    for i in range(3):  # past creation and the first writes
        store.add(ContextRecord.from_content(f"warm-up {i}", run_id="chat"))
    made = _requests(server, lambda: store.add(ContextRecord.from_content("hello", run_id="chat")))
    assert sum(made.values()) <= 6, made
    assert made["PUT data"] == 1 and made["PUT _versions"] == 1  # one data file, one manifest
    assert made["HEAD _versions"] <= 1, "one look at the version written on, no missing-version probes"
    assert store.records("chat", last=1)[0].text == "hello"


def test_a_read_that_found_nothing_new_lists_the_manifests_once(new_moto_server: Any) -> None:
    server = new_moto_server(journal=True)
    bucket = server.bucket()
    store = ContextStore.open(bucket.uri("s"), storage_options=bucket.storage_options, embedder=None)
    store.add([ContextRecord.from_content(f"m{i}", run_id="chat") for i in range(20)])
    store.records("chat", last=5)
    made = _requests(server, lambda: store.records("chat", last=5))
    assert made["GET bucket"] == 1, made  # the LIST that finds no newer version
    assert made["HEAD _versions"] == 0


def _cold(store: ContextStore, **options: Any) -> ContextStore:
    """The same store through a Lance session of its own (nothing of it cached yet)."""
    return ContextStore.open(
        store.uri,
        storage_options=store.storage_options,
        caches=CachePolicy(metadata_bytes=2**20 + 1),
        **options,
    )


def test_versions_read_each_version_once_per_process(new_moto_server: Any) -> None:
    server = new_moto_server(journal=True)
    bucket = server.bucket()
    store = ContextStore.open(bucket.uri("s"), storage_options=bucket.storage_options, embedder=None)
    for i in range(12):
        store.add(ContextRecord.from_content(f"m{i}", run_id="chat"))
    store.tag("first", 3)
    reader = _cold(store)
    made = _requests(server, lambda: reader.versions())
    # 13 versions (32 measured): a LIST each for the latest version, the tags and the
    # manifests, the tag's file, then one HEAD and one GET per version (it was about 4 per version)
    assert sum(made.values()) <= 2 * 13 + 8, made
    assert made["GET bucket"] <= 3, made
    made = _requests(server, lambda: reader.versions())
    assert made["GET bucket"] <= 3 and made["HEAD _versions"] + made["GET _versions"] == 0, (
        made
    )  # 3 LISTs, the tag
    assert sum(made.values()) <= 5, made
    made = _requests(server, lambda: _cold(store).versions())  # another handle in this process
    assert made["HEAD _versions"] + made["GET _versions"] <= 1, made
    assert [(v.version, v.operation, v.tags) for v in reader.versions()][:3] == [
        (1, "create", ()),
        (2, "add", ()),
        (3, "add", ("first",)),
    ]


def test_what_other_writers_commits_changed_is_read_once_per_process(new_moto_server: Any) -> None:
    server = new_moto_server(journal=True)
    bucket = server.bucket()
    writer = ContextStore.open(bucket.uri("s"), storage_options=bucket.storage_options, embedder=None)
    start = writer.add(ContextRecord.from_content("m", run_id="a"))
    for i in range(5):
        writer.add(ContextRecord.from_content(f"m{i}", run_id=f"s{i}"))
    end = writer.version()
    reader = _cold(writer)
    made = _requests(server, lambda: reader.changes_between(start, end))
    assert sum(made.values()) <= 2 * 5 + 2, made  # a HEAD and a GET per commit, a LIST or two
    made = _requests(server, lambda: reader.changes_between(start, end))
    assert made["HEAD _versions"] + made["GET _versions"] == 0, made
    assert reader.changes_between(start, end) == writer.changes_between(start, end)


def test_opening_an_existing_store_lists_its_manifests_once(new_moto_server: Any) -> None:
    server = new_moto_server(journal=True)
    bucket = server.bucket()
    uri, options = bucket.uri("s"), bucket.storage_options
    ContextStore.open(uri, storage_options=options, embedder=None).add(
        ContextRecord.from_content("m", run_id="c")
    )
    made = _requests(server, lambda: ContextStore.open(uri, storage_options=options))
    # the probe's listing, reused by the open (it used to list 4 times, then 3); the
    # manifest itself comes from the session's cache
    assert made["GET bucket"] == 1 and sum(made.values()) == 1, made
    made = _requests(server, lambda: _cold(ContextStore.open(uri, storage_options=options)))
    assert made["GET bucket"] <= 1 + 2 and made["GET _versions"] <= 1, (
        made
    )  # a session of its own: the probe's session is not reused, so it lists again (it was 3 + 4)


def test_opening_an_encrypted_store_lists_its_manifests_once(new_moto_server: Any) -> None:
    server = new_moto_server(journal=True)
    bucket = server.bucket()
    uri, options = bucket.uri("s"), bucket.storage_options
    policy = EncryptionPolicy(key=b"k" * 32)
    ContextStore.open(uri, storage_options=options, embedder=None, encryption=policy).add(
        ContextRecord.from_content("sealed", run_id="c")
    )
    made = _requests(server, lambda: ContextStore.open(uri, storage_options=options, encryption=policy))
    assert sum(made.values()) == 1, made  # the key is checked on the schema the open read (it was 3 LISTs)


def test_forget_lists_version_numbers_without_reading_each_manifest(new_moto_server: Any) -> None:
    server = new_moto_server(journal=True)
    bucket = server.bucket()
    store = ContextStore.open(
        bucket.uri("s"), storage_options=bucket.storage_options, embedder=HashingEmbedder(8)
    )
    for i in range(12):
        store.add(ContextRecord.from_content(f"m{i}", run_id="chat", id=f"r{i}"))
    made = _requests(server, lambda: store.forget(["r3"]))
    # 64 manifest reads when the versions were listed with versions() (a GET of every
    # manifest, three times); the rest read each version's files once, to find the copies
    assert made["GET _versions"] <= 42, made
    assert store.get("r3") is None and store.get("r4") is not None


def test_exporting_a_branch_from_s3_copies_its_rows_once(new_moto_server: Any) -> None:
    server = new_moto_server(journal=True)
    bucket = server.bucket()
    store = ContextStore.open(
        bucket.uri("s"), storage_options=bucket.storage_options, embedder=HashingEmbedder(8)
    )
    store.add([ContextRecord.from_content(f"m{i}", run_id="chat") for i in range(5)])
    store.branch("draft").add(ContextRecord.from_content("b", run_id="chat"))
    made = _requests(
        server,
        lambda: store.export(bucket.uri("copy"), branch="draft", storage_options=bucket.storage_options),
    )
    assert made["PUT data"] <= 1, made  # one data file holds the version's rows
    assert sum(made.values()) <= 60, made
