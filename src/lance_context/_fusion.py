"""Fusing ranked lists from several retrieval channels into one ranking.

Hybrid search runs a vector channel and a full-text (BM25) channel and must merge
their ranked ``(id, score)`` lists. Plain reciprocal-rank fusion (RRF) throws the
scores away and weighs both channels alike, so a weak channel drags a strong one
down: on the LoCoMo development split (``docs/recall.md``) RRF hybrid scored below
BM25 alone. The default here is score-aware: each channel's scores are turned into
z-scores over its own candidates, and the z-scores are mixed with fixed weights
(a convex combination), so a channel that is sure of one hit lifts it and a channel
that is unsure barely moves anything. Every function is pure and deterministic: the
core and every adapter call the same ones.

Example:
    >>> fused = fuse({"text": [("a", 9.0), ("b", 3.0)], "vector": [("b", 0.8), ("a", 0.7)]})
    >>> [key for key, _ in fused.ranked()]
    ['a', 'b']
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Literal

from ._policies import check_int, check_real

__all__ = [
    "FusedScores",
    "FusionOptions",
    "Ranked",
    "TurnOrder",
    "fuse",
    "normalise",
    "rrf",
    "with_next_turn",
]

Ranked = Sequence[tuple[str, float]]
"""One channel's hits, best first: ``(record id, score)`` with larger scores better."""

Method = Literal["zscore", "minmax", "rrf"]


#: The channels a search fuses: BM25 over the indexed text, and the vector index.
CHANNELS = ("text", "vector")


class _Weights(Mapping[str, float]):
    """A read-only mapping of channel to weight that hashes by its contents.

    It compares equal to any mapping with the same items (a plain dict too) and
    shows as a dict does, so options holding it stay hashable, equal and printable
    as before.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, float]) -> None:
        """Hold a copy of ``items``: later changes to the caller's mapping do not reach it."""
        self._items = dict(items)

    def __getitem__(self, key: str) -> float:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return repr(self._items)

    def __reduce__(self) -> tuple[type[_Weights], tuple[dict[str, float]]]:
        return (_Weights, (self._items,))


@dataclass(frozen=True)
class FusionOptions:
    """How channels are fused. The defaults were chosen on the LoCoMo development split.

    Example:
        >>> FusionOptions(method="rrf").rrf_k
        60
    """

    method: Method = "zscore"
    """``zscore`` (default), ``minmax`` or ``rrf``. Measured on the development split
    (997 questions, R@5/R@10, one indexed text for both channels): zscore 0.753/0.844,
    minmax 0.752/0.842, RRF with text weight 3 0.715/0.815, plain RRF 0.656/0.775."""

    weights: Mapping[str, float] = field(default_factory=lambda: {"text": 0.8, "vector": 0.2})
    """Weight of each channel (read-only once built); channels not named here get weight 0. BM25 on the
    indexed text is the stronger channel on conversation (R@5 0.73 against 0.41 for
    MiniLM), and every text weight from 0.6 to 0.8 gave the same overall recall within
    ±0.01 on the development split. 0.7 to 0.8 keep hybrid at or above its better
    channel in every question category; 0.8 also did so with other embedded texts."""

    depth: int = 100
    """Candidates each channel contributes (its top ``depth``); 50 and 100 gave the
    same recall within ±0.01. Both channels cost ~1-2 ms at 100 on a 680-turn session."""

    rrf_k: int = 60
    """The ``k`` of reciprocal-rank fusion, ``1 / (k + rank)``; only for ``rrf``."""

    next_turn_weight: float = 0.3
    """Share of the following turn's fused score added to a turn (see
    :func:`with_next_turn`); only where the caller knows the conversation order.
    0.3 adds about +0.01 R@5 and R@10 on the development split; 0 turns it off."""

    def __post_init__(self) -> None:
        """Reject options that cannot rank anything, and values of the wrong type."""
        if self.method not in ("zscore", "minmax", "rrf"):
            raise ValueError(f"method must be 'zscore', 'minmax' or 'rrf', got {self.method!r}")
        check_int(self, "depth", 1)
        if not isinstance(self.weights, Mapping):
            raise ValueError(
                f"FusionOptions.weights must be a mapping of channel to weight, such as "
                f"{{'text': 0.8, 'vector': 0.2}}, got {self.weights!r}"
            )
        unknown = sorted(str(c) for c in self.weights if c not in CHANNELS)
        if unknown:  # a misspelt channel would weigh 0 and rank nothing, silently
            raise ValueError(f"weights name unknown channels {unknown}: the channels are 'text' and 'vector'")
        if any(
            isinstance(w, bool) or not isinstance(w, Real) or not math.isfinite(w) or w < 0
            for w in self.weights.values()
        ):
            raise ValueError(f"weights must be finite and non-negative numbers, got {self.weights!r}")
        object.__setattr__(self, "weights", _Weights({c: float(w) for c, w in self.weights.items()}))
        if not any(w > 0 for w in self.weights.values()):
            raise ValueError(
                "weights must give 'text' or 'vector' a positive weight (all zero ranks nothing)"
            )
        check_int(self, "rrf_k", 0)
        check_real(self, "next_turn_weight", 0.0)


