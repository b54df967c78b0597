"""What ``as_embedder`` accepts, how embedder output is checked, and what ``reembed`` embeds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lance
import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.embeddings import MockEmbedding

from lance_context import (
    ContextRecord,
    ContextStore,
    EmbedderMismatchError,
    EmbeddingError,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    _embedders,
    _torch_model,
    as_embedder,
)
from lance_context.llama_index import LanceEmbedding

from .conftest import text


@pytest.mark.parametrize("cls", [HashingEmbedder, DeterministicFakeEmbedding, MockEmbedding])
def test_a_class_instead_of_an_instance_is_refused_up_front(store_path: str, cls: type) -> None:
    with pytest.raises(TypeError, match=rf"{cls.__name__} is a class: pass an instance"):
        as_embedder(cls)
    with pytest.raises(TypeError, match="is a class"):
        ContextStore.open(store_path, embedder=cls)
    assert not Path(store_path).exists()


def test_a_model_name_or_none_gets_an_error_saying_what_to_pass() -> None:
    with pytest.raises(TypeError, match=r"SentenceTransformerEmbedder\('all-MiniLM-L6-v2'\)"):
        as_embedder("all-MiniLM-L6-v2")
    with pytest.raises(TypeError, match=r"no embedder given \(None\)"):
        as_embedder(None)
    with pytest.raises(TypeError, match="dimension must be an int"):
        HashingEmbedder(8.0)  # type: ignore[arg-type]


class EmptyVectors(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[] for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        return []


def test_an_embedder_making_empty_vectors_is_refused_before_a_store_is_made(store_path: str) -> None:
    with pytest.raises(EmbeddingError, match=r"query vector of shape \(0,\)"):
        ContextStore.open(store_path, embedder=EmptyVectors())
    assert not Path(store_path).exists()


class RaggedQuery(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0, 0.0] for _ in texts]

    def embed_query(self, text: str) -> Any:
        return [1.0, 0.0, 0.0] if text == "dimension probe" else [[1.0], [0.0, 1.0]]


def test_a_query_vector_that_is_not_numbers_is_an_embedding_error(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=RaggedQuery())
    store.add(text("red apple"))
    with pytest.raises(EmbeddingError, match="not 1 vectors of 3 numbers"):
        store.search("apple")
    with pytest.raises(EmbeddingError, match="not 1 vectors of 3 numbers"):
        LanceEmbedding(RaggedQuery()).get_query_embedding("apple")


class BadRow(HashingEmbedder):
    """Row 1 of each batch is NaN; row 2 overflows float32 (float64 output)."""

    def embed_texts(self, texts: Sequence[str]) -> Any:
        out = super().embed_texts(texts).astype(np.float64)
        out[1, 0] = np.nan if self.dimension == 8 else 1e300
        return out


@pytest.mark.parametrize("dimension", [8, 9])
def test_nan_or_overflow_from_the_embedder_names_the_record(store_path: str, dimension: int) -> None:
    store = ContextStore.open(store_path, embedder=BadRow(dimension))
    records = [text("a"), text("b"), text("c")]
    with pytest.raises(EmbeddingError, match=rf"NaN or infinity for record {records[1].id!r}"):
        store.add(records)
    assert store.count() == 0


def test_reembed_embeds_a_record_whose_embed_text_is_empty_like_add_does(store: ContextStore) -> None:
    record = ContextRecord(run_id="s1", text_payload="red apple", embed_text="")
    store.add(record)
    assert store.records()[0].embedding is not None  # add embedded its text

    store.reembed(HashingEmbedder(12), progress=False)

    [after] = store.records()
    assert after.embedding is not None
    assert np.allclose(after.embedding, HashingEmbedder(12).embed_texts(["red apple"])[0])


@pytest.mark.parametrize("batch_size", [0, -1])
def test_reembed_refuses_a_batch_size_below_one(store: ContextStore, batch_size: int) -> None:
    store.add(text("a"))
    before = store.version()
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        store.reembed(HashingEmbedder(12), batch_size=batch_size, progress=False)
    assert store.version() == before and store.dimension == 32


class AsyncOnly(Embeddings):
    """A LangChain embedding implemented only through its async methods."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError

    def embed_query(self, text: str) -> list[float]:
        raise NotImplementedError

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(map(float, HashingEmbedder(6).embed_texts([t])[0])) for t in texts]

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]


