"""Elo and Bradley-Terry on AI Engineering's five-model table."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from llmlab.evaluation import ranking as R


def test_matches_reproduce_the_win_rates_exactly():
    matches = R.matches_from_win_rates(R.BOOK_WIN_RATES)
    assert len(matches) == 10 * 1000
    counts = Counter(matches)
    assert counts[(1, 2)] == 900 and counts[(2, 1)] == 100 and counts[(5, 3)] == 900
    assert matches != R.matches_from_win_rates(R.BOOK_WIN_RATES, seed=1)


def test_elo_update_and_order_dependence():
    assert R.elo([("a", "b")], k_factor=32) == {"a": 1516.0, "b": 1484.0}
    assert R.elo_expected(1600, 1200) == pytest.approx(1 / 1.1**0 / (1 + 10 ** -1))
    same = [("a", "b"), ("b", "a")]
    assert R.elo(same) != R.elo(same[::-1])
    spread = R.elo_over_orders(R.matches_from_win_rates(R.BOOK_WIN_RATES, 200), range(5))
    assert all(len(v) == 5 and max(v) > min(v) for v in spread.values())


def test_bradley_terry_recovers_known_strengths():
    true = np.array([0.1, 0.2, 0.3, 0.4])
    expected = R.bt_win_probability(true)
    wins = np.round(expected * 100000)
    np.fill_diagonal(wins, 0)
    fitted = R.bradley_terry(wins)
    assert fitted.sum() == pytest.approx(1.0)
    assert fitted == pytest.approx(true, abs=1e-4)


def test_bradley_terry_is_the_maximum_likelihood():
    wins = R.win_matrix(R.matches_from_win_rates(R.BOOK_WIN_RATES))
    p = R.bradley_terry(wins)
    best = R.log_likelihood(wins, R.bt_win_probability(p))
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = p * np.exp(rng.normal(0, 0.05, len(p)))
        assert R.log_likelihood(wins, R.bt_win_probability(q)) <= best + 1e-9
    # BT's fit beats any single Elo order's ratings on the same matches
    elo = R.elo(R.matches_from_win_rates(R.BOOK_WIN_RATES))
    assert R.log_likelihood(wins, R.elo_win_probability([elo[i] for i in range(1, 6)])) < best


def test_bt_to_elo_and_ranking():
    ratings = R.bt_to_elo(np.array([0.25, 0.25, 0.5]))
    assert ratings.mean() == pytest.approx(1500)
    assert ratings[2] - ratings[0] == pytest.approx(400 * np.log10(2))
    assert R.ranking({"x": 1.0, "y": 3.0, "z": 2.0}) == ["y", "z", "x"]


def test_bad_input():
    with pytest.raises(ValueError, match=r"wins must be a square \(P, P\) matrix"):
        R.bradley_terry(np.ones((2, 3)))
    with pytest.raises(ValueError, match="every player needs at least one win and one loss"):
        R.bradley_terry(np.array([[0, 3], [0, 0]]))
    with pytest.raises(ValueError, match=r"k_factor must be in \(0, 400\], got 0"):
        R.elo([("a", "b")], k_factor=0)
    with pytest.raises(ValueError, match="matches must have at least one item"):
        R.elo([])
    with pytest.raises(ValueError, match=r"win_rates\[\(1, 2\)\] must be in \[0, 1\], got 1.5"):
        R.matches_from_win_rates({(1, 2): 1.5})
    with pytest.raises(ValueError, match="matches name a player not in players"):
        R.win_matrix([("a", "c")], ["a", "b"])
