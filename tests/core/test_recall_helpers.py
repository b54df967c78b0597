"""Recall helpers: next-turn map, ranking with support, matches with their neighbours."""

from __future__ import annotations

import pytest

from lance_context._fusion import FusionOptions
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
