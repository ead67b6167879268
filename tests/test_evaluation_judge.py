"""Judge verdict parsing, position bias, Cohen's kappa, and the judge on the tiny model."""

from __future__ import annotations

import math

import pytest

from llmlab.evaluation import judge as J
from llmlab.tasks import judging


@pytest.mark.parametrize("reply,expected", [("4", "4"), ("Score: 5/5", "5"), ("I'd give it a 2.", "2"),
                                            ("great answer!", None), ("10", None), ("", None), ("3.5", None)])
def test_parse_score(reply, expected):
    assert J.parse_score(reply) == expected


@pytest.mark.parametrize("reply,expected", [("A", "A"), ("Answer B is better.", "B"), ("B.", "B"),
                                            ("Both A and B are fine", None), ("neither", None), ("", None)])
def test_parse_preference(reply, expected):
    assert J.parse_preference(reply) == expected


def test_parse_rejects_non_text():
    with pytest.raises(TypeError, match="reply must be a str, got NoneType"):
        J.parse_score(None)


def test_position_bias():
    bias = J.position_bias(["A", "A", "B", None], ["B", "A", "A", "A"])
    assert bias.pairs == 4 and bias.consistent == 2 and bias.consistency == 0.5
    assert bias.unparsable == 1
    assert bias.first_slot_share == pytest.approx(5 / 7)
    always_first = J.position_bias(["A"] * 5, ["A"] * 5)
    assert always_first.consistency == 0 and always_first.first_slot_share == 1.0
    with pytest.raises(ValueError, match="original and swapped must have the same length, got 2 and 1"):
        J.position_bias(["A", "B"], ["A"])
    with pytest.raises(ValueError, match="original verdicts must be 'A', 'B' or None, got 'C'"):
        J.position_bias(["C"], ["A"])


def test_cohens_kappa():
    assert J.cohens_kappa([1, 2, 3, 1], [1, 2, 3, 1]) == 1.0
    # 2x2 table [[20, 5], [10, 15]]: p_o = 0.7, p_e = 0.5*0.6 + 0.5*0.4 = 0.5, kappa = 0.4
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert J.cohens_kappa(a, b) == pytest.approx(0.4)
    assert J.cohens_kappa(["A", "B", "A", "B"], ["B", "A", "B", "A"]) == pytest.approx(-1.0)
    assert math.isnan(J.cohens_kappa(["A", "A"], ["A", "A"]))


def test_weighted_kappa_matches_sklearn_and_weighs_distance():
    from sklearn.metrics import cohen_kappa_score

    a, b = [1, 2, 3, 4, 5, 3, 2, 4, 5, 1], [1, 3, 3, 5, 4, 2, 2, 4, 5, 2]
    for weights in ("linear", "quadratic"):
        assert J.weighted_kappa(a, b, range(1, 6), weights) == pytest.approx(cohen_kappa_score(a, b, weights=weights))
    near, far = [1, 2, 3, 4, 5, 5], [1, 2, 3, 4, 5, 1]
    truth = [1, 2, 3, 4, 5, 4]
    assert J.weighted_kappa(near, truth, range(1, 6)) > J.weighted_kappa(far, truth, range(1, 6))
    assert J.cohens_kappa(near, truth) == pytest.approx(J.cohens_kappa(far, truth))  # plain kappa cannot tell
    assert J.weighted_kappa([3, 3, 3], [1, 4, 5], range(1, 6)) == pytest.approx(0.0)  # a constant rater: chance
    assert math.isnan(J.weighted_kappa([2, 2], [2, 2], range(1, 6)))
    with pytest.raises(ValueError, match="rater_b"):
        J.weighted_kappa([1, 2], [1, 6], range(1, 6))
    with pytest.raises(ValueError, match="weights"):
        J.weighted_kappa([1, 2], [1, 2], range(1, 6), "cubic")
    with pytest.raises(ValueError, match="rater_a must have at least one item"):
        J.cohens_kappa([], [])


def test_prompts_and_bad_input():
    assert "Question: q" in J.score_prompt("q", "x") and "Answer B: y" in J.pair_prompt("q", "x", "y")
    with pytest.raises(ValueError, match="answer must be a non-empty str"):
        J.score_prompt("q", " ")


def test_judges_on_the_tiny_model(tiny):
    model, tokenizer = tiny
    verdict = J.judge_score(model, tokenizer, "What is 2 + 2?", "4", max_new_tokens=3)
    assert isinstance(verdict.reply, str) and verdict.value in (None, *J.SCORES)
    assert J.unparsable_count([verdict, J.Verdict("x", None), J.Verdict("A", "A")]) == (not verdict.parsed) + 1
    side, probs = J.judge_pair_logprob(model, tokenizer, "q?", "x", "y")
    assert side in J.SIDES and set(probs) == set(J.SIDES)
    score, probs = J.judge_score_logprob(model, tokenizer, "q?", "x")
    assert score in J.SCORES and len(probs) == 5


def test_shipped_labels():
    labels = judging.load_labels()
    assert len(labels) >= 16
    for item in labels:
        assert item.human_preference == ("A" if item.human_score_a > item.human_score_b else "B")
        assert {item.human_score_a, item.human_score_b} <= {1, 2, 3, 4, 5}
    share_a = sum(item.human_preference == "A" for item in labels) / len(labels)
    assert 0.3 <= share_a <= 0.7  # the better answer is not always in the same slot


def test_run_pair_judge_with_a_judge_that_always_picks_slot_a():
    items = judging.load_labels()
    run = J.run_pair_judge(lambda q, a, b: "A", items)
    assert run.bias.first_slot_share == 1.0 and run.bias.consistency == 0.0
    assert run.agreement == sum(it.human_preference == "A" for it in items) / len(items)
    assert run.kappa == pytest.approx(0.0)
    oracle = {(it.question, it.a if it.human_preference == "A" else it.b) for it in items}
    perfect = J.run_pair_judge(lambda q, a, b: "A" if (q, a) in oracle else "B", items)
    assert perfect.kappa == 1.0 and perfect.bias.consistency == 1.0 and perfect.bias.first_slot_share == 0.5
    silent = J.run_pair_judge(lambda q, a, b: None, items[:3])
    assert silent.bias.unparsable == 6 and silent.agreement == 0.0
    with pytest.raises(TypeError, match="judge must be a function"):
        J.run_pair_judge("A", items)


def test_weighted_kappa_counts_near_misses_as_partial_agreement():
    a, b = [1, 2, 3, 3], [1, 3, 3, 2]  # by hand, 3 categories: quadratic 1 - .125/.34375 = 7/11, linear 3/7
    assert J.weighted_kappa(a, b, labels=(1, 2, 3)) == pytest.approx(7 / 11)
    assert J.weighted_kappa(a, b, labels=(1, 2, 3), weights="linear") == pytest.approx(3 / 7)
    assert J.cohens_kappa(a, b) == pytest.approx(0.2)  # unweighted: near misses count as full misses
    assert J.weighted_kappa([1, 5], [5, 1]) == pytest.approx(-1.0)
    assert J.weighted_kappa([2, 4, 5], [2, 4, 5]) == 1.0
    assert math.isnan(J.weighted_kappa([3, 3], [3, 3]))
    with pytest.raises(ValueError, match=r"rater_b must only hold labels from \[1, 2, 3, 4, 5\], got 6"):
        J.weighted_kappa([1, 2], [1, 6])
    with pytest.raises(ValueError, match="weights"):
        J.weighted_kappa([1, 2], [1, 2], weights="cubic")
