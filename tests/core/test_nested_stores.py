"""A store never claims the files of another dataset kept in a folder inside its own.

``forget()`` deletes every file under the store's root that no version references and
scans the rest for what was erased: a dataset inside that folder (made by another tool,
on an object store, or before such a location was refused) must keep its files.
"""

from __future__ import annotations

import os
from pathlib import Path

import lance
import pyarrow as pa
import pytest

from lance_context import ContextStore, NotAContextStoreError

from .conftest import text


def test_a_new_store_inside_a_local_store_is_refused_and_nothing_is_made(store_path: str) -> None:
    ContextStore.open(store_path, embedder=None).add(text("outer"))
    inner = os.path.join(store_path, "notes", "inner.lance")
    with pytest.raises(NotAContextStoreError, match=r"inside the store at .*choose a location outside it"):
        ContextStore.open(inner, embedder=None)
    assert not os.path.exists(os.path.join(store_path, "notes"))
    beside = ContextStore.open(store_path + "-beside", embedder=None)  # a sibling folder is fine
    assert beside.count() == 0


def _inner_dataset(uri: str, options: dict[str, str] | None) -> None:
    lance.write_dataset(pa.table({"secret": ["its own copy: forget me"]}), uri, storage_options=options)
    lance.write_dataset(
        pa.table({"secret": ["and this"]}), uri, mode="append", storage_options=options
    )  # two versions, two data files


@pytest.mark.parametrize("where", ["local", "s3"])
def test_forget_keeps_the_files_of_a_dataset_inside_the_store(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if where == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        uri, options = bucket.uri("outer.lance"), bucket.storage_options
    else:
        uri, options = str(tmp_path / "outer.lance"), None
    store = ContextStore.open(uri, storage_options=options, embedder=None)
    store.add([text("keep me"), text("forget me", run_id="gone")])
    inner = f"{uri}/data/inner.lance"  # even under the store's own data folder, holding the erased text
    _inner_dataset(inner, options)
    report = store.forget(run_id="gone")
    assert report.records == 1 and report.verification is not None
    assert report.verification.leaks == ()
    assert not [path for path in report.verification.leftovers_deleted if "inner.lance" in path]
    kept = lance.dataset(inner, storage_options=options)
    assert kept.to_table().column("secret").to_pylist() == ["its own copy: forget me", "and this"]
    assert [r.content for r in store.records()] == ["keep me"]
