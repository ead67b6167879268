"""Chapter 04 views: a number-format explorer, quantization error histograms, memory vs perplexity."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from llmlab import quantization as Q


def rounding_rows(value: float, mode: str = "nearest", formats: Sequence[str] = Q.FORMATS) -> list[dict]:
    """For each format: the value stored, absolute and relative error, and sign|exponent|mantissa bits."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        raise ValueError(f"value must be a real number, got {value!r}")
    rows = []
    for fmt in formats:
        stored = Q.round_to_format(float(value), fmt, mode)
        err = abs(stored - value) if math.isfinite(stored) else math.inf
        rel = err / abs(value) if value else (0.0 if err == 0 else math.inf)
        bits = "|".join(Q.bit_fields(value, fmt, mode)) if fmt in Q.FLOAT_FORMATS else ""
        rows.append({"format": fmt, "stored": stored, "abs_error": err, "rel_error": rel, "bits": bits})
    return rows


def rounding_text(value: float, mode: str = "nearest", formats: Sequence[str] = Q.FORMATS) -> str:
    """rounding_rows as an aligned text table (int8/int4 round to integers; nf4 clamps to [-1, 1])."""
    lines = [f"{value!r} with {mode}:", f"{'format':9s} {'stored':>16s} {'rel. error':>11s}  sign|exponent|mantissa"]
    for r in rounding_rows(value, mode, formats):
        lines.append(f"{r['format']:9s} {r['stored']:16.8g} {r['rel_error']:11.2e}  {r['bits']}")
    return "\n".join(lines)


def format_explorer(value: float = 1234.56789):
    """An ipywidgets explorer: type a number, toggle rounding, see it in every format."""
    import ipywidgets as widgets

    def show(value: float, mode: str) -> None:
        print(rounding_text(value, mode))

    return widgets.interactive(show, value=widgets.FloatText(value=value, description="value"),
                               mode=widgets.ToggleButtons(options=list(Q.ROUNDING_MODES), description="rounding"))


def quantization_errors(tensors: Mapping[str, torch.Tensor], method: str = "absmax", bits: int = 4,
                        granularity: str = "tensor", group_size: int | None = None) -> dict[str, np.ndarray]:
    """Per tensor name: the errors (dequantized - original) of one quantizer, flattened."""
    if not tensors:
        raise ValueError("tensors must map at least one name to a tensor, got an empty mapping")
    return {name: (Q.quantize_dequantize(t, method, bits, granularity, group_size) - t.float()).reshape(-1).numpy()
            for name, t in tensors.items()}


def plot_error_histograms(tensors: Mapping[str, torch.Tensor], method: str = "absmax", bits: int = 4,
                          granularity: str = "tensor", group_size: int | None = None, bins: int = 60):
    """One histogram of quantization errors per tensor, titled with its RMS error; returns the Figure."""
    errors = quantization_errors(tensors, method, bits, granularity, group_size)
    fig, axes = plt.subplots(1, len(errors), figsize=(4 * len(errors), 3), squeeze=False)
    for ax, (name, err) in zip(axes[0], errors.items()):
        ax.hist(err, bins=bins, color="tab:orange")
        ax.set_title(f"{name}\nRMS error {np.sqrt(np.mean(err ** 2)):.3g}", fontsize=9)
        ax.set_xlabel("dequantized − original")
    label = f"{method} {bits}-bit, per {granularity}" + (f" of {group_size}" if group_size else "")
    fig.suptitle(label, fontsize=10)
    fig.tight_layout()
    return fig


def plot_memory_vs_perplexity(rows: Sequence[Q.Row], title: str = "Memory vs perplexity"):
    """Scatter of memory (MB) against perplexity, one labelled point per measured row; returns the Figure."""
    measured = [r for r in rows if r.memory_bytes is not None and r.perplexity is not None]
    if not measured:
        raise ValueError("rows must contain at least one measured row (memory and perplexity), got none")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in measured:
        ax.scatter(r.memory_bytes / 1e6, r.perplexity, s=40)
        ax.annotate(r.name, (r.memory_bytes / 1e6, r.perplexity), textcoords="offset points", xytext=(5, 4),
                    fontsize=8)
    ax.set_xlabel("memory footprint (MB)")
    ax.set_ylabel("perplexity (lower is better)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_memory_vs_fidelity(rows: Sequence[Q.Fidelity], title: str = "Memory vs fidelity"):
    """Scatter of decoder-layer memory (MB) against KL(fp32 ‖ variant), one labelled point per row; the Figure."""
    if not rows:
        raise ValueError("rows must contain at least one Fidelity row, got none")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    floor = min([r.kl for r in rows if r.kl > 0], default=1e-6) / 3  # fp32's KL is 0: draw it on the axis floor
    for r in rows:
        y = max(r.kl, floor)
        ax.scatter(r.layer_bytes / 1e6, y, s=40)
        ax.annotate(f"{r.name} ({r.top1_agreement:.0%})", (r.layer_bytes / 1e6, y), textcoords="offset points",
                    xytext=(5, 4), fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("decoder layers (MB)")
    ax.set_ylabel("mean KL(fp32 ‖ variant), nats/token (log)")
    ax.set_title(title + " — label: top-1 agreement with fp32")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
