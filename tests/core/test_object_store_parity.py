"""An ``s3://`` store behaves as the same store on a local disk (moto on 127.0.0.1).

Each test runs the same steps on a ``tmp_path`` store and on a bucket of the session's
moto server and compares what a user sees: records, versions, tags, branches, search
results and the errors raised.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import lance
import pytest

from lance_context import (
    ContextRecord,
    ContextStore,
    HashingEmbedder,
    NotAContextStoreError,
    StorageAccessError,
    StoreError,
)

from ..conftest import S3Bucket


def _record(text: str, run_id: str = "chat", record_id: str | None = None) -> ContextRecord:
    named = {} if record_id is None else {"id": record_id}
    return ContextRecord.from_content(text, role="user", run_id=run_id, **named)


def _outcome(call: Callable[[], object]) -> str:
    """What a call gave, as the error's type when it raised (messages name different locations)."""
    try:
        call()
    except Exception as exc:
        return type(exc).__name__
    return "ok"


def _scenario(uri: str, options: dict[str, str] | None) -> dict[str, Any]:
    """A user's day on a store: writes, versions, branches, search, maintenance, reopening."""
    store = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(16))
    store.add([_record(f"note {i} about paris", record_id=f"a{i}") for i in range(3)])
    store.add([_record(f"lisbon {i}", run_id="trip", record_id=f"b{i}") for i in range(2)])
    store.tag("first")
    store.upsert(_record("edited note about paris", record_id="a0"))
    store.delete("a1")
    seen: dict[str, Any] = {"records": [(r.id, r.text) for r in store.records()]}
    seen["versions"] = [v.version for v in store.versions()]
    seen["search"] = [[h.record.id for h in store.search("paris", k=3, mode=m)] for m in ("vector", "text")]
    changes = store.diff("first")
    seen["diff"] = (sorted(r.id for r in changes.added), sorted(r.id for r in changes.removed))
    branch = store.branch("draft")
    branch.add(_record("only on the branch", record_id="c0"))
    seen["branch"] = ([r.id for r in branch.records()], store.branches(), store.count())
    store.compact()
    seen["old"] = [r.id for r in store.at_version("first").records()]
    store.delete_branch("draft")
    seen["restored"] = (store.restore("first"), [r.id for r in store.records()])
    seen["forgot"] = (store.forget("a2").records, [r.id for r in store.records()])
    store.cleanup(older_than=timedelta(0))
    reopened = ContextStore.open(uri, storage_options=options)
    seen["reopened"] = ([r.id for r in reopened.records()], reopened.tags(), reopened.branches())
    store.tag("kept")
    seen["errors"] = [
        _outcome(call)
        for call in (
            lambda: store.at_version(999),
            lambda: store.checkout("no-such-tag"),
            lambda: store.checkout_branch("no-such-branch"),
            lambda: store.tag("kept"),
            lambda: ContextStore.open(uri, storage_options=options, branch="gone"),
        )
    ]
    return seen


