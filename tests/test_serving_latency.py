"""llmlab.serving.latency: percentiles (vs numpy), AI Engineering's ten TTFTs, total latency, goodput."""

import numpy as np
import pytest

from llmlab.serving import latency as L


def test_book_ttfts_mean_390_median_100():
    s = L.latency_summary(L.BOOK_TTFTS_MS)
    assert s["mean"] == pytest.approx(390) and s["p50"] == pytest.approx(100)


@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 95, 99, 100])
def test_percentile_matches_numpy_linear(q):
    data = np.random.default_rng(q).exponential(size=17).tolist()
    assert L.percentile(data, q) == pytest.approx(np.percentile(data, q))
    assert L.percentile(L.BOOK_TTFTS_MS, q) == pytest.approx(np.percentile(L.BOOK_TTFTS_MS, q))


def test_percentile_of_one_value_and_unsorted_input():
    assert L.percentile([3.0], 99) == 3.0
    assert L.percentile([5, 1, 3], 50) == 3


def test_total_latency():
    assert L.total_latency(0.2, 0.05, 100) == pytest.approx(5.2)


def test_goodput_counts_only_requests_meeting_both_slos():
    ttfts, tpots = [0.1, 0.3, 0.2, 0.1], [0.05, 0.05, 0.2, 0.1]
    slo = L.SLO(ttft=0.2, tpot=0.1)
    assert L.meets_slo(ttfts, tpots, slo) == [True, False, False, True]  # boundary values count as met
    assert L.goodput(ttfts, tpots, slo, duration=2.0) == pytest.approx(1.0)


@pytest.mark.parametrize("call, match", [
    (lambda: L.percentile([], 50), "values"),
    (lambda: L.percentile([1.0], 101), "q must be"),
    (lambda: L.percentile([float("nan")], 50), "finite"),
    (lambda: L.SLO(0, 1), "ttft"),
    (lambda: L.goodput([1], [1, 2], L.SLO(1, 1), 1), "same length"),
    (lambda: L.goodput([1], [1], L.SLO(1, 1), 0), "duration"),
    (lambda: L.total_latency(0.1, 0.1, -1), "output_tokens"),
])
def test_bad_input_names_the_parameter(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
