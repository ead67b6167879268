"""Plots and the ipywidgets explorer for chapter 02 (decoding and sampling)."""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import matplotlib.pyplot as plt
import torch

from llmlab import sampling, tokens


def plot_temperature_curve(logits: Sequence[float] = (1.0, 2.0), t_min: float = 0.05, t_max: float = 3.0,
                           points: int = 60):
    """Probability of each token against temperature for a small logits vector; returns the Figure."""
    if not 0 < t_min < t_max:
        raise ValueError(f"t_min and t_max must satisfy 0 < t_min < t_max, got {t_min} and {t_max}")
    temps = torch.linspace(t_min, t_max, points).tolist()
    probs = sampling.probabilities_vs_temperature(torch.tensor(list(logits), dtype=torch.float32), temps)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, value in enumerate(logits):
        ax.plot(temps, probs[:, i].tolist(), label=f"logit {value:g}")
    for t in (0.5, 1.0):
        for p in sampling.softmax_with_temperature(torch.tensor(list(logits), dtype=torch.float32), t).tolist():
            ax.plot([t], [p], "ko", ms=4)
            ax.annotate(f"{p:.2f}", (t, p), textcoords="offset points", xytext=(5, 3), fontsize=8)
    ax.set_xlabel("temperature T")
    ax.set_ylabel("probability")
    ax.set_title("softmax(logits / T)")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_kept_distribution(labels: Sequence[str], before: Sequence[float], after: Sequence[float],
                           kept: Sequence[bool], title: str = ""):
    """Bars of the model's probabilities and the final sampling probabilities; kept tokens highlighted."""
    if not len(labels) == len(before) == len(after) == len(kept) or not labels:
        raise ValueError(f"labels, before, after and kept must be non-empty and the same length, got "
                         f"{len(labels)}, {len(before)}, {len(after)}, {len(kept)}")
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(labels) + 1.2))
    y = list(range(len(labels)))[::-1]
    ax.barh(y, before, color="lightgray", label="model (T=1)")
    ax.barh(y, after, height=0.5, color=["tab:green" if k else "tab:red" for k in kept], label="after settings")
    ax.set_yticks(y, [repr(s) for s in labels])
    ax.set_xlabel("probability")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def sampling_explorer(model, tokenizer, prompt: str = "My favourite food is", show: int = 15):
    """An ipywidgets explorer: editable prompt, sliders for temperature, top-k, top-p and min-p."""
    import ipywidgets as widgets

    @lru_cache(maxsize=32)
    def logits_for(text: str) -> torch.Tensor:
        ids = tokens.encode_prompt(tokenizer, text, chat=False).to(model.device)
        with torch.inference_mode():
            return model(ids).logits[0, -1].float().cpu()

    def draw(prompt: str, temperature: float, top_k: int, top_p: float, min_p: float):
        if not prompt:
            print("Type a prompt.")
            return
        logits = logits_for(prompt)
        probs, kept = sampling.sampling_distribution(logits, temperature, top_k, top_p, min_p)
        before = logits.softmax(-1)
        order = before.argsort(descending=True)[:show].tolist()
        labels = [tokenizer.decode([i]) for i in order]
        print(f"{int(kept.sum())} tokens kept of {kept.numel()}; the {show} most likely are shown "
              f"(green kept, red removed)")
        plot_kept_distribution(labels, before[order].tolist(), probs[order].tolist(), kept[order].tolist(),
                               title=f"Next token after {prompt!r}")
        plt.show()

    slider = dict(continuous_update=False, style={"description_width": "initial"})
    return widgets.interactive(
        draw,
        prompt=widgets.Text(value=prompt, description="prompt", continuous_update=False),
        temperature=widgets.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.05, description="temperature", **slider),
        top_k=widgets.IntSlider(value=0, min=0, max=50, description="top_k (0 = off)", **slider),
        top_p=widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top_p", **slider),
        min_p=widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.01, description="min_p", **slider),
    )


def plot_accuracy_vs_n(ns: Sequence[int], curves: dict[str, Sequence[float]], title: str = ""):
    """Accuracy against N for each method (e.g. self-consistency, best-of-N); returns the Figure."""
    if not curves or any(len(v) != len(ns) for v in curves.values()):
        raise ValueError(f"curves must be a non-empty dict of lists the length of ns ({len(ns)}), got {curves!r}")
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for name, values in curves.items():
        ax.plot(list(ns), list(values), marker="o", label=name)
    ax.set_xlabel("N (samples per question)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_xticks(list(ns))
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig
