"""The tasks' shared interface (llmlab.tasks.base.Task): every task loads, prompts and scores the same way."""

from __future__ import annotations

import json

import pytest

from llmlab import tasks
from llmlab.tasks import base


def gold_reply(name: str, example: dict) -> str:
    """A reply that is right for the example, written as a model would."""
    return {"orders": lambda: f"Here it is: {json.dumps(example.get('target'))}",
            "tickets": lambda: f"{str(example.get('label')).capitalize()}.",
            "arithmetic": lambda: example.get("reasoning", ""),
            "company_docs": lambda: f"The answer is {example['answers'][0]}." if "answers" in example else ""}[name]()


@pytest.mark.parametrize("name", tasks.NAMES)
def test_every_split_loads_and_a_right_reply_scores_one(name):
    task = tasks.get(name)
    assert task.name == name
    for split in task.splits:
        rows = task.load(split)
        assert rows and all(isinstance(r, dict) for r in rows)
        assert rows == task.load(split)  # a fixed order
    example = task.load(task.splits[-1])[0]
    messages = task.messages(example)
    assert messages[-1]["role"] == "user" and all(set(m) == {"role", "content"} for m in messages)
    assert task.score(example, gold_reply(name, example)) == 1.0
    assert task.score(example, "") == 0.0 and task.score(example, "I do not know.") == 0.0


def test_wrong_replies_score_zero():
    orders = tasks.get("orders")
    e = orders.load("test")[0]
    wrong_type = dict(e["target"], qty=str(e["target"]["qty"]))  # "5" is not 5
    assert orders.score(e, json.dumps(wrong_type)) == 0.0
    assert orders.score(e, json.dumps({k: v for k, v in e["target"].items() if k != "city"})) == 0.0

    tickets = tasks.get("tickets")
    e = tickets.load("test")[0]
    other = next(label for label in ("billing", "shipping") if label != e["label"])
    assert tickets.score(e, f"{e['label']} or {other}") == 0.0  # hedging between two teams

    arithmetic = tasks.get("arithmetic")
    e = arithmetic.load("test")[0]
    assert arithmetic.score(e, f"{e['answer']} is not it; it is {e['answer'] + 1}.") == 0.0  # the last number counts
    assert arithmetic.score(e, f"So the total is {e['answer']:,}.") == 1.0

    docs = tasks.get("company_docs")
    e = next(q for q in docs.load("test") if any(a.startswith("TB-") for a in q["answers"]))
    code = next(a for a in e["answers"] if a.startswith("TB-"))
    assert docs.score(e, f"It is {code}0.") == 0.0  # a longer code is a different code


def test_evaluate_scores_any_reply_function():
    task = tasks.get("arithmetic")
    rows = task.load("dev")[:5]
    assert base.evaluate(task, rows, lambda m: "0") == [float(r["answer"] == 0) for r in rows]
    answers = iter(rows)
    assert base.evaluate(task, rows, lambda m: next(answers)["reasoning"]) == [1.0] * 5


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="name must be one of"):
        tasks.get("gsm8k")
    task = tasks.get("orders")
    with pytest.raises(ValueError, match="split must be one of"):
        task.load("validation")
    with pytest.raises(TypeError, match="example must be a dict"):
        task.score("an order", "{}")
    with pytest.raises(TypeError, match="reply must be a str"):
        task.score(task.load("test")[0], None)
    with pytest.raises(TypeError, match="task must be a Task"):
        base.evaluate("orders", task.load("test")[:1], lambda m: "")
    with pytest.raises(ValueError, match="examples must have at least one item"):
        base.evaluate(task, [], lambda m: "")
