"""A few texts through a sentence-transformers model, run by ONNX Runtime: the same vectors, sooner.

A one-text forward pass of a small model such as all-MiniLM-L6-v2 is mostly torch's
per-operator overhead: about 11 ms here, against about 4 ms for the same graph in ONNX
Runtime, to the same vector (within 1e-6). Queries, one-message adds and a chat turn's
few messages come here (``TWIN_BATCH`` in ``_embedders``); larger batches stay with
``encode`` (bound by matrix products either way, and on a GPU when the model has one).

The loaded model is exported once into a cache folder (``LANCE_CONTEXT_CACHE``, else
``$XDG_CACHE_HOME/lance-context``, else ``~/.cache/lance-context``), with the tokenizer it
uses, and kept only when it embeds every probe text as torch does, alone and padded in
one batch. A model loaded from a folder (the bundled default model) is then found again
by its files' names, sizes and times, so a new process embeds a query or a chat turn
without importing torch or sentence-transformers at all. Without ``onnxruntime`` and
``onnx``, or when the export fails or differs, torch keeps the texts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._wrapped_embedders import Matrix

__all__ = ["OnnxTwin", "cache_folder", "normalized", "onnx_twin"]

#: Bumped when the exported graph or its description changes, so older exports are not reused.
EXPORT_VERSION = "2"
#: Texts an export must embed as torch does: short, empty, non-ASCII, and past the token bound.
PROBES = ("hello world", "", "naïve café ☕ 東京, 12:30 pm!", "What did Caroline research?", "word " * 400)
#: The largest difference allowed between the two paths' vectors, per coordinate.
TOLERANCE = 1e-5
#: The model inputs an export may take, and the tokenizer's encoding field each is read from.
_FIELDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}


def cache_folder() -> Path:
    """Where exported models are kept (see the module's docstring)."""
    configured = os.environ.get("LANCE_CONTEXT_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lance-context"


class OnnxTwin:
    """A model's sentence vectors for a few texts: its tokenizer, then its graph in ONNX Runtime."""

    def __init__(
        self, session: Any, tokenizer: Any, inputs: tuple[str, ...], max_length: int, pad_id: int
    ) -> None:
        """Wrap ``session`` (taking ``inputs``) and ``tokenizer`` (truncating at ``max_length``).

        Texts of a batch are padded to the longest with ``pad_id`` (masked out, as ``encode`` does).
        """
        self._session = session
        self._tokenizer = tokenizer
        self._inputs = inputs
        self._pad_id = pad_id
        self.max_length = max_length
        """The most word pieces the model reads of a text."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The sentence vectors of ``texts``: one float32 row each, as the model outputs them."""
        # one by one: a few texts gain nothing from the tokenizer's thread pool, which would
        # also make it warn in any process forked later
        encodings = [self._tokenizer.encode(text) for text in texts]
        width = max(len(encoding.ids) for encoding in encodings)
        feed = {}
        for name in self._inputs:
            rows = np.full((len(encodings), width), self._pad_id if name == "input_ids" else 0, np.int64)
            for row, encoding in enumerate(encodings):
                values = getattr(encoding, _FIELDS[name])
                rows[row, : len(values)] = values
            feed[name] = rows
        return np.asarray(self._session.run(None, feed)[0], dtype=np.float32)


def onnx_twin(source: str, load: Callable[[], Any | None]) -> OnnxTwin | None:
    """The ONNX Runtime twin of the model at ``source``, or None to keep torch.

    ``load()`` gives the loaded sentence-transformers model (None when one text may not go
    through its forward pass alone); it is called only when no export of a model folder
    is cached. None when ``onnxruntime``, ``onnx`` or ``tokenizers`` is missing, the
    model cannot be exported, or its export embeds a probe text differently from torch.
    """
    try:
        import onnxruntime
        import tokenizers
    except ImportError:
        return None
    folder_key = _folder_key(source)
    if folder_key is not None:
        cached = _read(onnxruntime, tokenizers, folder_key)
        if cached is not None:
            return cached
    model = load()
    if model is None:
        return None
    tokenizer = _tokenizer(tokenizers, model)
    features = model.preprocess(["hello world"])
    inputs = tuple(name for name, value in features.items() if hasattr(value, "numpy"))
    if tokenizer is None or not set(inputs) <= set(_FIELDS):
        return None
    key = folder_key or _model_key(model, source, inputs)
    if folder_key is None:
        cached = _read(onnxruntime, tokenizers, key)
        if cached is not None and _agrees(model, cached):
            return cached
    graph = _export(model, features, inputs)
    if graph is None:
        return None
    try:
        pad_id = int(getattr(model.tokenizer, "pad_token_id", None) or 0)
        twin = OnnxTwin(_session(onnxruntime, graph), tokenizer, inputs, int(model.max_seq_length), pad_id)
    except Exception:  # a graph ONNX Runtime refuses: torch keeps the text
        return None
    if not _agrees(model, twin):
        return None
    about = {
        "inputs": list(inputs),
        "max_length": twin.max_length,
        "pad_id": pad_id,
        "tokenizer": tokenizer.to_str(),
    }
    _write(cache_folder() / f"{key}.onnx", graph)
    _write(cache_folder() / f"{key}.json", json.dumps(about).encode())  # written last: marks it checked
    if folder_key is not None:
        _forget_older(folder_key)
    return twin


def _folder_key(source: str) -> str | None:
    """A name for the export of the model in folder ``source``: its files' names, sizes and times."""
    root = Path(source)
    if not root.is_dir():
        return None
    try:
        files = sorted(
            (str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns)
            for path in root.rglob("*")
            if path.is_file()
            for stat in (path.stat(),)
        )
    except OSError:
        return None
    where = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    what = hashlib.sha256(json.dumps([EXPORT_VERSION, files]).encode()).hexdigest()[:24]
    return f"folder-{where}-{what}"


def _model_key(model: Any, source: str, inputs: tuple[str, ...]) -> str:
    """A name for the export of a model loaded by name: its modules and their configuration."""
    parts: list[object] = [EXPORT_VERSION, source, inputs]
    for module in model:
        config = getattr(getattr(module, "auto_model", None), "config", None)
        parts.append([type(module).__name__, config.to_dict() if config is not None else None])
        parts.append(getattr(module, "get_config_dict", dict)())
    text = json.dumps(parts, sort_keys=True, default=str)
    return "model-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _tokenizer(tokenizers: Any, model: Any) -> Any:
    """The model's fast tokenizer as a plain ``tokenizers.Tokenizer``: truncating, never padding."""
    backend = getattr(getattr(model, "tokenizer", None), "backend_tokenizer", None)
    if backend is None:
        return None
    tokenizer = tokenizers.Tokenizer.from_str(backend.to_str())
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=int(model.max_seq_length))
    return tokenizer


def _read(onnxruntime: Any, tokenizers: Any, key: str) -> OnnxTwin | None:
    """The cached export ``key``, or None when it is missing or damaged."""
    try:
        about = json.loads((cache_folder() / f"{key}.json").read_text())
        graph = (cache_folder() / f"{key}.onnx").read_bytes()
        tokenizer = tokenizers.Tokenizer.from_str(about["tokenizer"])
        inputs = tuple(str(name) for name in about["inputs"])
        if not set(inputs) <= set(_FIELDS):
            return None
        session = _session(onnxruntime, graph)
        return OnnxTwin(session, tokenizer, inputs, int(about["max_length"]), int(about["pad_id"]))
    except Exception:  # missing, unreadable or damaged: exported again
        return None


def _forget_older(key: str) -> None:
    """Delete the exports of earlier versions of the same model folder (its files changed)."""
    prefix = key.rsplit("-", 1)[0] + "-"
    with contextlib.suppress(OSError):
        for path in cache_folder().glob(prefix + "*"):
            if path.stem != key:
                path.unlink(missing_ok=True)


def _write(path: Path, data: bytes) -> None:
    """Keep ``data`` at ``path`` (written whole, then renamed); an unwritable folder is skipped."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
        except OSError:
            os.unlink(temporary)
            raise


def _export(model: Any, features: dict[str, Any], inputs: tuple[str, ...]) -> bytes | None:
    """The ONNX graph of ``model``'s sentence vector, with batch and sequence axes left free."""
    import torch

    constants = {name: value for name, value in features.items() if name not in inputs}

    class Sentence(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.model({**dict(zip(inputs, tensors)), **constants})["sentence_embedding"]
            return out

    try:
        with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            target = Path(folder) / "model.onnx"
            torch.onnx.export(
                Sentence().eval(),
                tuple(features[name] for name in inputs),
                target,
                input_names=list(inputs),
                output_names=["sentence_embedding"],
                dynamic_axes={name: {0: "batch", 1: "sequence"} for name in inputs},
                opset_version=17,
                dynamo=False,
            )
            return target.read_bytes()
    except Exception:  # an architecture the exporter does not take (or no onnx package): torch keeps it
        return None


def _session(onnxruntime: Any, graph: bytes) -> Any:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    options.inter_op_num_threads = 1
    # No busy-waiting between calls: the store's own reads share the cores right after.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def _agrees(model: Any, twin: OnnxTwin) -> bool:
    """Whether ``twin`` gives torch's vector for every probe text, alone and padded in one batch."""
    import torch

    try:
        with torch.inference_mode():
            expected = np.vstack(
                [model(model.preprocess([text]))["sentence_embedding"].float().numpy() for text in PROBES]
            )
        alone = np.vstack([twin.embed([text]) for text in PROBES])
        together = twin.embed(PROBES)
    except Exception:  # a graph ONNX Runtime fails on
        return False
    return all(
        got.shape == expected.shape and np.allclose(got, expected, rtol=0, atol=TOLERANCE)
        for got in (alone, together)
    )


def normalized(vectors: Matrix, normalize: bool) -> Matrix:
    """``vectors`` scaled to unit length when ``normalize`` (as torch's ``normalize`` does)."""
    if not normalize:
        return vectors
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return np.asarray(vectors / norms, dtype=np.float32)
