"""Plots and the latency/goodput explorer for chapter 10 (inference economics)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from llmlab import validate
from llmlab.serving import batching, cost, latency
from llmlab.serving.roofline import Hardware, attainable_flops


def plot_roofline(hw: Hardware, points: dict[str, tuple[float, float]], dtype: str = "fp32",
                  intensity_range: tuple[float, float] = (0.1, 1000.0)):
    """Log-log roofline of `hw` with measured points {label: (FLOP/byte, FLOP/s attained)}; returns the Figure."""
    lo, hi = intensity_range
    if not 0 < lo < hi:
        raise ValueError(f"intensity_range must be (low, high) with 0 < low < high, got {intensity_range}")
    peak = hw.peak(dtype)
    xs = np.logspace(np.log10(lo), np.log10(hi), 200)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.loglog(xs, [attainable_flops(x, peak, hw.bandwidth) for x in xs], color="black", lw=2,
              label=f"roof: min({peak / 1e9:.0f} GFLOP/s, {hw.bandwidth / 1e9:.1f} GB/s × intensity)")
    ax.axvline(hw.ridge_point(dtype), color="gray", ls=":", lw=1)
    ax.annotate("ridge point", (hw.ridge_point(dtype), peak), textcoords="offset points", xytext=(4, -14),
                fontsize=8, color="gray")
    for label, (x, y) in points.items():
        ax.plot([x], [y], "o", ms=6)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, -10), fontsize=8)
    ax.set_xlabel("arithmetic intensity (FLOP per byte moved)")
    ax.set_ylabel("FLOP/s")
    ax.set_title(f"Roofline of {hw.name}")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_batch_curve(batches: Sequence[int], tokens_per_s: Sequence[float], request_latency: Sequence[float]):
    """Decode throughput and per-request latency against batch size; returns the Figure."""
    if not len(batches) == len(tokens_per_s) == len(request_latency) or not batches:
        raise ValueError("batches, tokens_per_s and request_latency must be non-empty and the same length")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(batches, tokens_per_s, "o-", color="tab:blue", label="tokens/s (whole batch)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(batches), [str(b) for b in batches])
    ax.set_xlabel("batch size")
    ax.set_ylabel("tokens/s", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(batches, request_latency, "s--", color="tab:red", label="latency of one request")
    ax2.set_ylabel("seconds per request", color="tab:red")
    ax.set_title("Batched decode: more tokens/s, slower requests")
    fig.tight_layout()
    return fig


def plot_latency_cdf(results: dict[str, np.ndarray], slo: float | None = None, xlabel: str = "latency (s)"):
    """Empirical CDF of each named array of latencies, with an optional SLO line; returns the Figure."""
    if not results:
        raise ValueError("results must hold at least one name: latencies pair, got {}")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in results.items():
        v = np.sort(np.asarray(values, dtype=float))
        ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", label=name)
    if slo is not None:
        ax.axvline(slo, color="gray", ls="--", lw=1, label=f"SLO {slo:g} s")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of requests")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def latency_goodput(rate: float, max_batch: int, ttft_slo: float, tpot_slo: float, step_base: float,
                    step_per_sequence: float, prefill_time: float = 0.0, requests: int = 200,
                    tokens: tuple[int, int] = (8, 64), window: float = 0.5, seed: int = 0) -> dict:
    """Simulate every batching policy on one Poisson trace; per policy its summary, goodput and per-request data.

    Returns {policy: {"summary": {...}, "goodput": requests/s meeting both SLOs, "good": fraction,
    "ttft": array, "tpot": array}}.
    """
    validate.number("ttft_slo", ttft_slo, 0, low_open=True)
    validate.number("tpot_slo", tpot_slo, 0, low_open=True)
    validate.positive_int("requests", requests)
    if not 1 <= tokens[0] <= tokens[1]:
        raise ValueError(f"tokens must be (min, max) with 1 <= min <= max, got {tokens}")
    arrivals = batching.poisson_arrivals(requests, rate, seed)
    out = np.random.default_rng(seed + 1).integers(tokens[0], tokens[1] + 1, size=requests)
    step = batching.linear_step_time(step_base, step_per_sequence)
    slo = latency.SLO(ttft_slo, tpot_slo)
    report = {}
    for policy, r in batching.compare_policies(arrivals, out, step, max_batch, prefill_time, window).items():
        duration = float(r.finish.max() - r.arrival.min())
        good = latency.meets_slo(r.ttft.tolist(), r.tpot.tolist(), slo)
        report[policy] = {"summary": r.summary(), "goodput": sum(good) / duration, "good": sum(good) / requests,
                          "ttft": r.ttft, "tpot": r.tpot}
    return report


def latency_explorer(step_base: float, step_per_sequence: float, prefill_time: float = 0.0):
    """Sliders for arrival rate, max batch and the two SLOs over latency_goodput(); prints a table, plots TTFT CDFs."""
    import ipywidgets as widgets

    def draw(rate: float, max_batch: int, ttft_slo: float, tpot_slo: float):
        rep = latency_goodput(rate, max_batch, ttft_slo, tpot_slo, step_base, step_per_sequence, prefill_time)
        print(f"{'policy':<11} {'tok/s':>7} {'TTFT p50':>9} {'TTFT p99':>9} {'latency p50':>12} "
              f"{'meet SLO':>9} {'goodput':>9}")
        for policy, r in rep.items():
            s = r["summary"]
            print(f"{policy:<11} {s['throughput']:7.1f} {s['ttft p50']:8.2f}s {s['ttft p99']:8.2f}s "
                  f"{s['latency p50']:11.2f}s {r['good']:9.0%} {r['goodput']:7.2f}/s")
        plot_latency_cdf({p: np.maximum(r["ttft"], 1e-3) for p, r in rep.items()}, slo=ttft_slo,
                         xlabel="time to first token (s)")
        plt.show()

    slider = {"continuous_update": False, "style": {"description_width": "initial"}}
    return widgets.interactive(
        draw,
        rate=widgets.FloatSlider(value=2.0, min=0.25, max=10.0, step=0.25, description="requests/s", **slider),
        max_batch=widgets.IntSlider(value=8, min=1, max=32, description="max batch", **slider),
        ttft_slo=widgets.FloatSlider(value=1.0, min=0.1, max=10.0, step=0.1, description="TTFT SLO (s)", **slider),
        tpot_slo=widgets.FloatSlider(value=0.2, min=0.02, max=1.0, step=0.02, description="TPOT SLO (s)", **slider),
    )


def cost_table(dollars_per_hour: float, tokens_per_s: float, prompt_tokens: int, cached_tokens: int,
               dollars_per_million_input: float, cached_discount: float) -> dict[str, float]:
    """The numbers the cost calculator shows: $/1M output tokens and one prompt's cost without and with caching."""
    return {"$ per 1M output tokens": cost.cost_per_million_tokens(dollars_per_hour, tokens_per_s),
            "$ per prompt, no cache": cost.prompt_cost(prompt_tokens, 0, dollars_per_million_input, cached_discount),
            "$ per prompt, cached prefix": cost.prompt_cost(prompt_tokens, cached_tokens, dollars_per_million_input,
                                                            cached_discount)}