@dataclass(frozen=True)
class FusedScores:
    """Fused scores of every candidate, and the score of a record no channel returned.

    Attributes:
        scores: Fused score per record id (larger is better).
        floor: What a record found by no channel would score: the weighted sum of
            each channel's score for "not in my candidates".
        order: Candidate ids in first-seen order (by best channel rank), for ties.
    """

    scores: dict[str, float]
    floor: float
    order: tuple[str, ...]

    def ranked(self, k: int | None = None) -> list[tuple[str, float]]:
        """``(id, score)`` best first; ties keep the order the channels gave."""
        scores = self.scores
        keys = [key for key in self.order if key in scores]
        if len(keys) == len(scores):  # every score in ``order``: a stable sort keeps its ties in it
            keys.sort(key=scores.__getitem__, reverse=True)
            ranked = [(key, scores[key]) for key in keys]
        else:
            position = {key: i for i, key in enumerate(self.order)}
            ranked = sorted(scores.items(), key=lambda item: (-item[1], position.get(item[0], 0)))
        return ranked if k is None else ranked[:k]


def normalise(ranked: Ranked, method: Literal["zscore", "minmax"]) -> tuple[dict[str, float], float]:
    """One channel's scores on a common scale, and the value for an absent record.

    ``zscore``: ``(s - mean) / std`` over the list; an absent record scores as the
    list's lowest score would. ``minmax``: ``(s - min) / (max - min)``, absent 0. A
    list whose scores are all equal (or a single hit) maps to 1, absent to 0.

    Args:
        ranked: The channel's ``(id, score)`` pairs; repeated ids keep the first.
        method: ``zscore`` or ``minmax``.

    Returns:
        The normalised score per id, and the floor for ids not in the list.
    """
    return _normalised(_first_scores(ranked), method)


def _normalised(
    scores: dict[str, float], method: Literal["zscore", "minmax"]
) -> tuple[dict[str, float], float]:
    """:func:`normalise` of one channel's first score per id."""
    if not scores:
        return {}, 0.0
    values = list(scores.values())
    low, high = min(values), max(values)
    if high - low <= 1e-12 * max(1.0, abs(high)):
        return dict.fromkeys(scores, 1.0), 0.0
    if method == "minmax":
        return {key: (s - low) / (high - low) for key, s in scores.items()}, 0.0
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {key: (s - mean) / std for key, s in scores.items()}, (low - mean) / std


def rrf(
    rankings: Mapping[str, Ranked], *, k: int = 60, weights: Mapping[str, float] | None = None
) -> FusedScores:
    """(Weighted) reciprocal-rank fusion: ``sum(weight / (k + rank))`` over channels.

    Args:
        rankings: Each channel's hits, best first.
        k: The RRF constant (60 in the original paper).
        weights: Per-channel weight; every channel weighs 1 when None. Channels
            with no (or zero) weight are left out.
    """
    used = {c: r for c, r in rankings.items() if weights is None or weights.get(c, 0.0) > 0}
    scores: dict[str, float] = {}
    for channel, ranked in used.items():
        weight = 1.0 if weights is None else weights[channel]
        for rank, key in enumerate(_first_scores(ranked), start=1):
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    return FusedScores(scores, 0.0, _interleaved([list(_first_scores(r)) for r in used.values()]))


