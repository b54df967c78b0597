"""Deterministic synthetic data for the benchmark: chat-like texts and clustered vectors.

Vectors are drawn from a mixture of 1,000 random topic directions in 384 dimensions
(the default model's size) plus isotropic noise, then normalised: records of one
topic have cosine ~0.6, unrelated records ~0.0, roughly like sentence embeddings of a
varied corpus. Queries are fresh draws from the same mixture, never stored records.
Everything is seeded, so every run (and every peer) sees the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DIM = 384
TOPICS = 1_000
NOISE = 0.8

# fmt: off
_WORDS = (
    "agent", "plan", "tool", "call", "result", "search", "memory", "context", "user", "assistant",
    "answer", "question", "report", "invoice", "budget", "travel", "flight", "hotel", "weather", "code",
    "test", "deploy", "review", "branch", "error", "fix", "retry", "timeout", "latency", "index",
    "vector", "table", "chart", "image", "summary", "draft", "email", "meeting", "schedule", "project",
    "deadline", "customer", "order", "refund", "shipping", "account", "password", "database", "query", "cache",
    "version", "commit", "merge", "release", "note", "bug", "feature", "design",
)
# fmt: on

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Corpus:
    """Texts, vectors and session ids for ``n`` messages, in append order."""

    texts: list[str]
    vectors: Matrix
    run_ids: list[str]
    roles: list[str]

    def __len__(self) -> int:
        return len(self.texts)


def _centres(seed: int = 7) -> Matrix:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((TOPICS, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return centres


def mixture(n: int, seed: int) -> Matrix:
    """``n`` unit vectors from the topic mixture."""
    rng = np.random.default_rng(seed)
    topics = rng.integers(0, TOPICS, n)
    noise = rng.standard_normal((n, DIM)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    out = _centres()[topics] + NOISE * noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def texts(n: int, seed: int, start: int = 0) -> list[str]:
    """``n`` distinct chat-like messages of 8 to 30 words."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, 31, n)
    picks = rng.integers(0, len(_WORDS), int(lengths.sum()))
    out = []
    at = 0
    for i, length in enumerate(lengths):
        words = [_WORDS[j] for j in picks[at : at + length]]
        at += length
        out.append(f"message {start + i}: " + " ".join(words))
    return out


def corpus(n: int, *, sessions: int, seed: int = 1) -> Corpus:
    """``n`` messages spread round-robin over ``sessions`` sessions (interleaved, as live chats are)."""
    return Corpus(
        texts=texts(n, seed),
        vectors=mixture(n, seed + 1000),
        run_ids=[f"session-{i % sessions:05d}" for i in range(n)],
        roles=["user" if i % 2 == 0 else "assistant" for i in range(n)],
    )


def queries(n: int, seed: int = 99) -> Matrix:
    """Held-out query vectors from the same mixture."""
    return mixture(n, seed)


def exact_top_k(
    vectors: Matrix, query: npt.NDArray[np.float32], k: int, rows: npt.NDArray[np.int64] | None = None
) -> list[int]:
    """Row numbers of the exact cosine top-k (vectors are unit length), optionally among ``rows``."""
    if rows is None:
        scores = vectors @ query
        top = np.argpartition(-scores, k)[:k]
        return [int(i) for i in top[np.argsort(-scores[top])]]
    scores = vectors[rows] @ query
    order = np.argsort(-scores)[:k]
    return [int(rows[i]) for i in order]
