"""Timing helpers: counts of calls, warm-up, best/median/mean of given seconds (no wall-clock assertions)."""

from __future__ import annotations

import pytest

from llmlab.serving.timing import Timing, summarise, time_calls, timed


def test_timed_returns_result_and_non_negative_seconds():
    out, seconds = timed(lambda a, b=0: a + b, 2, b=3)
    assert out == 5 and seconds >= 0


def test_time_calls_counts_warmup_and_repeats_and_keeps_last_result():
    calls = []
    t = time_calls(lambda: calls.append(len(calls)) or len(calls), repeats=4, warmup=2)
    assert len(calls) == 6 and len(t.seconds) == 4 and t.result == 6
    assert t.best <= t.median <= max(t.seconds)


def test_summaries_of_known_seconds():
    t = summarise([0.4, 0.1, 0.3, 0.2])
    assert (t.best, t.median, t.mean) == (0.1, pytest.approx(0.25), pytest.approx(0.25))
    assert summarise([3, 1, 100]).median == 3.0  # the median ignores the outlier the mean is dragged by
    assert summarise([3, 1, 100]).mean == pytest.approx(104 / 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"repeats must be an int in \[1, inf\), got 0"):
        time_calls(lambda: None, repeats=0)
    with pytest.raises(ValueError, match=r"warmup must be an int in \[0, inf\), got -1"):
        time_calls(lambda: None, warmup=-1)
    with pytest.raises(ValueError, match="seconds must have at least one item"):
        Timing(())
    with pytest.raises(ValueError, match=r"seconds\[i\] must be in \[0, inf\), got -1"):
        summarise([1.0, -1])
