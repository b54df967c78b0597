"""An object store that cannot make concurrent commits safe is refused before anything is written.

Lance commits a version by creating its manifest only if it does not exist yet (PUT with
``If-None-Match``). moto honours that precondition; a proxy that drops it plays a server
that ignores it, and ``aws_conditional_put=disabled`` makes the client refuse to send it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from lance_context import ContextRecord, ContextStore, HashingEmbedder, StoreError

from ._proxy import IgnoringPreconditions
from .report import TALLY

pytestmark = pytest.mark.reliability


def _names_the_fix(error: BaseException) -> bool:
    text = str(error)
    return "conditional writes" in text and "s3+ddb://" in text and "If-None-Match" in text


def test_a_store_that_honours_conditional_writes_is_used_and_left_clean(s3_bucket: Any) -> None:
    store = ContextStore.open(s3_bucket.uri("safe"), storage_options=s3_bucket.storage_options, embedder=None)
    store.add(ContextRecord.from_content("hello", run_id="s"))
    assert [r.text for r in store.records("s")] == ["hello"]
    assert not [key for key in s3_bucket.objects() if "_lance_context/" in key], "the check leaves nothing"


def test_disabled_conditional_writes_are_refused_with_the_fix(s3_bucket: Any) -> None:
    options = s3_bucket.options(aws_conditional_put="disabled")
    with pytest.raises(StoreError) as info:
        ContextStore.open(s3_bucket.uri("disabled"), storage_options=options, embedder=None)
    assert _names_the_fix(info.value) and "aws_conditional_put=disabled" in str(info.value)
    assert s3_bucket.objects() == {}, "nothing was created"
    TALLY.add(writes_attempted=1, writes_refused=1)


def test_a_server_that_ignores_conditional_writes_is_refused_before_any_write(
    s3_bucket: Any, moto_server: Any
) -> None:
    uri = s3_bucket.uri("ignoring")
    store = ContextStore.open(uri, storage_options=s3_bucket.storage_options, embedder=HashingEmbedder(8))
    store.add(ContextRecord.from_content("written safely", run_id="s", id="safe"))
    before = store.version()
    proxy = IgnoringPreconditions(moto_server.port)
    try:
        options = s3_bucket.options(proxy.endpoint)
        with pytest.raises(StoreError) as created:
            ContextStore.open(s3_bucket.uri("new-through-proxy"), storage_options=options, embedder=None)
        assert _names_the_fix(created.value) and "silently lose commits" in str(created.value)

        through = ContextStore.open(uri, storage_options=options, embedder=HashingEmbedder(8))
        assert [r.id for r in through.records("s")] == ["safe"], "reading needs no conditional writes"
        with pytest.raises(StoreError) as written:
            through.add(ContextRecord.from_content("would race", run_id="s", id="unsafe"))
        assert _names_the_fix(written.value)
    finally:
        proxy.close()
    assert store.version() == before
    assert [r.id for r in store.records("s")] == ["safe"]
    TALLY.add(writes_attempted=3, writes_committed=1, writes_refused=2)


def test_the_named_fix_commits_safely_through_the_same_server(s3_bucket: Any, moto_server: Any) -> None:
    """``s3+ddb://``: Lance's external commit store (DynamoDB, here moto's) makes the commits safe."""
    import boto3

    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=moto_server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=s3_bucket.access_key_id,
        aws_secret_access_key=s3_bucket.secret_access_key,
    )
    table = f"commits-{s3_bucket.name}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "base_uri", "KeyType": "HASH"},
            {"AttributeName": "version", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "base_uri", "AttributeType": "S"},
            {"AttributeName": "version", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    proxy = IgnoringPreconditions(moto_server.port)
    try:
        uri = f"s3+ddb://{s3_bucket.name}/external?ddbTableName={table}"
        options = s3_bucket.options(proxy.endpoint, dynamodb_endpoint=moto_server.endpoint)
        stores = [ContextStore.open(uri, storage_options=options, embedder=None) for _ in range(3)]

        def write(n: int) -> None:
            for i in range(8):
                stores[n].add(ContextRecord.from_content(f"{n}-{i}", run_id=f"w{n}", id=f"{n}-{i}"))

        threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        reopened = ContextStore.open(uri, storage_options=options, embedder=None)
        for n in range(3):
            assert [r.id for r in reopened.records(f"w{n}")] == [f"{n}-{i}" for i in range(8)]
        assert reopened.count() == 24
    finally:
        proxy.close()
    TALLY.add(writes_attempted=24, writes_committed=24)


def _race(writers: int, write: Callable[[int], None], refused: set[str]) -> int:
    """Run ``write(0..writers-1)`` at once; the one writer that succeeded (the others refused)."""
    from botocore.exceptions import ClientError

    start, won, codes = threading.Barrier(writers), [], []

    def run(n: int) -> None:
        start.wait()
        try:
            write(n)
            won.append(n)
        except ClientError as error:
            codes.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=run, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and set(codes) <= refused, (won, codes)
    return won[0]


def test_racing_conditional_writes_have_one_winner_on_the_test_server(
    s3_bucket: Any, moto_server: Any
) -> None:
    """What the tests above rely on, as S3 and DynamoDB guarantee it.

    Of writers racing to create one object (``If-None-Match: *``) or one item
    (``attribute_not_exists``), exactly one succeeds, and what is stored is its bytes.
    """
    import boto3

    keys = {
        "aws_access_key_id": s3_bucket.access_key_id,
        "aws_secret_access_key": s3_bucket.secret_access_key,
    }
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint, region_name="us-east-1", **keys)
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_server.endpoint, region_name="us-east-1", **keys)
    table = f"race-{s3_bucket.name}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def body(key: int, n: int) -> bytes:
        return f"object {key} from writer {n}\n".encode() * 2_000  # ~60 kB: read before the lock

    for key in range(12):
        winner = _race(
            4,
            lambda n, key=key: s3.put_object(
                Bucket=s3_bucket.name, Key=f"race/{key}", Body=body(key, n), IfNoneMatch="*"
            ),
            {"PreconditionFailed", "ConditionalRequestConflict"},
        )
        assert s3.get_object(Bucket=s3_bucket.name, Key=f"race/{key}")["Body"].read() == body(key, winner)

        winner = _race(
            4,
            lambda n, key=key: dynamodb.put_item(
                TableName=table,
                Item={"k": {"S": str(key)}, "writer": {"N": str(n)}},
                ConditionExpression="attribute_not_exists(k)",
            ),
            {"ConditionalCheckFailedException"},
        )
        item = dynamodb.get_item(TableName=table, Key={"k": {"S": str(key)}}, ConsistentRead=True)["Item"]
        assert item["writer"] == {"N": str(winner)}
