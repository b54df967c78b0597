"""Fixtures shared by every test folder.

- ``--reliability-long``: run the long versions of the reliability tests (``make reliability``).
- ``moto_server``: a real S3-protocol server (``python -m moto.server``) on 127.0.0.1 and a
  free port, started once per session and stopped at the end.
- ``s3_bucket``: a fresh, empty bucket on that server for one test, with the ``uri_prefix``
  and ``storage_options`` a store needs (``ContextStore.open(s3_bucket.uri("name"),
  storage_options=s3_bucket.storage_options)``).
- ``new_moto_server``: start a private server (optionally journaling its requests, so it
  can be killed and brought back with its data); stopped after the test.
- ``iam_bucket``: a bucket on a private server that checks signatures, with a real user's key
  (for wrong-credential tests).
- ``ray_cluster``: a local Ray cluster (2 CPUs, no dashboard, no usage stats: nothing
  leaves the machine), started once for the session and shut down at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Exported models (the default embedder's ONNX Runtime twin) are kept with the test artifacts,
# not in the user's cache; subprocesses inherit it.
os.environ.setdefault(
    "LANCE_CONTEXT_CACHE", str(Path(__file__).resolve().parent.parent / ".artifacts" / "cache")
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-long",
        action="store_true",
        default=False,
        help="run the long versions of tests/reliability (more processes, kills and examples)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the tests marked ``long_only`` to ``make reliability`` (``--reliability-long``)."""
    if config.getoption("--reliability-long"):
        return
    dropped = [item for item in items if item.get_closest_marker("long_only")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("long_only")]


@pytest.fixture(scope="session")
def reliability_long(pytestconfig: pytest.Config) -> bool:
    """True under ``--reliability-long``."""
    return bool(pytestconfig.getoption("--reliability-long"))


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_MOTO_ATOMIC = Path(__file__).with_name("_moto_atomic.py")


class MotoServer:
    """A moto S3 server in a subprocess, bound to 127.0.0.1.

    Its conditional writes are atomic, as the real services' are (see ``_moto_atomic``).

    ``stop()`` terminates the process (clients then get "connection refused");
    ``start()`` runs a new one on the same port. moto keeps its state in memory, so a
    restarted server is empty unless it was created with ``record_to=<journal path>`` and
    ``replay()`` is called: moto's recorder journals every request it receives to a
    file and replays them into the new process.
    """

    def __init__(self, port: int | None = None, *, record_to: Path | None = None) -> None:
        self.port = port or free_port()
        self.record_to = record_to
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        env = dict(os.environ)
        if self.record_to is not None:
            env["MOTO_ENABLE_RECORDING"] = "True"
            env["MOTO_RECORDER_FILEPATH"] = str(self.record_to)
        self.process = subprocess.Popen(
            [sys.executable, str(_MOTO_ATOMIC), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"moto server exited with code {self.process.returncode} on port {self.port}"
                )
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).close()
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on port {self.port} within {timeout}s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def replay(self) -> None:
        """Rebuild the restarted server's state from the request journal.

        The journal is first rewritten as one request per line (see ``_journal_entries``),
        because moto's replay stops with a 500 at the first line it cannot parse.
        """
        assert self.record_to is not None, "replay() needs a server started with a journal"
        entries = _journal_entries(self.record_to.read_text())
        self.record_to.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
        request = urllib.request.Request(self.endpoint + "/moto-api/recorder/replay-recording", method="POST")
        try:
            urllib.request.urlopen(request, timeout=120).close()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[-2000:]
            raise RuntimeError(
                f"moto could not replay its journal of {len(entries)} requests: {detail}"
            ) from error

    def bucket(self, name: str | None = None, credentials: Mapping[str, str] | None = None) -> S3Bucket:
        """Create a bucket (a random name by default) and describe how to reach it."""
        import boto3

        credentials = credentials or _SESSION_CREDENTIALS
        name = name or f"lc-{uuid.uuid4().hex[:16]}"
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", **credentials)
        client.create_bucket(Bucket=name)
        return S3Bucket(
            name=name,
            endpoint=self.endpoint,
            access_key_id=credentials["aws_access_key_id"],
            secret_access_key=credentials["aws_secret_access_key"],
        )