def test_an_async_only_langchain_embedding_works(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=AsyncOnly())
    store.add([text("red apple"), text("blue sky")])
    assert store.dimension == 6
    assert store.search("apple", k=1)[0].record.text == "red apple"


async def test_an_async_only_langchain_embedding_works_inside_an_event_loop(store_path: str) -> None:
    asyncio.get_running_loop()
    store = ContextStore.open(store_path, embedder=AsyncOnly())
    store.add(text("red apple"))  # the sync call runs the coroutine on a loop of its own
    assert store.search("apple", k=1)[0].record.text == "red apple"


class QueryOrText(BaseEmbedding):
    def _get_query_embedding(self, query: str) -> list[float]:
        return [1.0, 0.0, 0.0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return [0.0, 1.0, 0.0]


def test_llama_index_documents_use_text_embeddings_and_searches_query_embeddings(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=QueryOrText())
    store.add(text("doc"))
    assert np.array_equal(store.records()[0].embedding, [0.0, 1.0, 0.0])  # type: ignore[arg-type]
    assert np.array_equal(store.embedder.embed_query("q"), [1.0, 0.0, 0.0])  # type: ignore[union-attr]


def test_a_lance_embedding_given_to_open_records_the_embedder_it_wraps(store_path: str) -> None:
    store = ContextStore.open(store_path, embedder=LanceEmbedding(HashingEmbedder(8)))
    store.add(text("red apple"))
    assert store.embedder is not None and store.embedder.name == "hashing"
    again = ContextStore.open(store_path, embedder=HashingEmbedder(8))  # no mismatch
    assert again.search("apple", k=1)[0].record.text == "red apple"
    assert ContextStore.open(store_path).embedder is not None  # the recorded embedder runs here
    assert b"LanceEmbedding" not in lance.dataset(store_path).schema.metadata[b"lance_context.embedder"]


class FakeModel:
    """Stands in for a loaded sentence-transformers model; records what it was asked to encode."""

    max_seq_length = 256

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str], **_: object) -> np.ndarray:
        self.seen.extend(texts)
        return np.ones((len(texts), 384), dtype=np.float32)


def test_the_default_models_input_bound_skips_padding_the_tokenizer_drops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = FakeModel()
    monkeypatch.setattr(_embedders, "_MODEL_CACHE", {("all-MiniLM-L6-v2", None): model})
    padded = [" " * 9000 + "hello world", "\u200b" * 9000 + "hello world", "\n" * 5_000_000 + "x"]
    SentenceTransformerEmbedder(onnx=False).embed_texts([*padded, "word " * 10_000])
    assert [t.split() for t in model.seen[:3]] == [["hello", "world"], ["hello", "world"], ["x"]]
    assert all(len(t) <= 2 * 8192 for t in model.seen)
    assert model.seen[3].count("word") == 8192 // 4  # 8,192 kept characters, as documented


def test_the_real_default_model_embeds_a_padded_text_like_the_short_one() -> None:
    vectors = SentenceTransformerEmbedder().embed_texts(["hello world", " " * 9000 + "hello world"])
    assert float(vectors[0] @ vectors[1]) > 0.999


