"""Forgetting, retention, snapshots and encryption on a real S3-protocol server (moto on 127.0.0.1).

Each scenario runs on a ``tmp_path`` store and on a bucket of the session's moto server, and
what a user sees must match; the bucket's raw objects are read back with boto3 to check
that erased or sealed content is in none of them, and that refused calls wrote nothing.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest

from lance_context import (
    ContextRecord,
    ContextStore,
    EncryptionPolicy,
    HashingEmbedder,
    InvalidFilterError,
    KeyMissingError,
    NotAContextStoreError,
    RetentionPolicy,
    StorageAccessError,
    VersionNotFoundError,
    WrongKeyError,
)

from ..conftest import S3Bucket

KEY, NEW_KEY = b"k" * 32, b"n" * 32
SECRET = "SECRET-TEXT on the main branch"
BRANCH_SECRET = "SECRET-TEXT written on the branch"
ALICE = "alice-private-session"


def _record(
    content: str | bytes, run_id: str = "keep", record_id: str | None = None, **fields: Any
) -> ContextRecord:
    named = {} if record_id is None else {"id": record_id}
    return ContextRecord.from_content(content, role="user", run_id=run_id, **named, **fields)


def _holding(objects: dict[str, bytes], *needles: bytes) -> list[str]:
    return sorted(key for key, data in objects.items() if any(needle in data for needle in needles))


def _forget_encrypted(uri: str, options: dict[str, str] | None) -> dict[str, Any]:
    """An encrypted store, a tag on a branch version, forgetting by a clear metadata value."""
    policy = EncryptionPolicy(key=KEY, clear_metadata={"topic"})
    store = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(16), encryption=policy)
    store.add([_record(f"note {i}", record_id=f"n{i}", metadata={"topic": "pub"}) for i in range(3)])
    store.tag("early")
    store.add(_record(SECRET, ALICE, "sec", metadata={"topic": "private"}))
    store.search("note", k=4, record=True)
    branch = store.branch("dev")
    branch.add(_record(BRANCH_SECRET, ALICE, "sec2", metadata={"topic": "private"}))
    branch.tag("on-dev")
    branch.add(_record("after", record_id="after"))
    store.add(_record("late", record_id="late"))
    dry = store.forget(where={"topic": "private"}, dry_run=True)
    report = store.forget(where={"topic": "private"})
    assert report.verification is not None
    dev = ContextStore.open(uri, storage_options=options, branch="dev", encryption=policy)
    return {
        "dry": (dry.records, dry.versions_expired, dry.tags_removed),
        "report": (report.records, report.versions_expired, report.tags_removed, report.searches_removed),
        "verified": (report.verified, report.verification.leaks),
        "tags": (store.tags(), dev.tags()),
        "records": ([r.id for r in store.records()], [r.id for r in dev.records()]),
        "history": {
            v.version: [r.id for r in store.at_version(v.version).records()] for v in store.versions()
        },
        "search log": [e.hits for e in store.search_log()],
    }


def test_forget_on_s3_erases_every_copy_as_on_disk_and_no_object_keeps_it(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    local = _forget_encrypted(str(tmp_path / "store.lance"), None)
    remote = _forget_encrypted(s3_bucket.uri("store"), s3_bucket.storage_options)
    assert remote == local
    assert local["verified"] == (True, ())
    assert local["dry"][0] == 2 and local["report"][2] == {"on-dev": ("dev", local["report"][2]["on-dev"][1])}
    assert local["records"] == (["n0", "n1", "n2", "late"], ["n0", "n1", "n2", "after"])
    assert local["history"][2] == ["n0", "n1", "n2"] and local["tags"][0] == {"early": 2}
    objects = s3_bucket.objects()
    assert not _holding(objects, SECRET.encode(), BRANCH_SECRET.encode(), b"SECRET-TEXT", ALICE.encode())
    assert any(key.startswith("store/tree/dev/") for key in objects)


def _retention(uri: str, options: dict[str, str] | None) -> dict[str, Any]:
    """Retention and cleanup keep tagged versions, a branch's fork point and the branch itself."""
    store = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(16))
    for i in range(4):
        store.add(_record(f"note {i}", record_id=f"n{i}"))
    store.tag("kept", 3)
    branch = store.branch("dev", 4)
    branch.add([_record("b1", record_id="b1"), _record("b2", record_id="b2")])
    for i in range(3):
        store.add(_record(f"late {i}", record_id=f"l{i}"))
    policy = RetentionPolicy(keep_all=timedelta(hours=1), hourly=None, daily=timedelta(hours=1))
    later = datetime.now(timezone.utc) + timedelta(days=3)
    dry = store.apply_retention(policy, now=later, dry_run=True)
    report = store.apply_retention(policy, now=later)
    seen: dict[str, Any] = {
        "dry": dry.removed,
        "removed": (report.removed, report.kept, report.tags_removed),
        "versions": [v.version for v in store.versions()],
        "tagged": [r.id for r in store.at_version("kept").records()],
        "fork": [r.id for r in store.at_version(4).records()],
    }
    store.tag("again")
    store.add([_record("z", record_id="z")])
    store.cleanup(older_than=timedelta(0))
    dev = ContextStore.open(uri, storage_options=options, branch="dev")
    seen["cleanup"] = (
        [v.version for v in store.versions()],
        store.tags(),
        [r.id for r in store.at_version("again").records()],
        [r.id for r in dev.records()],
    )
    return seen


