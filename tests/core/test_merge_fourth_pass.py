"""Merging a branch into another: vectors into a store without, payloads, adapters, encryption."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import lance
import numpy as np
import pytest

from lance_context import ContextStore, EmbedderMismatchError, EncryptionPolicy, HashingEmbedder, SearchError
from lance_context import _merge as merge_module

from .conftest import text


class OtherModel:
    """An embedder of the same size as ``HashingEmbedder(8)`` but another model."""

    name = "other-model"
    dimension = 8

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.ones((len(texts), 8), dtype=np.float32)


def ids(store: ContextStore, run_id: str | None = None) -> list[str]:
    return [r.id for r in store.records(run_id, with_vectors=False)]


@pytest.fixture
def plain(tmp_path: Path) -> tuple[str, ContextStore, ContextStore]:
    """A store without vectors, and a branch of it re-embedded with ``HashingEmbedder(8)``."""
    uri = str(tmp_path / "plain.lance")
    main = ContextStore.open(uri, embedder=None)
    main.add([text("I am allergic to peanuts", id="m1"), text("We fly to Porto", id="m2")])
    work = main.branch("work")
    work.reembed(HashingEmbedder(8))
    work.add(text("Summary: peanuts, Porto", id="sum", role="assistant"))
    return uri, main, work


def test_merging_vectors_into_a_store_without_is_one_version_recording_the_embedder(
    plain: tuple[str, ContextStore, ContextStore],
) -> None:
    uri, main, _ = plain
    before = main.version()

    result = main.merge("work")

    assert result.merged and result.version == before + 1 == main.version()
    assert [v.operation for v in main.versions()][-1] == "merge"
    assert ids(main, "s1") == ["m1", "m2", "sum"]
    assert main.get("sum").embedding is not None  # type: ignore[union-attr]
    assert "embedding" not in lance.dataset(uri, version=before).schema.names  # the past is unchanged
    with pytest.raises(EmbedderMismatchError):
        ContextStore.open(uri, embedder=OtherModel())  # the merged store names its model
    again = ContextStore.open(uri, embedder=HashingEmbedder(8))
    assert again.search("Porto", k=1)[0].record.id in {"m2", "sum"}
    main.add(text("after the merge", id="late"))  # the merging store follows the new schema
    assert ids(main, "s1")[-1] == "late"


def test_a_record_written_while_the_merge_adds_the_vector_column_is_kept(
    plain: tuple[str, ContextStore, ContextStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, main, _ = plain
    other = ContextStore.open(uri, embedder=None)
    real = merge_module.write_fragments
    calls = []

    def racing(*args: object, **kwargs: object) -> object:
        if not calls:  # another writer commits between the merge's read and its commit
            other.add(text("written meanwhile", id="race"))
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(merge_module, "write_fragments", racing)

    result = main.merge("work")

    assert len(calls) == 2 and result.merged
    assert set(ids(main, "s1")) == {"m1", "m2", "sum", "race"}
    assert main.versions()[-1].operation == "merge" and result.version == main.version()


def test_review_of_vectors_into_a_store_without_predicts_the_merged_search_exactly(
    plain: tuple[str, ContextStore, ContextStore],
) -> None:
    uri, main, work = plain

    review = work.review("work", queries=["Porto"], k=2)  # the branch's store has the embedder

    predicted = [h.id for h in review.queries[0].merged]
    assert review.queries[0].target == [] and len(predicted) == 2  # main holds no vectors yet
    with pytest.raises(SearchError, match="holds no vectors"):
        work.review("work", queries=["Porto"], k=2, mode="hybrid")  # no estimate without them: said so
    main.merge("work")
    after = ContextStore.open(uri, embedder=HashingEmbedder(8)).search("Porto", k=2)
    assert [h.record.id for h in after] == predicted


def test_vectors_merge_sealed_into_a_branch_without_of_an_encrypted_store(tmp_path: Path) -> None:
    uri = str(tmp_path / "sealed.lance")
    main = ContextStore.open(uri, embedder=None, encryption=EncryptionPolicy(key=os.urandom(32)))
    main.add([text("PLAIN-SECRET-ONE", id="p1")])
    target = main.branch("target")
    work = main.branch("work")
    work.reembed(HashingEmbedder(8))
    work.add(text("VECTOR-SECRET-TWO", id="v1"))
    before = target.version()

    result = main.merge("work", into="target")

    assert result.version == before + 1 == target.version()
    assert [(r.text, r.embedding is not None) for r in target.records("s1")] == [
        ("PLAIN-SECRET-ONE", True), ("VECTOR-SECRET-TWO", True)
    ]  # fmt: skip
    assert not main.merge("work", into="target").merged  # merging again writes nothing
    assert "embedding" not in lance.dataset(uri).schema.names  # main itself is untouched
    on_disk = b"".join(p.read_bytes() for p in Path(uri).rglob("*") if p.is_file())
    assert b"VECTOR-SECRET-TWO" not in on_disk and b"PLAIN-SECRET-ONE" not in on_disk
