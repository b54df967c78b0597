"""Embedders that misbehave on purpose inside Ray workers.

Ray sends them to workers by value (registered below), so workers need not import ``tests``.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import ray.cloudpickle

from lance_context import ContextRecord, ContextStore, HashingEmbedder


class _Hashing:
    """A hashing embedder under its own name (the store records it)."""

    label = "test-hashing"

    def __init__(self, dimension: int, marker: str, flag: str) -> None:
        self.inner = HashingEmbedder(dimension)
        self.marker = marker
        self.flag = flag

    @property
    def name(self) -> str:
        return self.label

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def hit(self, texts: Sequence[str]) -> bool:
        return any(self.marker in t for t in texts)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_texts(texts)


class KillsItsWorkerOnce(_Hashing):
    """SIGKILLs the process embedding ``marker`` the first time (``flag`` records that it did)."""

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if self.hit(texts):
            try:
                os.close(os.open(self.flag, os.O_CREAT | os.O_EXCL))  # once, whichever worker it is
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().embed_texts(texts)


class AlwaysKillsItsWorker(_Hashing):
    """SIGKILLs the process embedding ``marker`` every time, counting the attempts in ``flag``."""

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if self.hit(texts):
            with open(self.flag, "a") as attempts:
                attempts.write("x")
            os.kill(os.getpid(), signal.SIGKILL)
        return super().embed_texts(texts)


class FailsOn(_Hashing):
    """Raises on ``marker``, as a model that breaks on one input would."""

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if self.hit(texts):
            Path(self.flag).write_text("failed")
            raise RuntimeError(f"the model broke on {self.marker!r}")
        return super().embed_texts(texts)


class AppendsMeanwhile(_Hashing):
    """The first time it embeds, another writer appends a record to the store (a concurrent write)."""

    label = "test-hashing-new"

    def __init__(self, dimension: int, marker: str, flag: str, uri: str, record_id: str) -> None:
        super().__init__(dimension, marker, flag)
        self.uri = uri
        self.record_id = record_id

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        try:
            os.close(os.open(self.flag, os.O_CREAT | os.O_EXCL))  # only the first call of any worker
        except FileExistsError:
            pass
        else:
            other: Any = ContextStore.open(self.uri, embedder=None)
            other.add(
                ContextRecord.from_content("added during the re-embed", run_id="late", id=self.record_id)
            )
        return super().embed_texts(texts)


ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
