"""A branch that forked before the store had vectors merges in searchable by vector.

Its records were written where there was no vector column; merged into a branch that has
one, they are embedded by the store's embedder as an append would embed them (they used
to land without vectors, so vector search never found them).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from lance_context import ContextRecord, ContextStore, EncryptionPolicy, HashingEmbedder


def _grown(uri: str, **options: object) -> tuple[ContextStore, ContextStore]:
    """A store made without vectors, a branch of it, then vectors added to main."""
    first = ContextStore.open(uri, embedder=None, **options)  # type: ignore[arg-type]
    first.add(ContextRecord.from_content("the first note", run_id="r", id="n1"))
    first.branch("work")
    first.reembed(HashingEmbedder(16))
    main = ContextStore.open(uri, embedder=HashingEmbedder(16), **options)  # type: ignore[arg-type]
    main.add(ContextRecord.from_content("a note on main", run_id="r", id="n2"))
    work = ContextStore.open(uri, embedder=None, branch="work", **options)  # type: ignore[arg-type]
    work.add(ContextRecord.from_content("cats purr when content", run_id="r", id="n3"))
    return main, work


def test_merged_records_are_embedded_as_an_append_would_embed_them(tmp_path: Path) -> None:
    main, _ = _grown(str(tmp_path / "s.lance"))

    result = main.merge("work")

    assert result.merged
    merged = main.get("n3")
    assert merged is not None and merged.embedding is not None
    np.testing.assert_allclose(
        merged.embedding, HashingEmbedder(16).embed_texts(["cats purr when content"])[0]
    )
    assert main.search("cats purr", k=1, mode="vector")[0].record.id == "n3"
    assert [r.id for r in main.records("r")] == ["n1", "n2", "n3"]


def test_merged_records_of_an_encrypted_store_are_embedded_and_stay_sealed(tmp_path: Path) -> None:
    uri = str(tmp_path / "sealed.lance")
    main, _ = _grown(uri, encryption=EncryptionPolicy(key=os.urandom(32)))

    main.merge("work")

    assert main.search("cats purr", k=1, mode="vector")[0].record.text == "cats purr when content"
    on_disk = b"".join(p.read_bytes() for p in Path(uri).rglob("*") if p.is_file())
    assert b"cats purr" not in on_disk


def test_a_store_opened_without_an_embedder_merges_them_without_vectors(tmp_path: Path) -> None:
    uri = str(tmp_path / "s.lance")
    _grown(uri)
    plain = ContextStore.open(uri, embedder=None)

    plain.merge("work")

    merged = plain.get("n3")
    assert merged is not None and merged.embedding is None and merged.text == "cats purr when content"


def test_review_estimates_vector_search_with_the_vectors_the_merge_will_make(tmp_path: Path) -> None:
    main, work = _grown(str(tmp_path / "s.lance"))
    spoken = ContextRecord.from_content("they purr", run_id="r", id="n4", role="user")
    work.add(
        dataclasses.replace(spoken, embed_text="Cats: cats purr when content")
    )  # embedded by its embed_text

    review = main.review("work", queries=["cats purr when content"], k=3, mode="vector")
    predicted = [(h.id, h.mark) for h in review.queries[0].merged]
    main.merge("work")
    found = main.search("cats purr when content", k=3, mode="vector")

    assert [i for i, _ in predicted] == [h.record.id for h in found]
    assert {"n3", "n4"} <= {i for i, mark in predicted if mark == "+"}
    stored = main.get("n4")
    assert stored is not None and stored.embedding is not None
    np.testing.assert_allclose(
        stored.embedding, HashingEmbedder(16).embed_texts(["Cats: cats purr when content"])[0]
    )
