"""Embeddings are produced on append, in one batched call, and the store remembers its model."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import lance
import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from llama_index.core.embeddings import MockEmbedding
from PIL import Image

from lance_context import (
    ContextRecord,
    ContextStore,
    EmbedderMismatchError,
    EmbedderUnavailableError,
    EmbeddingError,
    HashingEmbedder,
    LangChainEmbedder,
    LlamaIndexEmbedder,
    SentenceTransformerEmbedder,
    _embedders,
    as_embedder,
)

from .conftest import text


class CountingEmbedder(HashingEmbedder):
    def __init__(self, dimension: int = 16, fail_after: int | None = None) -> None:
        super().__init__(dimension)
        self.calls: list[int] = []
        self.fail_after = fail_after

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        if self.fail_after is not None and len(texts) > self.fail_after:
            raise RuntimeError("model crashed half way")
        return super().embed_texts(texts)


class ImageEmbedder(HashingEmbedder):
    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = np.zeros((len(images), self.dimension), dtype=np.float32)
        out[:, 1] = 1.0
        return out


def test_one_batched_call_per_add(store_path: str) -> None:
    embedder = CountingEmbedder()
    store = ContextStore.open(store_path, embedder=embedder)
    given = np.eye(16, dtype=np.float32)[3]
    store.add(
        [text("a"), text("b"), ContextRecord(run_id="s1", text_payload="c", embedding=given), text("d")]
    )
    assert embedder.calls == [3]  # the record with its own vector is not embedded
    found = {r.text: r.embedding for r in store.records()}
    assert np.array_equal(found["c"], given)  # the caller's embedding wins
    assert np.allclose(found["a"], HashingEmbedder(16).embed_texts(["a"])[0])


def test_records_the_embedder_cannot_embed_are_kept_without_vectors(store: ContextStore) -> None:
    store.add([text("words"), ContextRecord.from_content(b"\x00\x01", run_id="s1")])
    vectors = {r.content_type: r.embedding for r in store.records()}
    assert vectors["text/plain"] is not None
    assert vectors["application/octet-stream"] is None
    assert store.count() == 2


def test_images_are_embedded_when_the_embedder_can(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=ImageEmbedder(8))
    store.add(ContextRecord.from_content(Image.new("RGB", (2, 2)), run_id="s1"))
    [record] = store.records()
    assert record.embedding is not None and record.embedding[1] == 1.0
    hits = store.search(Image.new("RGB", (2, 2)), k=1)
    assert hits[0].record.id == record.id


def test_failing_embedder_writes_nothing(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=CountingEmbedder(fail_after=2))
    store.add([text("one"), text("two")])
    before = store.version()
    with pytest.raises(EmbeddingError, match="model crashed half way.*nothing was written"):
        store.add([text("a"), text("b"), text("c")])
    assert store.version() == before and store.count() == 2


class WrongShape(HashingEmbedder):
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.zeros((len(texts), 3), dtype=np.float32)


class NaNEmbedder(HashingEmbedder):
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.full((len(texts), self.dimension), np.nan, dtype=np.float32)


@pytest.mark.parametrize(("embedder", "message"), [(WrongShape(8), "shape"), (NaNEmbedder(8), "NaN")])
def test_bad_embedder_output_is_refused(store_path: str, embedder: HashingEmbedder, message: str) -> None:
    store = ContextStore.open(store_path, embedder=embedder)
    with pytest.raises(EmbeddingError, match=message):
        store.add(text("x"))
    assert store.count() == 0


def test_store_remembers_its_embedder_without_secrets(store_path: str) -> None:
    class Secretive:
        model = "fake-model"
        api_key = "sk-very-secret-value"

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[1.0, 0.0, 0.0]] * len(texts)

        def embed_query(self, text: str) -> list[float]:
            return [1.0, 0.0, 0.0]

    ContextStore.open(store_path, embedder=Secretive()).add(text("x"))
    metadata = lance.dataset(store_path).schema.metadata
    info = json.loads(metadata[b"lance_context.embedder"])
    assert info == {
        "name": f"langchain:{Secretive.__module__}.{Secretive.__qualname__}/fake-model",
        "dimension": 3,
    }
    assert b"sk-very-secret" not in b"".join(metadata.values())


def test_reopening_with_another_embedder_is_an_error(store_path: str) -> None:
    ContextStore.open(store_path, embedder=HashingEmbedder(6)).add(text("x"))
    with pytest.raises(EmbedderMismatchError, match="was built with embedder 'hashing'"):
        ContextStore.open(store_path, embedder=DeterministicFakeEmbedding(size=6))
    with pytest.raises(EmbedderMismatchError, match="6-dimensional"):
        ContextStore.open(store_path, embedder=HashingEmbedder(7))
    assert ContextStore.open(store_path, embedder=None).count() == 1  # opting out is allowed


def test_framework_store_reopened_without_its_object_does_not_embed(store_path: str) -> None:
    fake = DeterministicFakeEmbedding(size=6)
    ContextStore.open(store_path, embedder=fake).add(text("x"))
    reopened = ContextStore.open(store_path)
    assert reopened.embedder is None and reopened.dimension == 6
    again = ContextStore.open(store_path, embedder=fake)
    assert again.embedder is not None and again.embedder.dimension == 6


def test_langchain_and_llama_index_wrappers() -> None:
    lc = as_embedder(DeterministicFakeEmbedding(size=5))
    assert isinstance(lc, LangChainEmbedder) and lc.dimension == 5
    assert lc.embed_texts(["a", "b"]).shape == (2, 5)
    li = as_embedder(MockEmbedding(embed_dim=4))
    assert isinstance(li, LlamaIndexEmbedder) and li.dimension == 4
    assert li.embed_texts(["a"]).shape == (1, 4)
    with pytest.raises(TypeError, match="not an embedder"):
        as_embedder(object())


def test_wrong_dimension_vector_from_caller(store: ContextStore) -> None:
    with pytest.raises(EmbeddingError, match="has 3 dimensions, the store expects 32"):
        store.add(ContextRecord(run_id="s", embedding=np.ones(3, dtype=np.float32)))


def test_reembed_switches_model_as_a_new_version(store: ContextStore) -> None:
    first = store.add([text("red apple"), text("blue sky"), ContextRecord.from_content(b"raw", run_id="s1")])
    new_version = store.reembed(HashingEmbedder(48), progress=False)
    assert store.dimension == 48
    assert [v.operation for v in store.versions() if v.version == new_version] == ["reembed"]
    assert all(r.embedding is None or r.embedding.shape == (48,) for r in store.records())
    assert store.at_version(first).records()[0].embedding.shape == (32,)  # history keeps old vectors
    assert store.search("apple", k=1)[0].record.text == "red apple"
    assert store.search("apple", k=1, mode="text")[0].record.text == "red apple"
    reopened = ContextStore.open(store.uri)
    assert reopened.embedder is not None and reopened.embedder.dimension == 48


def test_a_version_from_before_a_reembed_keeps_its_own_vectors(store: ContextStore) -> None:
    first = store.add([text("red apple"), text("blue sky")])  # 32 dimensions
    store.reembed(HashingEmbedder(48), progress=False)
    with pytest.raises(EmbedderMismatchError, match="version 2 holds 32-dimensional vectors"):
        store.search("apple", version=first)
    assert store.search("apple", version=first, mode="text")[0].record.text == "red apple"

    store.restore(first)  # undoes the reembed: the model that made those vectors embeds again

    assert store.dimension == 32 and store.embedder is not None and store.embedder.dimension == 32
    assert store.search("apple", k=1)[0].record.text == "red apple"
    store.add(text("green pear"))
    assert store.records()[-1].embedding.shape == (32,)  # type: ignore[union-attr]


def test_a_restore_to_a_model_that_cannot_run_here_stops_embedding(
    store_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = ContextStore.open(store_path, embedder=DeterministicFakeEmbedding(size=12))
    first = store.add(text("red apple"))
    store.reembed(HashingEmbedder(48), progress=False)

    store.restore(first)

    assert "no longer embeds" in caplog.text and store.dimension == 12 and store.embedder is None
    store.add(ContextRecord(run_id="s1", text_payload="no vector", embedding=np.ones(12, np.float32)))
    with pytest.raises(EmbeddingError):  # a vector of the restored size only
        store.add(ContextRecord(run_id="s1", embedding=np.ones(48, np.float32)))
    assert store.search("apple", mode="text")[0].record.text == "red apple"


def test_reembed_failure_writes_nothing(store: ContextStore) -> None:
    store.add([text("a"), text("b")])
    before = store.version()
    with pytest.raises(EmbeddingError):
        store.reembed(CountingEmbedder(fail_after=1), progress=False)
    assert store.version() == before and store.dimension == 32


def test_missing_sentence_transformers_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    monkeypatch.setattr(_embedders, "_MODEL_CACHE", {})
    embedder = SentenceTransformerEmbedder()
    assert embedder.dimension == 384  # known without loading anything
    with pytest.raises(EmbedderUnavailableError, match=r"pip install 'lance-context\[embeddings\]'"):
        embedder.embed_texts(["hello"] * 9)  # past TWIN_BATCH texts go through sentence-transformers
    monkeypatch.setattr(_embedders, "_TWINS", {})
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # and no ONNX Runtime twin either
    with pytest.raises(EmbedderUnavailableError, match=r"pip install 'lance-context\[embeddings\]'"):
        embedder.embed_texts(["hello"])


def test_default_model_finds_paraphrases(store_path: str) -> None:
    """The real default model (bundled weights, no network) retrieves by meaning."""
    store = ContextStore.open(store_path)  # the default embedder
    assert store.embedder is not None and store.embedder.name == "sentence-transformers/all-MiniLM-L6-v2"
    facts = [
        "The user's dog is called Biscuit and is a golden retriever.",
        "The quarterly report is due on the 14th of March.",
        "Our flight to Lisbon leaves at 7am from gate 22.",
        "The user is allergic to peanuts.",
    ]
    store.add([text(f, run_id="chat") for f in facts])
    questions = {
        "what is the name of my pet?": facts[0],
        "when do I have to hand in the finance document?": facts[1],
        "what time does our plane depart?": facts[2],
        "which food must I avoid?": facts[3],
    }
    for question, answer in questions.items():
        assert store.search(question, k=1, run_id="chat")[0].record.text == answer
    assert store.records()[0].embedding is not None
    assert abs(float(np.linalg.norm(store.records()[0].embedding)) - 1.0) < 1e-4


def test_reembedding_a_branch_leaves_the_store_it_came_from_on_its_model(tmp_path: object) -> None:
    store = ContextStore.open(f"{tmp_path}/s.lance", embedder=HashingEmbedder(16))
    store.add(ContextRecord.from_content("on main", role="user", run_id="s"))
    side = store.branch("side")
    side.reembed(HashingEmbedder(48), progress=False)
    assert side.embedder.dimension == 48 and store.embedder.dimension == 16
    store.add(ContextRecord.from_content("still 16", role="user", run_id="s"))  # refused before
    assert [h.record.content for h in store.search("still", k=1)] == ["still 16"]
    assert store.at_version(store.version()).embedder.dimension == 16
    assert [len(r.embedding) for r in side.records("s") if r.embedding is not None] == [48]


@pytest.mark.parametrize("dimension", [1, 65_537, 10**8])
def test_a_hashing_dimension_outside_what_a_store_holds_is_refused(dimension: int) -> None:
    with pytest.raises(ValueError, match="dimension must be from 2 to 65,536"):
        HashingEmbedder(dimension)
    assert HashingEmbedder(65_536).dimension == 65_536
