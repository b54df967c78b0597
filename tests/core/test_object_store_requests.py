"""How many object-store requests the hot paths make, counted on a real S3 server's request journal.

On S3 every request is a round trip (and a charge). One ``add()`` of one record used
to make 31 (27 of them probes for newer versions); it now resolves the latest version
once (one LIST), opens a private copy of it to commit on (one HEAD; the manifest comes
from the shared cache) and commits through Lance's transaction API.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lance_context import ContextRecord, ContextStore, HashingEmbedder


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
