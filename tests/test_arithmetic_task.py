"""Chapter 06's arithmetic word problems: seeded, split by template, answers that match their worked reasoning."""

from __future__ import annotations

import re

import pytest

from llmlab.tasks import arithmetic


def test_problems_are_seeded_and_splits_differ():
    assert arithmetic.make_problems("train", 10) == arithmetic.make_problems("train", 10)
    train = {r["question"] for r in arithmetic.make_problems("train", 50)}
    test = {r["question"] for r in arithmetic.make_problems("test", 50)}
    assert not train & test


def test_unseen_templates_share_no_opening_with_the_others():
    openings = {r["question"].split()[0] for r in arithmetic.make_problems("train", 20)}
    assert not openings & {r["question"].split()[0] for r in arithmetic.make_problems("unseen", 20)}


@pytest.mark.parametrize("split", arithmetic.SPLITS)
def test_the_reasoning_ends_with_the_answer_and_every_step_is_right(split):
    for row in arithmetic.make_problems(split, 40):
        assert isinstance(row["answer"], int) and row["answer"] > 0
        assert row["reasoning"].endswith(f"= {row['answer']}.")
        for left, right in re.findall(r"([\d+\-*/ ]+) = (\d+)", row["reasoning"]):
            assert eval(left.strip().replace("/", "//")) == int(right)  # noqa: S307 - our own digits and operators


def test_answer_metric_and_bad_input():
    import dspy

    example = arithmetic.as_examples(arithmetic.make_problems("dev", 1))[0]
    assert arithmetic.answer_metric(example, dspy.Prediction(answer=example.answer)) == 1.0
    assert arithmetic.answer_metric(example, dspy.Prediction(answer=float(example.answer))) == 1.0
    assert arithmetic.answer_metric(example, dspy.Prediction(answer=example.answer + 1)) == 0.0
    assert arithmetic.answer_metric(example, dspy.Prediction(answer="seventeen")) == 0.0
    assert arithmetic.answer_metric(example, dspy.Prediction()) == 0.0
    with pytest.raises(ValueError, match="split"):
        arithmetic.make_problems("val", 3)
    with pytest.raises(ValueError, match="n"):
        arithmetic.make_problems("train", 0)
