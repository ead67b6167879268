"""Bootstrap intervals, detection rate and sample sizes, Simpson's paradox."""

from __future__ import annotations

import numpy as np
import pytest

from llmlab.evaluation import stats as S


def test_bootstrap_ci_covers_the_normal_interval():
    values = np.random.default_rng(1).normal(10, 2, size=400)
    low, high = S.bootstrap_ci(values, n_resamples=4000, seed=0)
    half = 1.96 * values.std() / np.sqrt(len(values))
    assert low < values.mean() < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.08)
    assert S.bootstrap_ci([3.0] * 5) == (3.0, 3.0)
    low80, high80 = S.bootstrap_ci(values, n_resamples=4000, confidence=0.8)
    assert high80 - low80 < high - low
    assert S.bootstrap_ci(values, statistic=np.median, n_resamples=200)[0] < np.median(values)


def test_bootstrap_bad_input():
    with pytest.raises(ValueError, match="values must have at least one item"):
        S.bootstrap_ci([])
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\), got 1"):
        S.bootstrap_ci([1.0], confidence=1)


def test_two_proportion_p_value():
    assert S.two_proportion_p_value(50, 50, 100) == pytest.approx(1.0)
    assert S.two_proportion_p_value(60, 40, 100) == pytest.approx(0.0047, abs=2e-4)  # z = 2.83


def test_detection_rate_and_samples_needed():
    assert S.detection_rate(0.5, 0.5, 100, trials=4000) == pytest.approx(0.05, abs=0.015)  # false alarms at alpha
    assert S.detection_rate(0.5, 0.9, 100) == 1.0
    n = S.samples_needed(0.1)
    assert 0.8 * S.samples_needed_formula(0.1) <= n <= 1.25 * S.samples_needed_formula(0.1)
    assert S.samples_needed(0.3) < S.samples_needed(0.1) < S.samples_needed(0.03)
    with pytest.raises(ValueError, match="baseline \\+ difference must be <= 1"):
        S.samples_needed(0.6, baseline=0.5)


def test_simpson_on_the_books_numbers():
    rates = S.group_rates(S.BOOK_SIMPSON)
    assert rates.by_group["A"]["small"] == pytest.approx(81 / 87)
    assert rates.overall == pytest.approx({"A": 273 / 350, "B": 289 / 350})
    assert rates.best("small") == rates.best("large") == "A" and rates.best() == "B"
    assert rates.is_simpson()
    assert not S.group_rates({"A": {"g": (9, 10)}, "B": {"g": (1, 10)}}).is_simpson()
    with pytest.raises(ValueError, match=r"successes must be an int in \[0, 10\], got 11"):
        S.group_rates({"A": {"g": (11, 10)}})