def test_one_text_gets_the_vector_encode_gives_without_going_through_encode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On torch's path, one text skips ``encode``'s per-call overhead; the vector is the same."""
    embedder = SentenceTransformerEmbedder(onnx=False)
    model = embedder._load()
    texts = ["hello world", "", "naïve café ☕ 東京", "word " * 1000, "\u200b" * 100 + "x"]
    expected = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    calls: list[object] = []
    real = model.encode
    monkeypatch.setattr(model, "encode", lambda *a, **k: calls.append(a) or real(*a, **k))
    one_by_one = np.vstack([embedder.embed_texts([t]) for t in texts])
    assert calls == [] and one_by_one.dtype == np.float32 and one_by_one.shape == (5, 384)
    np.testing.assert_allclose(one_by_one, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(one_by_one, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.embed_texts(texts), expected, atol=1e-6)
    assert len(calls) == 1  # several texts go through encode, batched
    raw = SentenceTransformerEmbedder(normalize=False, onnx=False).embed_texts(["hello world"])
    unnormalized = real(
        ["hello world"], normalize_embeddings=False, convert_to_numpy=True, show_progress_bar=False
    )
    np.testing.assert_allclose(raw, unnormalized, atol=1e-6)


def test_the_default_model_skips_the_pooler_its_vectors_never_read() -> None:
    """The loaded model computes no pooler output, and embeds exactly as the model as shipped."""
    from sentence_transformers import SentenceTransformer

    embedder = SentenceTransformerEmbedder()
    assert embedder._load()[0].auto_model.pooler is None
    path = _embedders._bundled_model_path(embedder.model)
    assert path is not None  # the bundled model, as in every other test here
    shipped = SentenceTransformer(path, device="cpu")
    assert shipped[0].auto_model.pooler is not None
    texts = ["hello world", "What did Caroline research?", "naïve café ☕ 東京"]
    expected = shipped.encode(
        texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    np.testing.assert_allclose(embedder.embed_texts(texts), expected, atol=1e-6)
    np.testing.assert_allclose(np.vstack([embedder.embed_texts([t]) for t in texts]), expected, atol=1e-5)


def test_a_model_whose_vector_reads_the_pooler_keeps_it() -> None:
    def model(output: str) -> list[Any]:
        text = {"method": "forward", "method_output_name": output}
        return [SimpleNamespace(modality_config={"text": text}, auto_model=SimpleNamespace(pooler=object()))]

    kept, dropped = model("pooler_output"), model("last_hidden_state")
    _torch_model.skip_unread_pooler(kept)
    _torch_model.skip_unread_pooler(dropped)
    assert kept[0].auto_model.pooler is not None and dropped[0].auto_model.pooler is None
    _torch_model.skip_unread_pooler([SimpleNamespace()])  # a module without the attributes: left alone


def test_a_model_with_a_prompt_or_a_cut_dimension_goes_through_encode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = SentenceTransformerEmbedder()._load()
    assert _torch_model.direct_ok(model)
    monkeypatch.setattr(model, "default_prompt_name", "query")
    assert not _torch_model.direct_ok(model)  # encode would prepend the prompt
    monkeypatch.setattr(model, "default_prompt_name", None)
    monkeypatch.setattr(model, "truncate_dim", 64)
    assert not _torch_model.direct_ok(model)  # encode would cut the vector


def test_reembed_names_the_record_the_new_embedder_got_wrong(store: ContextStore) -> None:
    records = [text("a"), text("b"), text("c")]
    store.add(records)
    before = store.version()
    with pytest.raises(EmbeddingError, match=rf"NaN or infinity for record {records[1].id!r}"):
        store.reembed(BadRow(8), progress=False)
    assert store.version() == before and store.dimension == 32


class _Named(HashingEmbedder):
    """A hashing embedder under another model name (the same dimension, another vector space)."""

    @property
    def name(self) -> str:
        return "other-model"


def test_a_writer_opened_before_another_reembeds_refuses_to_mix_models(tmp_path: Path) -> None:
    path = str(tmp_path / "s.lance")
    same_size = ContextStore.open(path, embedder=HashingEmbedder(8))
    same_size.add(ContextRecord.from_content("hello", run_id="s"))
    other_size = ContextStore.open(path, embedder=HashingEmbedder(8))
    plain = ContextStore.open(path, embedder=None)
    ContextStore.open(path, embedder=HashingEmbedder(8)).reembed(_Named(8))
    before = same_size.version()
    with pytest.raises(EmbedderMismatchError, match="re-embedded by another writer"):
        same_size.add(ContextRecord.from_content("old model's vector", run_id="s"))
    ContextStore.open(path, embedder=_Named(8)).reembed(HashingEmbedder(6))
    with pytest.raises(EmbedderMismatchError, match="now holds 'hashing' \\(6 dimensions\\)"):
        other_size.upsert(ContextRecord.from_content("would not fit", run_id="s"))
    assert ContextStore.open(path, embedder=None).count() == 1
    assert before < ContextStore.open(path, embedder=None).version()  # only the two reembeds wrote
    plain.add(ContextRecord.from_content("no vector", run_id="s"))  # a write without vectors is fine
    assert ContextStore.open(path, embedder=HashingEmbedder(6)).count() == 2


def test_opening_a_store_without_vectors_with_an_embedder_says_how_to_add_them(tmp_path: Path) -> None:
    path = str(tmp_path / "plain.lance")
    ContextStore.open(path, embedder=None).add(ContextRecord.from_content("hi", run_id="s"))
    with pytest.raises(EmbedderMismatchError, match="open it with embedder=None and call store.reembed"):
        ContextStore.open(path, embedder=HashingEmbedder(8))
    store = ContextStore.open(path, embedder=None)
    store.reembed(HashingEmbedder(8))  # the advice works
    assert ContextStore.open(path, embedder=HashingEmbedder(8)).records("s")[0].embedding is not None