def _journal_entries(text: str) -> list[dict[str, object]]:
    """The requests in moto's journal, in the order they were written.

    moto appends each request as it arrives, before answering it: the JSON and the newline
    that ends it are two writes, so requests handled at the same time can leave two entries
    on one line (``{...}{...}``) and a server terminated between the two writes leaves the
    last entry without its newline. Both are read here as a stream of JSON objects. An entry
    cut short at the very end was never answered (no client was told it happened) and is
    dropped; anything else that does not parse is a broken journal and fails the test.
    """
    decoder = json.JSONDecoder()
    entries: list[dict[str, object]] = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return entries
        try:
            entry, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            if "\n" in text[at:].rstrip("\n"):
                raise  # a torn entry before others: the journal is broken
            return entries
        entries.append(entry)


@dataclass
class S3Bucket:
    """One bucket on the test S3 server and the options a store needs to reach it."""

    name: str
    endpoint: str
    access_key_id: str
    secret_access_key: str
    storage_options: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.storage_options = self.options()

    def options(self, endpoint: str | None = None, **extra: str) -> dict[str, str]:
        """Storage options for this bucket, through another endpoint or with more settings."""
        return {**s3_options(endpoint or self.endpoint, self.access_key_id, self.secret_access_key), **extra}

    @property
    def uri_prefix(self) -> str:
        return f"s3://{self.name}"

    def uri(self, name: str = "store") -> str:
        """``s3://bucket/name``."""
        return f"{self.uri_prefix}/{name}"

    def objects(self) -> dict[str, bytes]:
        """Every object in the bucket, key to bytes (for scanning what was written)."""
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name="us-east-1",
        )
        found: dict[str, bytes] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.name):
            for item in page.get("Contents", []):
                found[item["Key"]] = client.get_object(Bucket=self.name, Key=item["Key"])["Body"].read()
        return found


def s3_options(endpoint: str, access_key_id: str, secret_access_key: str) -> dict[str, str]:
    """Lance storage options for the test S3 server."""
    return {
        "aws_endpoint": endpoint,
        "allow_http": "true",
        "aws_access_key_id": access_key_id,
        "aws_secret_access_key": secret_access_key,
        "aws_region": "us-east-1",
    }


def make_credentials() -> dict[str, str]:
    """Distinctive fake credentials, so tests can look for them where they must not be."""
    return {
        "aws_access_key_id": "AKIALCTEST" + secrets.token_hex(5).upper(),
        "aws_secret_access_key": "lc-secret-" + secrets.token_hex(16),
    }


_SESSION_CREDENTIALS = make_credentials()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """A moto S3 server for the whole session."""
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto_server: MotoServer) -> S3Bucket:
    """A fresh bucket for one test (moto lists slow down as a bucket fills up)."""
    return moto_server.bucket()


@pytest.fixture
def new_moto_server(tmp_path: Path) -> Iterator[Callable[..., MotoServer]]:
    """Start private moto servers: ``new_moto_server(journal=True)``; all stopped afterwards."""
    started: list[MotoServer] = []

    def start(*, journal: bool = False) -> MotoServer:
        server = MotoServer(record_to=tmp_path / f"moto-journal-{len(started)}.jsonl" if journal else None)
        server.start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def iam_bucket(new_moto_server: Callable[..., MotoServer], monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    """A bucket on a private server that checks signatures, with a real user's key.

    moto checks signatures only once IAM is on: three free calls make the user, its
    policy and its key.
    """
    import boto3

    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "3")
    server = new_moto_server()
    iam = boto3.client("iam", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id="x",
                       aws_secret_access_key="y")  # fmt: skip
    iam.create_user(UserName="app")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="app", PolicyName="all", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="app")["AccessKey"]
    return server.bucket(
        credentials={"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    )


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[object]:
    """A local Ray cluster for the session: ``ray.init(num_cpus=2)``, offline."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # read by Ray's processes: no usage report
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()
