"""llmlab.viz.serving: the latency/goodput function behind the explorer, and the plots (headless)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from llmlab.serving import roofline  # noqa: E402
from llmlab.viz import serving as V  # noqa: E402


def test_latency_goodput_reports_every_policy_and_a_consistent_goodput():
    rep = V.latency_goodput(rate=3.0, max_batch=8, ttft_slo=1.0, tpot_slo=0.2, step_base=0.05,
                            step_per_sequence=0.01, requests=60)
    assert set(rep) == {"static", "dynamic", "continuous"}
    for r in rep.values():
        assert 0 <= r["good"] <= 1 and r["goodput"] >= 0 and len(r["ttft"]) == 60
        assert r["good"] == pytest.approx(np.mean((r["ttft"] <= 1.0) & (r["tpot"] <= 0.2)))
    assert rep["continuous"]["good"] >= rep["static"]["good"]
    loose = V.latency_goodput(3.0, 8, 1e6, 1e6, 0.05, 0.01, requests=60)
    assert all(r["good"] == 1.0 for r in loose.values())


def test_plots_and_widget_render_headless():
    hw = roofline.Hardware("toy", bandwidth=10e9, peak_flops={"fp32": 100e9})
    V.plot_roofline(hw, {"decode": (0.5, 4e9), "prefill": (50, 80e9)})
    V.plot_batch_curve([1, 2, 4], [10, 19, 35], [1.0, 1.1, 1.3])
    V.plot_latency_cdf({"a": np.array([0.1, 0.2, 0.5])}, slo=0.3)
    V.latency_explorer(0.05, 0.01)
    V.cost_calculator()


def test_cost_table_is_the_book_example_and_caching_cuts_the_prompt_cost():
    t = V.cost_table(2.0, 100.0, prompt_tokens=620, cached_tokens=606, dollars_per_million_input=3.0,
                     cached_discount=0.9)
    assert t["$ per 1M output tokens"] == pytest.approx(5.5556, rel=1e-4)
    assert t["$ per prompt, cached prefix"] == pytest.approx((14 + 60.6) * 3e-6)
    assert t["$ per prompt, no cache"] == pytest.approx(620 * 3e-6)


@pytest.mark.parametrize("call, match", [
    (lambda: V.latency_goodput(1, 4, 0, 1, 0.1, 0.01), "ttft_slo"),
    (lambda: V.latency_goodput(1, 4, 1, 1, 0.1, 0.01, tokens=(5, 2)), "tokens"),
    (lambda: V.plot_batch_curve([1], [1, 2], [1]), "same length"),
    (lambda: V.plot_latency_cdf({}), "results"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