def cost_calculator(tokens_per_s: float = 100.0, prompt_tokens: int = 620, cached_tokens: int = 606):
    """Sliders over cost_table(): machine $/hour, throughput, input price and the cache discount."""
    import ipywidgets as widgets

    def draw(dollars_per_hour: float, tokens_per_s: float, dollars_per_million_input: float,
             cached_discount: float):
        table = cost_table(dollars_per_hour, tokens_per_s, prompt_tokens, min(cached_tokens, prompt_tokens),
                           dollars_per_million_input, cached_discount)
        for name, value in table.items():
            print(f"{name:<30} ${value:,.6g}")

    slider = {"continuous_update": False, "style": {"description_width": "initial"}}
    return widgets.interactive(
        draw,
        dollars_per_hour=widgets.FloatSlider(value=2.0, min=0.1, max=10.0, step=0.1, description="$ per hour",
                                             **slider),
        tokens_per_s=widgets.FloatLogSlider(value=tokens_per_s, base=10, min=0, max=4, description="tokens/s",
                                            **slider),
        dollars_per_million_input=widgets.FloatSlider(value=3.0, min=0.1, max=15.0, step=0.1,
                                                      description="$ per 1M input tokens", **slider),
        cached_discount=widgets.FloatSlider(value=0.9, min=0.0, max=1.0, step=0.05, description="cache discount",
                                            **slider),
    )
