"""Chapter 07 views: a generation stepped through (accepted / rejected / resampled / bonus), the timeline of draft and
verify work, and the speedup model against γ and α. Each widget or plot wraps a pure, tested function.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from llmlab import validate
from llmlab.speculative import Step, expected_tokens_per_step, predicted_speedup

COLOURS = {"accepted": "#2e7d32", "rejected": "#c62828", "resampled": "#ef6c00", "bonus": "#1565c0",
           "committed": "#444444"}


def step_tokens(steps: Sequence[Step]) -> list[list[tuple[int, str]]]:
    """Per step, its tokens with a status: accepted draft tokens, rejected ones, then the resampled or bonus token."""
    rows = []
    for s in steps:
        if not isinstance(s, Step):
            raise TypeError(f"steps must hold speculative.Step objects, got {type(s).__name__}")
        row = [(t, "accepted") for t in s.drafted[:s.accepted]]
        row += [(t, "rejected") for t in s.drafted[s.accepted:]]
        row.append((s.token, "bonus" if s.bonus else "resampled"))
        rows.append(row)
    return rows


def step_html(steps: Sequence[Step], tokenizer, upto: int) -> str:
    """HTML of the text after steps [0, upto): earlier steps grey, step upto-1 coloured by status (rejected struck)."""
    rows = step_tokens(steps)
    validate.integer("upto", upto, low=0, high=len(rows))
    parts = []
    for i, row in enumerate(rows[:upto]):
        for token, status in row:
            if i < upto - 1 and status == "rejected":
                continue
            colour = COLOURS[status] if i == upto - 1 else COLOURS["committed"]
            text = html.escape(tokenizer.decode([token])).replace("\n", "⏎")
            style = f"color:{colour};" + ("text-decoration:line-through;" if status == "rejected" else "")
            if i == upto - 1:
                style += "font-weight:bold;"
            parts.append(f'<span style="{style}">{text}</span>')
    legend = " ".join(f'<span style="color:{COLOURS[k]}">■ {k}</span>'
                      for k in ("accepted", "rejected", "resampled", "bonus"))
    return f'<div style="font-family:monospace;white-space:pre-wrap">{"".join(parts)}</div><div>{legend}</div>'


def step_widget(steps: Sequence[Step], tokenizer):
    """A slider over the steps of one generation showing step_html (thin layer over step_html)."""
    import ipywidgets as widgets

    slider = widgets.IntSlider(value=1, min=1, max=max(1, len(steps)), description="step")
    out = widgets.HTML(step_html(steps, tokenizer, min(1, len(steps))))

    def redraw(change=None):
        s = steps[slider.value - 1]
        out.value = (f"<b>step {slider.value}</b>: drafted {len(s.drafted)}, accepted {s.accepted}, "
                     f"{'bonus' if s.bonus else 'resampled'} token added<br>"
                     + step_html(steps, tokenizer, slider.value))

    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([slider, out])


def schedule(steps: Sequence[Step], c: float, verify_cost: float) -> list[tuple[str, float, float, str]]:
    """Timeline bars (lane, start, duration, label) for speculative steps: γ draft passes of cost c, then a verify.

    Time is in units of one plain target step; the plain lane needs one unit per token generated.
    """
    validate.number("c", c, low=0)
    validate.number("verify_cost", verify_cost, low=0, low_open=True)
    bars, t, tokens = [], 0.0, 0
    for s in steps:
        for _ in s.drafted:
            bars.append(("draft", t, c, "d"))
            t += c
        n = s.accepted + 1
        bars.append(("target (speculative)", t, verify_cost, f"+{n}"))
        t += verify_cost
        tokens += n
    bars += [("target (plain)", float(i), 1.0, "+1") for i in range(tokens)]
    return bars


def plot_timeline(steps: Sequence[Step], c: float, verify_cost: float, title: str = ""):
    """Gantt chart of schedule(): plain decoding vs draft + verify; returns the figure."""
    import matplotlib.pyplot as plt

    bars = schedule(steps, c, verify_cost)
    lanes = ["target (plain)", "target (speculative)", "draft"]
    colours = {"target (plain)": "#9e9e9e", "target (speculative)": "#1565c0", "draft": "#ef6c00"}
    fig, ax = plt.subplots(figsize=(10, 2.4))
    for lane, start, width, label in bars:
        y = lanes.index(lane)
        ax.barh(y, width, left=start, color=colours[lane], edgecolor="white")
        if lane != "draft" and width >= 0.5:
            ax.text(start + width / 2, y, label, ha="center", va="center", color="white", fontsize=8)
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_xlabel("time (units of one plain target step)")
    ax.set_title(title or "Same tokens, fewer target passes")
    fig.tight_layout()
    return fig


def speedup_grid(alphas: Sequence[float], gammas: Sequence[int], c: float,
                 verify_costs: dict[int, float] | None = None) -> list[list[float]]:
    """predicted_speedup for each α (rows) and γ (columns), with T(γ+1)/T(1) from verify_costs (default 1)."""
    costs = verify_costs or {}
    return [[predicted_speedup(a, g, c, costs.get(g, 1.0)) for g in gammas] for a in alphas]


def plot_speedup_model(c: float, verify_costs: dict[int, float] | None = None,
                       measured: Sequence[tuple[int, float, float, str]] = (), alphas=(0.5, 0.6, 0.7, 0.8, 0.9),
                       max_gamma: int = 10):
    """Expected tokens per step and predicted speedup vs γ for several α, with measured (γ, α, speedup, label)."""
    import matplotlib.pyplot as plt

    gammas = list(range(1, max_gamma + 1))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    grid = speedup_grid(alphas, gammas, c, verify_costs)
    for a, row in zip(alphas, grid):
        line, = ax1.plot(gammas, [expected_tokens_per_step(a, g) for g in gammas], marker=".", label=f"α={a}")
        ax2.plot(gammas, row, marker=".", color=line.get_color(), label=f"α={a}")
    for g, a, s, label in measured:
        ax1.scatter([g], [expected_tokens_per_step(a, g)], color="black", zorder=5)
        ax2.scatter([g], [s], color="black", marker="*", s=120, zorder=5)
        ax2.annotate(label, (g, s), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax1.set(xlabel="γ (draft tokens per step)", ylabel="tokens per target pass",
            title="(1 − α^(γ+1)) / (1 − α)")
    ax2.axhline(1, color="grey", lw=0.8)
    ax2.set(xlabel="γ", ylabel="speedup over plain decoding",
            title=f"speedup with c = {c:.3f} and measured T(γ+1)/T(1)" if verify_costs else f"speedup, c = {c:.3f}")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    return fig