def test_retention_and_cleanup_on_s3_keep_tagged_and_branch_versions(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    local = _retention(str(tmp_path / "store.lance"), None)
    remote = _retention(s3_bucket.uri("store"), s3_bucket.storage_options)
    assert remote == local
    assert local["versions"] == [3, 4, 8] and local["tagged"] == ["n0", "n1"]
    assert local["cleanup"][1] == {"kept": 3, "again": 8}
    assert local["cleanup"][3] == ["n0", "n1", "n2", "b1", "b2"]


def _tagged_branch(uri: str, options: dict[str, str] | None, dest: str) -> tuple[Any, ...]:
    store = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(16))
    store.add([_record(f"note {i}", record_id=f"n{i}") for i in range(3)])
    branch = store.branch("dev")
    branch.add([_record("b", record_id="b")])
    branch.tag("reviewed")
    branch.add([_record("c", record_id="c")])
    report = store.export(dest, tag="reviewed", storage_options=options)
    copy = ContextStore.open(dest, storage_options=options)
    (name, version), = copy.tags().items()  # fmt: skip
    return (report.branch, report.tags, report.records, name, [r.id for r in copy.at_version(name).records()],
            version == copy.version())  # fmt: skip


def test_a_tag_on_a_branch_exports_from_s3_as_from_disk(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    """The copy of an S3 branch is written anew as version 1: the tag must name that version.

    It named the branch's version number instead, which the copy does not have: the export
    failed with VersionNotFoundError after writing the copy, and a retry was refused.
    """
    local = _tagged_branch(str(tmp_path / "src.lance"), None, str(tmp_path / "copy.lance"))
    remote = _tagged_branch(s3_bucket.uri("src"), s3_bucket.storage_options, s3_bucket.uri("copy"))
    assert remote == local
    assert local[:5] == ("dev", ("reviewed",), 4, "reviewed", ["n0", "n1", "n2", "b"]) and local[5]


def test_snapshots_refuse_existing_targets_on_s3_and_write_nothing(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    options = s3_bucket.storage_options
    store = ContextStore.open(s3_bucket.uri("src"), storage_options=options, embedder=HashingEmbedder(8))
    store.add([_record(f"note {i}", record_id=f"n{i}") for i in range(3)])
    store.tag("one")
    ContextStore.open(s3_bucket.uri("other"), storage_options=options, embedder=HashingEmbedder(8)).add(
        _record("someone else's")
    )
    client = boto3.client("s3", endpoint_url=s3_bucket.endpoint, aws_access_key_id=s3_bucket.access_key_id,
                          aws_secret_access_key=s3_bucket.secret_access_key, region_name="us-east-1")  # fmt: skip
    client.put_object(Bucket=s3_bucket.name, Key="reports/q1.csv", Body=b"a,b\n")
    client.put_object(Bucket=s3_bucket.name, Key="notes.txt", Body=b"hi")
    before = s3_bucket.objects()
    refused: list[tuple[Callable[[], object], type[Exception], str]] = [
        (lambda: store.export(s3_bucket.uri("other"), storage_options=options), NotAContextStoreError, "already"),
        (lambda: store.export(s3_bucket.uri("src"), storage_options=options, version=2, history=True),
         NotAContextStoreError, "already holds a store"),
        (lambda: store.export(s3_bucket.uri("reports"), storage_options=options), NotAContextStoreError,
         r"holds other objects \(q1.csv\)"),
        (lambda: store.export(s3_bucket.uri("notes.txt"), storage_options=options), NotAContextStoreError,
         "is an object"),
        (lambda: store.export(s3_bucket.uri("src/copy"), storage_options=options), InvalidFilterError,
         "inside the store's own folder"),
        (lambda: store.export(s3_bucket.uri("copy"), storage_options=options, tag="none"), VersionNotFoundError,
         "no tag named 'none'"),
        (lambda: ContextStore.import_(s3_bucket.uri("src"), s3_bucket.uri("reports"), storage_options=options,
                                      source_storage_options=options), NotAContextStoreError, "other objects"),
        (lambda: ContextStore.import_(s3_bucket.uri("nothing"), s3_bucket.uri("new"), storage_options=options,
                                      source_storage_options=options), NotAContextStoreError, "nothing to import"),
        (lambda: store.export("s3://lc-no-such-bucket/copy", storage_options=options), StorageAccessError,
         "the bucket does not exist"),
        (lambda: ContextStore.import_("s3://lc-no-such-bucket/src", str(tmp_path / "in.lance"),
                                      source_storage_options=options), StorageAccessError, "bucket does not exist"),
    ]  # fmt: skip
    for call, error, says in refused:
        with pytest.raises(error, match=says):
            call()
    assert s3_bucket.objects() == before and not os.listdir(tmp_path)
    # a new prefix takes a snapshot, S3 to S3, with the versions after it and their tags
    report = store.export(s3_bucket.uri("copy"), storage_options=options, version=2, history=True)
    copy = ContextStore.open(s3_bucket.uri("copy"), storage_options=options)
    assert report.tags == ("one",) and copy.tags() == {"one": 2} and copy.count() == 3


def test_encryption_on_s3_writes_no_plaintext_and_refuses_missing_or_wrong_keys(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    uri, options = s3_bucket.uri("enc"), s3_bucket.storage_options
    needles = (SECRET.encode(), b"METADATA-VALUE-4242", b"BINARY-PLAINTEXT-0099")
    store = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(16),
                              encryption=EncryptionPolicy(key=KEY))  # fmt: skip
    store.add([_record(SECRET, ALICE, metadata={"secret": "METADATA-VALUE-4242"}),
               ContextRecord.from_content(b"BINARY-PLAINTEXT-0099", run_id=ALICE, role="tool")])  # fmt: skip
    store.search(SECRET, k=2, record=True)
    store.compact()
    old = store.version()
    store.export(s3_bucket.uri("copy"), storage_options=options)
    store.branch("dev").add(_record(SECRET + " again", ALICE))
    store.export(s3_bucket.uri("dev-copy"), branch="dev", storage_options=options)
    assert not _holding(s3_bucket.objects(), *needles)
    before = s3_bucket.objects()
    for read_only in (True, False):
        with pytest.raises(WrongKeyError, match="nothing was read or written"):
            ContextStore.open(uri, storage_options=options, encryption=EncryptionPolicy(key=NEW_KEY),
                              read_only=read_only)  # fmt: skip
    bare = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(16))
    with pytest.raises(KeyMissingError, match="nothing is written") as missing:
        bare.add(_record("more", ALICE))
    assert missing.value.writing
    with pytest.raises(KeyMissingError):
        bare.rotate_key(EncryptionPolicy(key=NEW_KEY))
    with pytest.raises(KeyMissingError):
        bare.records()
    with pytest.raises(WrongKeyError):
        ContextStore.open(s3_bucket.uri("dev-copy"), storage_options=options,
                          encryption=EncryptionPolicy(key=NEW_KEY))  # fmt: skip
    assert s3_bucket.objects() == before, "refused calls wrote nothing"
    assert [r.text for r in ContextStore.open(s3_bucket.uri("dev-copy"), storage_options=options,
                                              encryption=EncryptionPolicy(key=KEY)).records(ALICE)][-1] == SECRET + " again"  # fmt: skip

    store.rotate_key(EncryptionPolicy(key=NEW_KEY))
    assert not _holding(s3_bucket.objects(), *needles)
    rotated = ContextStore.open(uri, storage_options=options, encryption=EncryptionPolicy(key=NEW_KEY))
    assert rotated.records(ALICE)[0].text == SECRET
    with pytest.raises(WrongKeyError, match="was not given"):
        rotated.at_version(old).records(ALICE)
    both = ContextStore.open(uri, storage_options=options,
                             encryption=EncryptionPolicy(key=NEW_KEY, previous_keys=(KEY,)))  # fmt: skip
    assert both.at_version(old).records(ALICE)[0].text == SECRET


def test_governance_calls_name_a_vanished_bucket_and_wrong_credentials(
    s3_bucket: S3Bucket, tmp_path: Path, iam_bucket: S3Bucket
) -> None:
    store = ContextStore.open(s3_bucket.uri("gone"), storage_options=s3_bucket.storage_options,
                              embedder=HashingEmbedder(8))  # fmt: skip
    store.add(_record("hello", ALICE))
    client = boto3.client("s3", endpoint_url=s3_bucket.endpoint, aws_access_key_id=s3_bucket.access_key_id,
                          aws_secret_access_key=s3_bucket.secret_access_key, region_name="us-east-1")  # fmt: skip
    for key in s3_bucket.objects():
        client.delete_object(Bucket=s3_bucket.name, Key=key)
    client.delete_bucket(Bucket=s3_bucket.name)
    for call in (
        lambda: store.forget(run_id=ALICE),
        lambda: store.apply_retention(),
        lambda: store.export(str(tmp_path / "copy.lance")),
        lambda: store.rotate_key(EncryptionPolicy(key=KEY)),
    ):
        with pytest.raises(StorageAccessError, match="the bucket does not exist"):
            call()
    assert not os.listdir(tmp_path)

    bucket = iam_bucket
    remote = ContextStore.open(
        bucket.uri("s"), storage_options=bucket.storage_options, embedder=HashingEmbedder(8)
    )
    remote.add(_record("hello"))
    local = ContextStore.open(str(tmp_path / "l.lance"), embedder=HashingEmbedder(8))
    local.add(_record("hello"))
    before = bucket.objects()
    wrong = {**bucket.storage_options, "aws_secret_access_key": "lc-wrong-secret-0123456789"}
    for call in (
        lambda: local.export(bucket.uri("copy"), storage_options=wrong),
        lambda: local.export(bucket.uri("copy"), storage_options=wrong, version=1, history=True),
        lambda: ContextStore.import_(
            bucket.uri("s"), str(tmp_path / "in.lance"), source_storage_options=wrong
        ),
        lambda: ContextStore.import_(str(tmp_path / "l.lance"), bucket.uri("in"), storage_options=wrong),
    ):
        with pytest.raises(StorageAccessError, match="refused access") as refused:
            call()
        said = "".join(traceback.format_exception(refused.value))
        assert "lc-wrong-secret" not in said and bucket.secret_access_key not in said
    assert bucket.objects() == before and sorted(os.listdir(tmp_path)) == ["l.lance"]
