"""Tests for chapter 13's PII masker, caches and build-vs-buy arithmetic."""

import math

import numpy as np
import pytest

from llmlab.product import buildbuy, cache, pii
from llmlab.tasks.jsonl import read_jsonl

NAMES = ["Anna", "Anna Berzina"]


def test_mask_round_trips_and_numbers_per_kind():
    text = "Anna Berzina (a.b555123456@mail.ee) re Q-1040, Q-1041; +372 5512 3456; Anna; a.b555123456@mail.ee"
    masked, mapping = pii.mask_pii(text, NAMES)
    assert masked == ("<NAME_1> (<EMAIL_1>) re <ORDER_1>, <ORDER_2>; <PHONE_1>; <NAME_2>; <EMAIL_1>")
    assert pii.unmask(masked, mapping) == text
    assert pii.leaks(masked, list(mapping.values())) == []


def test_planted_cases_scores_and_no_leak():
    cases = read_jsonl(pii.__file__.replace("product/pii.py", "data/ch13_pii_cases.jsonl"))
    names = ["Anna Berzina", "Mikko Virtanen", "Liis Tamm", "Jonas Petraitis", "Sam"]
    s = pii.detection_scores(cases, names)
    assert 0 < s["precision"] < 1 and 0 < s["recall"] < 1  # the hard cases are there to fail
    for case in cases:
        masked, mapping = pii.mask_pii(case["text"], names)
        assert pii.leaks(masked, list(mapping.values())) == []


def test_mask_bad_input():
    with pytest.raises(TypeError, match="text"):
        pii.mask_pii(None)
    with pytest.raises(ValueError, match="names"):
        pii.mask_pii("hi", [""])
    assert pii.mask_pii("") == ("", {})


def test_semantic_lookup_boundary_user_and_empty():
    keys = np.array([[1.0, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]])
    q = np.array([0.5, 0.5, 0.5, -0.5])
    assert cache.semantic_lookup(q, keys, ["u", "u"], ["a", "b"], "u", 0.5) == "a"  # tie: first of the best
    assert cache.semantic_lookup(q, keys, ["u", "v"], ["a", "b"], "v", 0.5) == "b"
    assert cache.semantic_lookup(q, keys, ["u", "v"], ["a", "b"], "w", 0.0) is None
    assert cache.semantic_lookup(q, keys, ["u", "u"], ["a", "b"], "u", 0.51) is None
    assert cache.semantic_lookup(q, np.zeros((0, 4)), [], [], "u", 0.5) is None
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            cache.semantic_lookup(q, keys, ["u", "u"], ["a", "b"], "u", bad)


def test_semantic_cache_leak_and_fix():
    table = {"what is my order status?": [1.0, 0.0], "where is my parcel?": [0.8, 0.6]}
    embed = lambda texts: np.array([table[t.lower()] for t in texts])  # noqa: E731
    shared, keyed = cache.SemanticCache(embed, 0.7, per_user=False), cache.SemanticCache(embed, 0.7)
    for c in (shared, keyed):
        c.put("What is my order status?", "Anna, Q-1040 shipped.", user="anna")
    assert shared.get("Where is my parcel?", user="mikko") == "Anna, Q-1040 shipped."  # the leak
    assert keyed.get("Where is my parcel?", user="mikko") is None
    assert keyed.get("Where is my parcel?", user="anna") == "Anna, Q-1040 shipped."
    with pytest.raises(ValueError, match="threshold"):
        cache.SemanticCache(embed, 1.01)


def test_exact_cache_and_curve():
    c = cache.ExactCache()
    c.put("Opening hours?", "8-20", user="a")
    assert c.get("opening   HOURS?", user="a") == "8-20" and c.get("Opening hours?", user="b") is None
    curve = cache.threshold_curve([0.9, 0.8, 0.6], [True, False, True], [0.0, 0.7, 0.85, 1.0])
    assert curve["hit_rate"] == [1.0, 2 / 3, 1 / 3, 0.0]
    assert curve["wrong_hit_rate"] == [1 / 3, 1 / 3, 0.0, 0.0]
    best, sims = cache.best_matches(np.eye(2), np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert best.tolist() == [1, 0] and sims.tolist() == [1.0, 1.0]


def test_break_even():
    # $2/h all day is $48; at $0.60 per 1M tokens that buys 80M tokens
    assert buildbuy.break_even_tokens_per_day(2.0, 1000.0, 0.6) == pytest.approx(80e6)
    assert buildbuy.break_even_tokens_per_day(2.0, 10.0, 0.6) == math.inf  # the machine is slower than its price
    d = buildbuy.daily_costs(100e6, 2.0, 1000.0, 0.6)
    assert d["machines"] == 2 and d["self_hosted"] == 96.0 and d["api"] == pytest.approx(60.0)
    with pytest.raises(ValueError, match="tokens_per_s"):
        buildbuy.break_even_tokens_per_day(2.0, 0.0, 0.6)
