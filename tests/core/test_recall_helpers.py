"""Recall helpers: next-turn map, ranking with support, matches with their neighbours."""

from __future__ import annotations

import random

import pytest

from lance_context._fusion import FusedScores, FusionOptions, TurnOrder
from lance_context._recall import RecallOptions, next_turns, rank_for_recall, with_neighbours

ORDER = [f"t{i}" for i in range(1, 8)]


def test_next_turns() -> None:
    assert next_turns(["a", "b", "c"]) == {"a": "b", "b": "c", "c": None}
    assert next_turns([]) == {}


def test_each_match_brings_its_neighbours_in_conversation_order() -> None:
    groups = with_neighbours([("t5", 3.0), ("t2", 2.0)], ORDER, k=2)
    assert [(g.match, g.turns) for g in groups] == [("t5", ("t4", "t5", "t6")), ("t2", ("t1", "t2", "t3"))]
    assert [g.score for g in groups] == [3.0, 2.0]


def test_k_counts_matches_and_no_turn_is_returned_twice() -> None:
    groups = with_neighbours([("t3", 2.0), ("t4", 1.5), ("t7", 1.0)], ORDER, k=2)
    assert [g.turns for g in groups] == [("t2", "t3", "t4"), ("t5",)]
    turns = [t for g in groups for t in g.turns]
    assert len(turns) == len(set(turns))


def test_edges_of_the_session_and_unknown_ids() -> None:
    groups = with_neighbours([("gone", 9.0), ("t1", 2.0), ("t7", 1.0)], ORDER, k=5, before=2, after=0)
    assert [g.turns for g in groups] == [("t1",), ("t5", "t6", "t7")]


def test_no_neighbours_is_plain_top_k() -> None:
    groups = with_neighbours([("t2", 2.0), ("t3", 1.0), ("t4", 0.5)], ORDER, k=2, before=0, after=0)
    assert [g.turns for g in groups] == [("t2",), ("t3",)]


def test_rank_for_recall_adds_the_next_turn_support() -> None:
    rankings = {"text": [("t4", 10.0), ("t2", 4.0), ("t6", 1.0)], "vector": [("t2", 0.9), ("t4", 0.5)]}
    plain = rank_for_recall(rankings, ORDER, RecallOptions(fusion=FusionOptions(next_turn_weight=0.0)))
    supported = rank_for_recall(rankings, ORDER)
    assert set(plain.scores) == {"t2", "t4", "t6"}
    assert {"t1", "t3", "t5"} <= set(supported.scores)  # turns before a candidate join in
    assert supported.scores["t3"] == pytest.approx(plain.floor + 0.3 * plain.scores["t4"])


@pytest.mark.parametrize("options", [{"k": 0}, {"before": -1}, {"after": -1}])
def test_bad_options_are_refused(options: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        RecallOptions(**options)


def test_a_turn_order_ranks_and_groups_as_the_plain_order() -> None:
    """Recall indexes a conversation once (``TurnOrder``); every result is the plain list's.

    Random channels with tied scores, ids outside the session and every fusion method:
    the ranking (ties in the same order) and the groups are identical.
    """
    rng = random.Random(7)
    for trial in range(300):
        order = [f"t{i}" for i in range(rng.randint(1, 60))]
        indexed = TurnOrder(order)
        assert indexed == next_turns(order)
        rankings = {}
        for channel in ("text", "vector"):
            keys = rng.sample([*order, "gone", "other"], rng.randint(0, min(len(order), 25)))
            scores = [round(rng.random(), rng.choice([1, 6])) for _ in keys]  # ties on purpose
            rankings[channel] = sorted(zip(keys, scores, strict=True), key=lambda hit: -hit[1])
        fusion = FusionOptions(
            method=rng.choice(["zscore", "minmax", "rrf"]), next_turn_weight=rng.choice([0.0, 0.3, 1.0])
        )
        options = RecallOptions(fusion=fusion)
        ranked = rank_for_recall(rankings, order, options).ranked()
        assert rank_for_recall(rankings, indexed, options).ranked() == ranked, trial
        before, after = trial % 3, (trial // 3) % 3
        assert with_neighbours(ranked, indexed, 5, before, after) == with_neighbours(
            ranked, order, 5, before, after
        )


def test_ties_keep_the_candidates_order_also_for_scores_missing_from_it() -> None:
    fused = FusedScores({"b": 1.0, "a": 1.0, "c": 2.0}, 0.0, ("a", "b", "c"))
    assert fused.ranked() == [("c", 2.0), ("a", 1.0), ("b", 1.0)]
    partial = FusedScores({"b": 1.0, "x": 1.0, "a": 1.0}, 0.0, ("a", "b"))  # "x" counts as first
    assert partial.ranked() == [("x", 1.0), ("a", 1.0), ("b", 1.0)]
