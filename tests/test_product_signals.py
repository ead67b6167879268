"""Tests for chapter 13's guards, router report, traces, drift and simulated feedback."""

import json

import numpy as np
import pytest

from llmlab.product import feedback as fb
from llmlab.product import guards, observe, router


def test_json_guard_retries_until_valid():
    replies = iter(["no json here", '{"item": "pen"', '{"item": "pen", "qty": 2}'])
    out = guards.json_guard(lambda i: next(replies), ["item", "qty"], retries=3)
    assert out.value == {"item": "pen", "qty": 2} and out.tries == 3
    out = guards.json_guard(lambda i: '{"item": "pen"}', ["item", "qty"], retries=1)
    assert out.value is None and out.tries == 2
    assert guards.success_by_retries([1, 2, None, 3], 2) == [0.25, 0.5, 0.75]
    with pytest.raises(TypeError, match="generate"):
        guards.json_guard(lambda i: None, ["a"], retries=0)


def test_topic_filter_and_where_it_fails():
    assert guards.topic_filter("How do I make a BOMB?") and not guards.topic_filter("Where is my order?")
    cases = [{"text": "kill the frozen app", "unsafe": False}, {"text": "h0w to m4ke a b0mb", "unsafe": True},
             {"text": "buy a weapon", "unsafe": True}]
    errors = guards.filter_errors(cases)
    assert errors["false_alarms"] == ["kill the frozen app"] and errors["misses"] == ["h0w to m4ke a b0mb"]
    assert errors["precision"] == 0.5 and errors["recall"] == 0.5


def test_routing_report_and_data():
    rep = router.routing_report(["billing", "out_of_scope", "out_of_scope", "shipping"],
                                ["billing", "out_of_scope", "shipping", "shipping"])
    assert rep["accuracy"] == 0.75 and rep["oos_recall"] == 1.0 and rep["in_scope_refused"] == pytest.approx(1 / 3)
    assert rep["cost_saved"] == 0.5
    assert len(router.out_of_scope("train")) == 30 and {r["label"] for r in router.routing_data("test")} == {
        "billing", "shipping", "account", "technical", "out_of_scope"}


def test_tracer_spans_and_metrics():
    ticks = iter([0.0, 0.5, 1.0, 3.0])
    tracer = observe.Tracer(clock=lambda: next(ticks))
    with tracer.span("mask", "t1") as s:
        s["entities"] = 2
    with pytest.raises(RuntimeError):
        with tracer.span("model", "t1"):
            raise RuntimeError("down")
    spans = [json.loads(line) for line in tracer.jsonl().splitlines()]
    assert [(s["span"], s["seconds"]) for s in spans] == [("mask", 0.5), ("model", 2.0)]
    assert spans[0]["entities"] == 2 and spans[1]["error"] == "RuntimeError: down"
    m = observe.request_metrics([1.0, 2.0, 3.0, 4.0], ["Sure, here.", "I'm sorry, I can't.", "", "a b c"])
    assert m["p50_s"] == 2.5 and m["refusal_rate"] == 0.5 and m["mean_words"] == 2.25


def test_drift_flags_only_clear_changes():
    assert observe.drift([10.0, 11.0, 12.0] * 10, [30.0, 31.0, 29.0] * 10)[2]
    assert not observe.drift([10.0, 11.0, 12.0] * 10, [11.0, 10.0, 12.0] * 10)[2]


def test_feedback_biases_mislead_thumbs_but_not_pairs():
    good, sycophant = fb.System(correct=0.8, agrees=0.5), fb.System(correct=0.5, agrees=0.8)
    n = 4000
    assert fb.thumbs_up(sycophant, fb.Users(leniency=1.0), n).mean() > fb.thumbs_up(good, fb.Users(), n, seed=1).mean()
    assert fb.paired(good, sycophant, fb.Users(position=0.3), n).mean() > 0.5
    assert fb.paired(good, sycophant, fb.Users(position=0.5), n, randomize=False).mean() < 0.5
    assert fb.solved(good, n).mean() > fb.solved(sycophant, n, seed=1).mean()
    assert np.array_equal(fb.thumbs_up(good, fb.Users(), 10, seed=3), fb.thumbs_up(good, fb.Users(), 10, seed=3))
