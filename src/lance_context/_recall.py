"""Recall for conversation memory: fused matches, each with its neighbouring turns.

``recall`` answers "what in this session is relevant to this query" with whole
moments of the conversation: each matching turn comes with the turns around it (the
question it answered, the reply it got). These pure helpers hold the parts that do
not touch storage, so the core and every adapter count the same way:

- ``k`` counts *matching turns*. Neighbours come on top, so ``k=5`` with one turn
  on each side returns up to 15 turns. No turn is returned twice: a match that was
  already returned as a neighbour of a better match still counts toward ``k`` and
  brings only its neighbours not yet returned.
- Compare recall figures with plain search only at the same number of *turns*:
  on the LoCoMo development split, 5 matches with ±1 turn (about 13 turns) find an
  evidence turn for 0.85 of questions, where the first 5 turns alone find 0.77.

Example:
    >>> groups = with_neighbours([("t3", 2.0), ("t4", 1.0)], ["t1", "t2", "t3", "t4", "t5"], k=2)
    >>> [g.turns for g in groups]
    [('t2', 't3', 't4'), ('t5',)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral

from ._fusion import FusedScores, FusionOptions, TurnOrder, fuse, with_next_turn
from ._rerank import as_reranker

__all__ = ["RecallGroup", "RecallOptions", "next_turns", "rank_for_recall", "with_neighbours"]


@dataclass(frozen=True)
class RecallOptions:
    """How ``recall`` ranks and what it returns around each match.

    Example:
        >>> RecallOptions(k=3, before=0).after
        1
    """

    k: int = 10
    """Matching turns to return (neighbours do not count toward it)."""

    before: int = 1
    """Turns returned before each match (the question it answered)."""

    after: int = 1
    """Turns returned after each match (the reply it got)."""

    fusion: FusionOptions = field(default_factory=FusionOptions)
    """How the channels are fused, including the next-turn support."""

    reranker: object | None = field(default=None, compare=False)
    """Reorders the best ``rerank_depth`` fused matches by reading query and text
    together: a callable ``(query, texts) -> scores``, a sentence-transformers
    ``CrossEncoder``, a LangChain document compressor or a LlamaIndex node
    postprocessor (see :func:`as_reranker`). None: the fused order."""

    rerank_depth: int = 20
    """How many of the best fused matches the reranker reorders."""

    def __post_init__(self) -> None:
        """Reject impossible counts, fusion options of another type and what cannot rerank."""
        for name, least in (("k", 1), ("before", 0), ("after", 0), ("rerank_depth", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            value = int(value)  # a numpy integer too
            object.__setattr__(self, name, value)
            if value < least:
                raise ValueError(f"{name} must be at least {least}, got {value}")
        if not isinstance(self.fusion, FusionOptions):
            raise ValueError(f"fusion takes a FusionOptions, got {type(self.fusion).__name__}")
        if self.reranker is not None:
            as_reranker(self.reranker)  # TypeError now, not at the first recall


@dataclass(frozen=True)
class RecallGroup:
    """One match and the turns returned with it.

    Attributes:
        match: The id of the matching turn.
        score: Its fused score.
        turns: The ids returned for this match, in conversation order: the match
            and its neighbours, less those a better match already returned (so it
            may be empty, or lack the match itself).
    """

    match: str
    score: float
    turns: tuple[str, ...]


def next_turns(order: Sequence[str]) -> dict[str, str | None]:
    """Each id's following id in one session's conversation order (None for the last)."""
    return {key: (order[i + 1] if i + 1 < len(order) else None) for i, key in enumerate(order)}


def rank_for_recall(
    rankings: Mapping[str, Sequence[tuple[str, float]]],
    order: Sequence[str] | TurnOrder,
    options: RecallOptions | None = None,
) -> FusedScores:
    """Fuse the channels and add the next-turn support, for turns of one session.

    Args:
        rankings: Each channel's hits, best first (``"text"``, ``"vector"``).
        order: The session's turn ids in conversation order (at least the candidates
            and the turns around them), or their :class:`TurnOrder`.
        options: :class:`RecallOptions` defaults when None.
    """
    options = options or RecallOptions()
    fused = fuse(rankings, options.fusion)
    follow = order if isinstance(order, TurnOrder) else next_turns(order)
    return with_next_turn(fused, follow, options.fusion.next_turn_weight)


def with_neighbours(
    ranked: Sequence[tuple[str, float]],
    order: Sequence[str] | TurnOrder,
    k: int,
    before: int = 1,
    after: int = 1,
) -> list[RecallGroup]:
    """The first ``k`` matches, each with up to ``before``/``after`` neighbouring turns.

    Args:
        ranked: Matches, best first (ids missing from ``order`` are skipped).
        order: The session's turn ids in conversation order, or their :class:`TurnOrder`.
        k: How many matches.
        before: Turns before each match.
        after: Turns after each match.

    Returns:
        One group per match, best first (at most ``k``); no turn is in two groups.
    """
    ids: Sequence[str] = order.ids if isinstance(order, TurnOrder) else order
    where = order.position if isinstance(order, TurnOrder) else {key: i for i, key in enumerate(ids)}
    taken: set[str] = set()
    groups: list[RecallGroup] = []
    for key, score in ranked:
        if len(groups) == k:
            break
        if key not in where:
            continue
        at = where[key]
        span = ids[max(0, at - before) : at + after + 1]
        turns = tuple(t for t in span if t not in taken)
        taken.update(turns)
        groups.append(RecallGroup(key, score, turns))
    return groups
