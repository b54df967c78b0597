"""One text through a sentence-transformers model, run by ONNX Runtime: the same vector, faster.

A one-text forward pass of a small model such as all-MiniLM-L6-v2 is mostly torch's
per-operator overhead: about 11 ms here, against about 4 ms for the same graph in ONNX
Runtime, to the same vector (within 1e-6). Queries and one-message adds embed one text,
so they go through it; batches stay with ``encode`` (bound by matrix products either way).

The loaded model is exported once per machine into a cache folder (``LANCE_CONTEXT_CACHE``,
else ``$XDG_CACHE_HOME/lance-context``, else ``~/.cache/lance-context``) and, on every load,
checked against torch on probe texts before it is used. Without ``onnxruntime`` and
``onnx``, or when the export fails or differs, the torch path is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OnnxForward", "cache_folder", "onnx_forward"]

#: Bumped when the exported graph changes, so older exports are not reused.
EXPORT_VERSION = "1"
#: Texts a loaded export must embed as torch does: short, empty, non-ASCII, and past the token bound.
PROBES = ("hello world", "", "naïve café ☕ 東京, 12:30 pm!", "What did Caroline research?", "word " * 400)
#: The largest difference allowed between the two paths' vectors, per coordinate.
TOLERANCE = 1e-5


def cache_folder() -> Path:
    """Where exported models are kept (see the module's docstring)."""
    configured = os.environ.get("LANCE_CONTEXT_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lance-context"


class OnnxForward:
    """A model's sentence vector for preprocessed features, computed by ONNX Runtime."""

    def __init__(self, session: Any, inputs: tuple[str, ...]) -> None:
        """Wrap ``session``, which takes the feature tensors named ``inputs``."""
        self._session = session
        self._inputs = inputs

    def __call__(self, features: dict[str, Any]) -> np.ndarray:
        """The sentence vectors (float32, one row per text) of ``features`` (torch tensors)."""
        feed = {name: features[name].numpy() for name in self._inputs}
        out: np.ndarray = self._session.run(None, feed)[0]
        return out


def onnx_forward(model: Any, source: str) -> OnnxForward | None:
    """An ONNX Runtime twin of ``model`` (loaded from ``source``), or None to keep torch.

    None when ``onnxruntime`` or ``onnx`` is missing, the model cannot be exported, or
    the export embeds a probe text differently from torch.
    """
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime
    except ImportError:
        return None
    features = model.preprocess(["hello world"])
    inputs = tuple(name for name, value in features.items() if hasattr(value, "numpy"))
    path = cache_folder() / f"{_key(model, source, inputs)}.onnx"
    for fresh in (False, True):
        graph = None if fresh else _read(path)
        if graph is None:
            graph = _export(model, features, inputs)
            if graph is None:
                return None
            _write(path, graph)
        try:
            forward = OnnxForward(_session(onnxruntime, graph), inputs)
        except Exception:  # a damaged or foreign file in the cache: exported again
            continue
        if _agrees(model, forward):
            return forward
    return None


def _key(model: Any, source: str, inputs: tuple[str, ...]) -> str:
    """A name for the export of this model: what it was loaded from, its modules and configuration."""
    import torch

    parts: list[object] = [EXPORT_VERSION, torch.__version__, os.path.abspath(source), inputs]
    for module in model:
        config = getattr(getattr(module, "auto_model", None), "config", None)
        parts.append([type(module).__name__, config.to_dict() if config is not None else None])
        parts.append(getattr(module, "get_config_dict", dict)())
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _write(path: Path, graph: bytes) -> None:
    """Keep ``graph`` at ``path`` (written whole, then renamed); an unwritable folder is skipped."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(graph)
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
            target = Path(folder) / "model.onnx"
            warnings.simplefilter("ignore")
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
    except Exception:  # an architecture the exporter does not take: torch keeps it
        return None


def _session(onnxruntime: Any, graph: bytes) -> Any:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    options.inter_op_num_threads = 1
    # No busy-waiting between calls: the store's own reads share the cores right after.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def _agrees(model: Any, forward: OnnxForward) -> bool:
    """Whether ``forward`` gives torch's vector for every probe text."""
    import torch

    try:
        with torch.inference_mode():
            for text in PROBES:
                features = model.preprocess([text])
                expected = model(dict(features))["sentence_embedding"].float().numpy()
                got = forward(features)
                if got.shape != expected.shape or not np.allclose(got, expected, rtol=0, atol=TOLERANCE):
                    return False
    except Exception:  # a graph ONNX Runtime refuses or fails on
        return False
    return True
