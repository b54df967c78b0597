"""Fusion of ranked channels: z-score, min-max and RRF, weights, depth, next-turn support."""

from __future__ import annotations

import math

import pytest

from lance_context._fusion import FusedScores, FusionOptions, fuse, normalise, rrf, with_next_turn

TEXT = [("a", 12.0), ("b", 6.0), ("c", 3.0)]
VECTOR = [("c", 0.9), ("b", 0.8), ("d", 0.1)]


def keys(fused: FusedScores, k: int | None = None) -> list[str]:
    return [key for key, _ in fused.ranked(k)]


def test_zscore_normalisation_and_floor() -> None:
    scores, floor = normalise(TEXT, "zscore")
    mean, std = 7.0, math.sqrt(((12 - 7) ** 2 + (6 - 7) ** 2 + (3 - 7) ** 2) / 3)
    assert scores["a"] == pytest.approx((12 - mean) / std)
    assert floor == pytest.approx((3 - mean) / std)  # an absent record scores as the lowest hit
    assert floor == pytest.approx(scores["c"])


def test_minmax_normalisation() -> None:
    scores, floor = normalise(TEXT, "minmax")
    assert scores == pytest.approx({"a": 1.0, "b": 1 / 3, "c": 0.0})
    assert floor == 0.0


def test_equal_scores_and_single_hits_map_to_one() -> None:
    assert normalise([("a", 2.0)], "zscore") == ({"a": 1.0}, 0.0)
    assert normalise([("a", 2.0), ("b", 2.0)], "minmax") == ({"a": 1.0, "b": 1.0}, 0.0)
    assert normalise([], "zscore") == ({}, 0.0)


def test_repeated_ids_keep_their_first_score() -> None:
    scores, _ = normalise([("a", 3.0), ("b", 1.0), ("a", 0.0)], "minmax")
    assert scores == {"a": 1.0, "b": 0.0}


def test_non_finite_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="not finite"):
        normalise([("a", float("nan"))], "zscore")


def test_default_fusion_weights_text_over_vector() -> None:
    fused = fuse({"text": TEXT, "vector": VECTOR})
    assert keys(fused) == ["a", "b", "c", "d"]
    t, t_floor = normalise(TEXT, "zscore")
    v, _ = normalise(VECTOR, "zscore")
    assert fused.scores["d"] == pytest.approx(0.8 * t_floor + 0.2 * v["d"])
    assert fused.scores["a"] == pytest.approx(0.8 * t["a"] + 0.2 * normalise(VECTOR, "zscore")[1])


def test_weights_decide_which_channel_leads() -> None:
    only_vector = FusionOptions(weights={"vector": 1.0})
    assert keys(fuse({"text": TEXT, "vector": VECTOR}, only_vector)) == ["c", "b", "d"]
    balanced = FusionOptions(weights={"text": 0.5, "vector": 0.5}, method="minmax")
    fused = fuse({"text": TEXT, "vector": VECTOR}, balanced)
    assert fused.scores["b"] == pytest.approx(0.5 * (1 / 3) + 0.5 * (0.7 / 0.8))


def test_depth_cuts_each_channel_before_normalising() -> None:
    fused = fuse({"text": TEXT, "vector": VECTOR}, FusionOptions(depth=1))
    assert set(fused.scores) == {"a", "c"}


def test_a_confident_channel_wins_over_an_unsure_one() -> None:
    # BM25 is sure of "x" (far ahead); the vector channel barely separates its hits.
    text = [("x", 20.0), ("y", 2.0), ("z", 1.9)]
    vector = [("y", 0.52), ("z", 0.51), ("x", 0.50)]
    assert keys(fuse({"text": text, "vector": vector}), 1) == ["x"]
    assert keys(rrf({"text": text, "vector": vector}), 1) == ["y"]  # rank-only fusion loses it


def test_empty_channels() -> None:
    assert fuse({}).ranked() == []
    assert keys(fuse({"text": [], "vector": VECTOR})) == ["c", "b", "d"]


def test_rrf_matches_the_formula_and_weights() -> None:
    fused = rrf({"text": TEXT, "vector": VECTOR}, k=60)
    assert fused.scores["b"] == pytest.approx(1 / 62 + 1 / 62)
    assert fused.scores["d"] == pytest.approx(1 / 63)
    weighted = rrf({"text": TEXT, "vector": VECTOR}, k=0, weights={"text": 2.0})
    assert weighted.scores == pytest.approx({"a": 2.0, "b": 1.0, "c": 2 / 3})
    assert fuse({"text": TEXT}, FusionOptions(method="rrf", rrf_k=0)).scores["a"] == pytest.approx(0.8)


def test_ties_keep_channel_order() -> None:
    fused = rrf({"text": [("a", 1.0), ("b", 0.5)], "vector": [("b", 1.0), ("a", 0.5)]})
    assert keys(fused) == ["a", "b"]


def test_next_turn_support_lifts_a_turn_before_a_strong_one() -> None:
    fused = FusedScores({"t1": 1.0, "t3": 0.9, "t4": 0.0}, floor=-1.0, order=("t1", "t3", "t4"))
    next_of = {"t1": "t9", "t2": "t3", "t3": "t4", "t4": None}
    supported = with_next_turn(fused, next_of, 0.5)
    assert supported.scores == pytest.approx({"t1": 1.0 - 0.5, "t2": -1.0 + 0.45, "t3": 0.9, "t4": 0.0 - 0.5})
    assert keys(supported) == ["t3", "t1", "t4", "t2"]
    assert with_next_turn(fused, next_of, 0.0) is fused


def test_turns_missing_from_the_order_keep_their_score() -> None:
    fused = FusedScores({"a": 1.0}, floor=0.0, order=("a",))
    assert with_next_turn(fused, {}, 0.3).scores == {"a": 1.0}


@pytest.mark.parametrize(
    "options",
    [
        {"method": "cosine"},
        {"depth": 0},
        {"weights": {"text": -1.0}},
        {"weights": {"text": float("inf")}},
        {"rrf_k": -1},
        {"next_turn_weight": -0.1},
    ],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FusionOptions(**options)  # type: ignore[arg-type]


def test_options_are_frozen() -> None:
    options = FusionOptions()
    with pytest.raises(AttributeError):
        options.depth = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"vec": 1.0}, r"unknown channels \['vec'\]"),
        ({"text": 1.0, "bm25": 1.0}, r"unknown channels \['bm25'\]"),
        ({"text": 0.0, "vector": 0.0}, "all zero ranks nothing"),
        ({}, "all zero ranks nothing"),
    ],
)
def test_weights_that_would_rank_nothing_are_refused(weights: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FusionOptions(weights=weights)
    assert (
        FusionOptions(weights={"text": 0.0, "vector": 1.0}).weights["vector"] == 1.0
    )  # one channel is enough