def fuse(rankings: Mapping[str, Ranked], options: FusionOptions | None = None) -> FusedScores:
    """Fuse channels' ranked lists (each cut to ``options.depth``) into one set of scores.

    Args:
        rankings: Channel name (``"text"``, ``"vector"``, ...) to its hits, best first.
        options: Method, weights and depth; :class:`FusionOptions` defaults when None.

    Returns:
        The fused scores; call ``.ranked(k)`` for the top ``k``.
    """
    options = options or FusionOptions()
    cut = {channel: list(ranked)[: options.depth] for channel, ranked in rankings.items()}
    if options.method == "rrf":
        return rrf(cut, k=options.rrf_k, weights=options.weights)
    method: Literal["zscore", "minmax"] = options.method
    fused: dict[str, float] = {}
    floor = 0.0
    channels = [(c, _first_scores(r)) for c, r in cut.items() if options.weights.get(c, 0.0) > 0]
    normalised = [(options.weights[c], *_normalised(scores, method)) for c, scores in channels]
    for weight, _, channel_floor in normalised:
        floor += weight * channel_floor
    order = _interleaved([list(scores) for _, scores in channels])
    for key in order:
        total = 0.0  # channel by channel, as ``sum()`` adds
        for weight, scores, low in normalised:
            total += weight * scores.get(key, low)
        fused[key] = total
    return FusedScores(fused, floor, order)


class TurnOrder(dict[str, "str | None"]):
    """A session's turn ids in conversation order, as each id's following turn.

    The mapping :func:`with_next_turn` takes (a dict: id to the next id, None for the
    last turn), built once per conversation. It also knows each id's position, so the
    turns before a few candidates are found without walking the whole session.

    Example:
        >>> order = TurnOrder(["a", "b", "c"])
        >>> order["a"], order["c"], order.position["b"]
        ('b', None, 1)
    """

    def __init__(self, ids: Sequence[str]) -> None:
        """Order ``ids``, which are distinct (a conversation's turns)."""
        self.ids = list(ids)
        last = len(self.ids) - 1
        super().__init__((key, self.ids[i + 1] if i < last else None) for i, key in enumerate(self.ids))
        self.position = {key: i for i, key in enumerate(self.ids)}


def with_next_turn(fused: FusedScores, next_of: Mapping[str, str | None], weight: float) -> FusedScores:
    """Add ``weight`` times the following turn's fused score to each turn.

    In a conversation the turn that holds an answer is often followed by one that
    the query also matches (a reply that repeats the topic). The following turn's
    score is the fused score when it is a candidate, else ``fused.floor``. Turns
    that come just before a candidate become candidates too (they may now rank).

    Args:
        fused: Scores from :func:`fuse`.
        next_of: For each candidate and each turn before one: the id of the turn
            that follows it in its session, or None for a session's last turn.
            Turns missing from the mapping get no support.
        weight: The share of the following turn's score; 0 returns ``fused``.
    """
    if weight == 0:
        return fused
    scored, floor = fused.scores, fused.floor
    if isinstance(next_of, TurnOrder):  # the turns before candidates, without walking the session
        position, ids = next_of.position, next_of.ids
        earlier = {ids[i - 1] for key in scored if (i := position.get(key))}
        before = sorted(earlier - scored.keys(), key=position.__getitem__)  # conversation order, as below
    else:
        before = [key for key, nxt in next_of.items() if nxt in scored and key not in scored]
    scores: dict[str, float] = {}
    score_of = scored.get
    for key in (*fused.order, *before):
        if key not in next_of:
            scores[key] = scored[key]
            continue
        nxt = next_of[key]
        follower = floor if nxt is None else score_of(nxt, floor)
        scores[key] = score_of(key, floor) + weight * follower
    return FusedScores(scores, floor * (1 + weight), (*fused.order, *before))


def _first_scores(ranked: Ranked) -> dict[str, float]:
    scores: dict[str, float] = {}
    for key, score in ranked:
        if key not in scores:
            if not math.isfinite(score):
                raise ValueError(f"score of {key!r} is not finite: {score!r}")
            scores[key] = float(score)
    return scores


def _interleaved(lists: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """Ids interleaved by rank across channels (rank 1 of each, then rank 2...), each once."""
    seen: dict[str, None] = {}
    for rank in range(max((len(x) for x in lists), default=0)):
        for keys in lists:
            if rank < len(keys):
                seen.setdefault(keys[rank])
    return tuple(seen)
