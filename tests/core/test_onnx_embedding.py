"""The default embedder's ONNX Runtime path for a query or a chat turn: the same vectors, or torch's path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lance_context import SentenceTransformerEmbedder, _embedders, _onnx

TEXTS = ["hello world", "", "naïve café ☕ 東京", "word " * 1000, "What did Caroline research?"]
KEY = ("all-MiniLM-L6-v2", None)


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """An empty export cache and no twin made yet (the loaded torch model is kept)."""
    monkeypatch.setenv("LANCE_CONTEXT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(_embedders, "_TWINS", {})
    yield tmp_path / "cache"


def expected(texts: list[str]) -> np.ndarray:
    """What torch's path gives, batched through ``encode``."""
    return SentenceTransformerEmbedder(onnx=False).embed_texts(texts)


def one_by_one(embedder: SentenceTransformerEmbedder, texts: list[str]) -> np.ndarray:
    return np.vstack([embedder.embed_texts([t]) for t in texts])


def test_a_single_text_goes_through_onnx_runtime_to_the_vector_torch_gives(fresh: Path) -> None:
    embedder = SentenceTransformerEmbedder()
    vectors = one_by_one(embedder, TEXTS)
    assert isinstance(_embedders._TWINS[KEY], _onnx.OnnxTwin)
    np.testing.assert_allclose(vectors, expected(TEXTS), atol=1e-5)
    assert vectors.dtype == np.float32
    [export] = list(fresh.glob("*.onnx"))
    assert export.stat().st_size > 1_000_000  # the graph with its weights, kept for the next process
    assert export.with_suffix(".json").exists()  # its tokenizer and inputs, written once it agreed
    raw = SentenceTransformerEmbedder(normalize=False).embed_texts(["hello world"])
    np.testing.assert_allclose(raw, SentenceTransformerEmbedder(normalize=False, onnx=False).embed_texts(
        ["hello world"]), atol=1e-5)  # fmt: skip


def test_a_damaged_export_in_the_cache_is_made_again(fresh: Path) -> None:
    SentenceTransformerEmbedder().embed_texts(["warm"])
    [export] = list(fresh.glob("*.onnx"))
    export.write_bytes(b"not a model")
    _embedders._TWINS.clear()
    vectors = one_by_one(SentenceTransformerEmbedder(), TEXTS[:3])
    assert isinstance(_embedders._TWINS[KEY], _onnx.OnnxTwin)
    assert export.stat().st_size > 1_000_000
    np.testing.assert_allclose(vectors, expected(TEXTS[:3]), atol=1e-5)


def test_an_export_that_disagrees_with_torch_is_not_used(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_onnx, "TOLERANCE", -1.0)  # no vector can agree
    vectors = one_by_one(SentenceTransformerEmbedder(), TEXTS[:2])
    assert _embedders._TWINS[KEY] is None
    assert not list(fresh.glob("*.json"))  # nothing unchecked is kept for another process
    np.testing.assert_allclose(vectors, expected(TEXTS[:2]), atol=1e-5)


def test_without_onnx_runtime_or_when_turned_off_torch_embeds(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    SentenceTransformerEmbedder(onnx=False).embed_texts(["hello"])
    assert KEY not in _embedders._TWINS and not fresh.exists()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    vectors = one_by_one(SentenceTransformerEmbedder(), TEXTS[:2])
    assert _embedders._TWINS[KEY] is None and not fresh.exists()
    np.testing.assert_allclose(vectors, expected(TEXTS[:2]), atol=1e-5)


def test_an_unwritable_cache_folder_still_gets_the_onnx_path(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = fresh.parent / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("LANCE_CONTEXT_CACHE", str(blocked / "cache"))
    vectors = one_by_one(SentenceTransformerEmbedder(), TEXTS[:2])
    assert isinstance(_embedders._TWINS[KEY], _onnx.OnnxTwin)
    assert blocked.read_text() == "not a folder"
    np.testing.assert_allclose(vectors, expected(TEXTS[:2]), atol=1e-5)


def test_the_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LANCE_CONTEXT_CACHE", str(tmp_path / "mine"))
    assert _onnx.cache_folder() == tmp_path / "mine"
    monkeypatch.delenv("LANCE_CONTEXT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _onnx.cache_folder() == tmp_path / "xdg" / "lance-context"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _onnx.cache_folder() == tmp_path / "home" / ".cache" / "lance-context"


def test_a_new_process_embeds_one_text_from_the_cache_without_importing_torch(fresh: Path) -> None:
    """The export is found again by the model folder's files: no torch, no sentence-transformers."""
    SentenceTransformerEmbedder().embed_texts(["warm the cache"])
    script = (
        "import json, sys\n"
        "from lance_context import SentenceTransformerEmbedder\n"
        "vector = SentenceTransformerEmbedder().embed_texts([sys.argv[1]])\n"
        "loaded = sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules)\n"
        "print(json.dumps({'vector': vector[0].tolist(), 'loaded': loaded}))\n"
    )
    env = {**os.environ, "LANCE_CONTEXT_CACHE": str(fresh)}
    done = subprocess.run(
        [sys.executable, "-c", script, "What did Caroline research?"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    out = json.loads(done.stdout)
    assert out["loaded"] == []
    np.testing.assert_allclose([out["vector"]], expected(["What did Caroline research?"]), atol=1e-5)


def test_a_chat_turns_few_texts_go_through_the_twin_and_a_larger_batch_through_encode(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to TWIN_BATCH texts are padded into one ONNX Runtime call; more go to torch's ``encode``."""
    embedder = SentenceTransformerEmbedder()
    turn = TEXTS[: _embedders.TWIN_BATCH]
    many = [f"message number {n}: " + "word " * (n % 7) for n in range(_embedders.TWIN_BATCH + 1)]
    torch_turn, alone = expected(turn), one_by_one(embedder, many)
    model = embedder._load()
    calls: list[int] = []
    real = model.encode
    monkeypatch.setattr(model, "encode", lambda texts, **k: calls.append(len(texts)) or real(texts, **k))
    np.testing.assert_allclose(embedder.embed_texts(turn), torch_turn, atol=1e-5)
    assert calls == []
    np.testing.assert_allclose(embedder.embed_texts(many), alone, atol=1e-5)
    assert calls == [len(many)]


def test_an_export_of_an_older_version_of_the_model_folder_is_deleted(fresh: Path) -> None:
    SentenceTransformerEmbedder().embed_texts(["warm"])
    [export] = list(fresh.glob("folder-*.onnx"))
    older = export.with_name(export.stem.rsplit("-", 1)[0] + "-0123456789abcdef01234567")
    other = fresh / "folder-aaaaaaaaaaaa-0123456789abcdef01234567.onnx"  # another model folder's
    for path in (older.with_suffix(".onnx"), older.with_suffix(".json"), other):
        path.write_bytes(b"an older export")
    _embedders._TWINS.clear()
    export.with_suffix(".json").unlink()  # as if this export had never been made
    SentenceTransformerEmbedder().embed_texts(["again"])
    assert sorted(p.name for p in fresh.iterdir()) == sorted(
        [export.name, export.with_suffix(".json").name, other.name]
    )
