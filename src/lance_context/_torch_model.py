"""The torch side of a sentence-transformers model: loading it quietly and one text's forward pass."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._wrapped_embedders import Matrix

__all__ = ["direct_ok", "forward_one", "quietly", "skip_unread_pooler"]


def quietly(load: Any) -> Any:
    """Load a model without transformers' weight-loading progress bar on stderr (restored after)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return load()
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return load()
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def skip_unread_pooler(model: Any) -> None:
    """Stop a loaded model computing a pooler output that its sentence vector never reads.

    A BERT model such as all-MiniLM-L6-v2 ends with a pooler (a dense layer and a tanh
    over the first token) whose output only ``pooler_output`` holds; the model's first
    module hands the mean pooling ``last_hidden_state``, so the pooler's work is thrown
    away: about 0.25 ms of each one-text embedding here (~2 %). Left alone for any model
    whose first module reads another output. The vectors are the same (pinned by a test).
    """
    first = model[0] if len(model) else None
    modalities = getattr(first, "modality_config", None)
    text = modalities.get("text") if isinstance(modalities, dict) else None
    inner: Any = getattr(first, "auto_model", None)
    if (
        isinstance(text, dict)
        and text.get("method") == "forward"
        and text.get("method_output_name") == "last_hidden_state"
        and getattr(inner, "pooler", None) is not None
    ):
        inner.pooler = None


def direct_ok(model: Any) -> bool:
    """Whether ``encode`` of one text amounts to ``_forward_one`` for ``model``.

    It does for a model on the CPU with no default prompt and no truncated dimension
    (``encode`` would add the prompt, cut the vector, or move the inputs).
    """
    return (
        callable(getattr(model, "preprocess", None))
        and getattr(model, "default_prompt_name", "unknown") is None
        and getattr(model, "truncate_dim", "unknown") is None
        and str(getattr(model, "device", "unknown")) == "cpu"
    )


def forward_one(model: Any, text: str, normalize: bool) -> Matrix:
    """The vector of one text, from the model's forward pass alone.

    ``encode`` spends about 1 ms of each call (~11 ms for a short text here) outside the
    model: it finds the device by walking every parameter and sets every module to eval
    mode, which the cached model already is. A search embeds one query and a chat
    adapter one message per add, so those calls come here; the vector is the one
    ``encode`` gives (pinned by a test).
    """
    import torch

    with torch.inference_mode():
        output = model(model.preprocess([text]))["sentence_embedding"]
        if normalize:
            output = torch.nn.functional.normalize(output, p=2, dim=1)
        return np.asarray(output.float().numpy(), dtype=np.float32)