def test_a_day_on_s3_matches_the_same_day_on_disk(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    local = _scenario(str(tmp_path / "store.lance"), None)
    remote = _scenario(s3_bucket.uri("store"), s3_bucket.storage_options)
    assert remote == local
    assert local["errors"] == ["VersionNotFoundError"] * 3 + ["InvalidFilterError", "VersionNotFoundError"]


def _put(bucket: S3Bucket, key: str, body: bytes = b"not a store") -> None:
    client = boto3.client(
        "s3",
        endpoint_url=bucket.endpoint,
        aws_access_key_id=bucket.access_key_id,
        aws_secret_access_key=bucket.secret_access_key,
        region_name="us-east-1",
    )
    client.put_object(Bucket=bucket.name, Key=key, Body=body)


def test_a_prefix_holding_other_objects_is_refused_as_a_local_folder_is(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    """Opening a location that holds someone else's data must not create a store inside it."""
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "q1.csv").write_text("a,b\n")
    (tmp_path / "notes.txt").write_text("hi")
    _put(s3_bucket, "reports/q1.csv")
    _put(s3_bucket, "notes.txt")
    options = s3_bucket.storage_options
    for name, words in (("reports", "holds other objects (q1.csv)"), ("notes.txt", "is an object")):
        with pytest.raises(NotAContextStoreError, match="is a non-empty folder|is a file"):
            ContextStore.open(str(tmp_path / name), embedder=HashingEmbedder(8))
        with pytest.raises(NotAContextStoreError) as refused:
            ContextStore.open(s3_bucket.uri(name), storage_options=options, embedder=HashingEmbedder(8))
        assert words in str(refused.value)
        with pytest.raises(NotAContextStoreError):
            ContextStore.open(s3_bucket.uri(name), storage_options=options, read_only=True)
    assert sorted(s3_bucket.objects()) == ["notes.txt", "reports/q1.csv"], "nothing was written"
    # what a creation killed before its first commit leaves is no reason to refuse
    _put(s3_bucket, "half/_transactions/0-x.txn")
    _put(s3_bucket, "half/_lance_context/commit-check-x/_versions/1.manifest")
    store = ContextStore.open(s3_bucket.uri("half"), storage_options=options, embedder=HashingEmbedder(8))
    store.add(_record("hello"))
    assert [r.text for r in ContextStore.open(s3_bucket.uri("half"), storage_options=options).records()] == [
        "hello"
    ]


def test_a_timeout_given_as_a_number_means_seconds(s3_bucket: S3Bucket) -> None:
    """``timeout=5`` is ignored on a local store; on S3 Lance refused it ("failed to parse as Duration")."""
    options: dict[str, Any] = {**s3_bucket.storage_options, "timeout": 5, "connect_timeout": "2.5"}
    store = ContextStore.open(s3_bucket.uri("timeouts"), storage_options=options, embedder=HashingEmbedder(8))
    store.add(_record("hello"))
    assert store.count() == 1
    assert (
        store.storage_options["timeout"] == "5000ms" and store.storage_options["connect_timeout"] == "2500ms"
    )
    with pytest.raises(StoreError, match="Duration"):  # what is not a number still reaches Lance's check
        ContextStore.open(s3_bucket.uri("timeouts"), storage_options={**options, "timeout": "soon"})


def _branch_export(uri: str, options: dict[str, str] | None, dest: str) -> dict[str, Any]:
    """A branch with its own writes, deletions and every index, exported and opened again."""
    store = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(8))
    store.add([_record(f"note {i} about paris", record_id=f"a{i}") for i in range(4)])
    draft = store.branch("draft")
    draft.add(_record("on the branch, about paris", run_id="trip", record_id="b0"))
    draft.delete("a1")
    draft.compact()  # the scalar and full-text indexes
    draft.build_vector_index()
    store.add(_record("on main only", record_id="m0"))
    report = store.export(dest, branch="draft", storage_options=options)
    copy = ContextStore.open(dest, storage_options=options)
    ds = lance.dataset(dest, storage_options=copy.storage_options or None)
    return {
        "report": (report.branch, report.version, report.records, report.tags, len(report.versions)),
        "records": [(r.id, r.run_id, r.text) for r in copy.records()],
        "vectors": [None if r.embedding is None else [float(x) for x in r.embedding] for r in copy.records()],
        "search": [
            sorted(h.record.id for h in copy.search("paris", k=9, mode=m)) for m in ("vector", "text")
        ],
        "embedder": (copy.embedder.name if copy.embedder else None, copy.branches(), copy.count()),
        "indexes": sorted(index.name for index in ds.describe_indices()),
        "versions held": len(copy.versions()),
    }


def test_a_branch_exports_from_s3_as_it_does_from_disk(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    """pylance 14's deep_clone fails on an S3 branch ("empty path segment"): the rows are written anew."""
    local = _branch_export(str(tmp_path / "src.lance"), None, str(tmp_path / "copy.lance"))
    remote = _branch_export(s3_bucket.uri("src"), s3_bucket.storage_options, s3_bucket.uri("copy"))
    assert remote == local
    assert local["records"][-1][:2] == ("b0", "trip") and len(local["records"]) == 4
    assert local["indexes"] == ["embedding_idx", "id_idx", "run_id_idx", "search_text_idx"]
    assert local["versions held"] == 1


def test_wrong_credentials_are_refused_clearly_without_showing_them(iam_bucket: S3Bucket) -> None:
    bucket = iam_bucket
    ContextStore.open(
        bucket.uri("s"), storage_options=bucket.storage_options, embedder=HashingEmbedder(8)
    ).add(_record("hello"))
    wrong_secret = {**bucket.storage_options, "aws_secret_access_key": "lc-wrong-secret-0123456789"}
    unknown_key = {**bucket.storage_options, "aws_access_key_id": "AKIALCUNKNOWN0000000"}
    for options, uri in (
        (wrong_secret, bucket.uri("s")),
        (wrong_secret, bucket.uri("new")),
        (unknown_key, bucket.uri("s")),
    ):
        with pytest.raises(StorageAccessError, match="refused access") as refused:
            ContextStore.open(uri, storage_options=options)
        said = "".join(traceback.format_exception(refused.value))
        assert "lc-wrong-secret" not in said and bucket.secret_access_key not in said


def test_a_bucket_without_a_region_says_to_give_one(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    secret = s3_bucket.storage_options["aws_secret_access_key"]
    # no endpoint and no region: the region is looked up on AWS, here through a closed port
    lookup = {
        "aws_access_key_id": "AKIALCTEST",
        "aws_secret_access_key": secret,
        "proxy_url": "http://127.0.0.1:9",
    }
    with pytest.raises(StorageAccessError, match=r"no region for the bucket .*AWS_REGION") as caught:
        ContextStore.open(s3_bucket.uri(), storage_options=lookup, embedder=None)
    assert secret not in str(caught.value)
    # the hint's spelling works
    options = {k: v for k, v in s3_bucket.storage_options.items() if k != "aws_region"} | {
        "region": "us-east-1"
    }
    ContextStore.open(s3_bucket.uri(), storage_options=options, embedder=None).add(
        ContextRecord.from_content("hi", role="user", run_id="s")
    )
    assert s3_bucket.objects()
