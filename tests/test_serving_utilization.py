"""llmlab.serving.utilization and cost: MBU (AI Engineering's example, corrected), MFU, $ per 1M tokens, caching."""

import pytest

from llmlab.serving import cost
from llmlab.serving import utilization as U


def test_book_mbu_example_corrected():
    assert U.bandwidth_used(7e9, 2, 100) == pytest.approx(1.4e12)  # the book prints 700 GB/s
    assert U.mbu(7e9, 2, 100, bandwidth_gb_s=2000) == pytest.approx(0.70)


def test_step_mbu_counts_weights_once_per_step_and_the_kv_cache():
    # batch 1, no KV: the book's formula (weights once per token)
    assert U.step_mbu(14e9, 0, tpot=0.01, bandwidth_gb_s=2000) == pytest.approx(U.mbu(7e9, 2, 100, 2000))
    # batch 16 at the same TPOT: 16× the tokens/s but the same bytes per step; the per-token formula says 16×
    assert U.step_mbu(14e9, 2e9, tpot=0.01, bandwidth_gb_s=2000) == pytest.approx(16e9 / 0.01 / 2e12)
    assert U.mbu(7e9, 2, 1600, 2000) == pytest.approx(11.2)  # 1,120% of peak: impossible
    with pytest.raises(ValueError, match="tpot"):
        U.step_mbu(1e9, 0, 0, 100)


def test_mfu():
    assert U.flops_per_token(7e9) == 1.4e10
    assert U.mfu(7e9, 1000, peak_tflops=312) == pytest.approx(1.4e13 / 312e12)


def test_book_cost_example():
    assert cost.cost_per_million_tokens(2.0, 100) == pytest.approx(5.5556, rel=1e-4)


def test_prompt_cost_and_cached_savings():
    assert cost.prompt_cost(1000, 0, 3.0, 0.9) == pytest.approx(0.003)
    assert cost.prompt_cost(1000, 800, 3.0, 0.9) == pytest.approx((200 + 80) * 3e-6)
    s = cost.cached_savings(10, prefix_tokens=600, suffix_tokens=8, dollars_per_million=1.0, cached_discount=1.0)
    assert s["uncached"] == pytest.approx(6080e-6) and s["cached"] == pytest.approx((608 + 9 * 8) * 1e-6)
    w = cost.cached_savings(10, 600, 8, 1.0, cached_discount=0.9, write_premium=0.25)  # Anthropic's 5-minute cache
    assert w["cached"] == pytest.approx((608 + 150 + 9 * (8 + 60)) * 1e-6)
    one = cost.cached_savings(1, 600, 8, 1.0, cached_discount=0.9, write_premium=0.25)
    assert one["saved"] < 0  # a cache nobody reads costs more than no cache


@pytest.mark.parametrize("call, match", [
    (lambda: U.mbu(7e9, 2, 100, 0), "bandwidth_gb_s"),
    (lambda: U.mfu(7e9, -1, 300), "tokens_per_s"),
    (lambda: cost.cost_per_million_tokens(2, 0), "tokens_per_s"),
    (lambda: cost.prompt_cost(10, 11, 1, 0.5), "cached_tokens"),
    (lambda: cost.prompt_cost(10, 1, 1, 1.5), "cached_discount"),
])
def test_bad_input_names_the_parameter(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
