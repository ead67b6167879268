"""Bootstrap intervals, detection rate and sample sizes, Simpson's paradox."""

from __future__ import annotations

import numpy as np
import pytest

from llmlab.evaluation import stats as S


def test_bootstrap_ci_covers_the_normal_interval():
    values = np.random.default_rng(1).normal(10, 2, size=400)
    mean, low, high = S.bootstrap_ci(values, n_resamples=4000, seed=0)
    half = 1.96 * values.std() / np.sqrt(len(values))
    assert mean == pytest.approx(values.mean()) and low < mean < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.08)
    assert S.bootstrap_ci([3.0] * 5) == (3.0, 3.0, 3.0)
    _, low80, high80 = S.bootstrap_ci(values, n_resamples=4000, confidence=0.8)
    assert high80 - low80 < high - low
    median = S.bootstrap_ci(values, statistic=np.median, n_resamples=200)
    assert median.mean == pytest.approx(np.median(values)) and median.low < np.median(values) < median.high


def test_bootstrap_ci_of_zero_one_scores_is_an_interval():
    iv = S.bootstrap_ci([1.0] * 30 + [0.0] * 10, n_resamples=500)
    assert isinstance(iv, S.Interval) and iv.mean == 0.75 and 0.5 < iv.low < 0.75 < iv.high <= 1.0
    assert S.bootstrap_ci([True, False] * 50, seed=1) == S.bootstrap_ci([1, 0] * 50, seed=1)


def test_interval_formats_all_three_numbers_alike():
    iv = S.Interval(0.65, 0.45, 0.875)
    assert f"{iv:.1%}" == "65.0% [45.0%, 87.5%]"
    assert f"{iv:+.2f}" == "+0.65 [+0.45, +0.88]"
    assert str(iv) == "0.65 [0.45, 0.875]" == f"{iv}"
    mean, low, high = iv
    assert (mean, low, high) == (0.65, 0.45, 0.875) and iv.high == 0.875


def test_paired_bootstrap_interval():
    a = [0.0] * 50 + [1.0] * 50
    b = [1.0] * 100
    diff, low, high = S.paired_bootstrap(a, b, n_resamples=500)
    assert diff == pytest.approx(0.5) and 0 < low < 0.5 < high <= 1
    assert S.paired_bootstrap(a, a, n_resamples=200) == (0.0, 0.0, 0.0)
    with pytest.raises(TypeError, match="metric score"):
        S.paired_bootstrap([1.0], ["yes"])
    with pytest.raises(ValueError, match="a must have at least one item"):
        S.paired_bootstrap([], [])
    with pytest.raises(ValueError, match="confidence"):
        S.paired_bootstrap([1.0], [0.0], confidence=1.0)


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
