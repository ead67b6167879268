"""Chapter 05 plots and widgets: finetuning memory, LoRA rank vs reconstruction error, loss curves, merging."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch

from llmlab import lora, memory

PARTS = ("weights", "gradients", "optimizer", "activations")


def memory_by_method(params_billion: float, bits: float = 16, lora_share: float = 0.005,
                     activations_gb: float = 0.0) -> dict[str, dict[str, float]]:
    """Training memory parts (GB) for full finetuning, LoRA and QLoRA of one model size."""
    if isinstance(lora_share, bool) or not isinstance(lora_share, (int, float)) or not 0 < lora_share <= 1:
        raise ValueError(f"lora_share must be in (0, 1], got {lora_share!r}")
    trainable = params_billion * lora_share
    return {method: memory.training_memory_gb(params_billion, method, bits=bits, trainable_billion=trainable,
                                            activations_gb=activations_gb) for method in memory.METHODS}


def plot_memory(params_billion: float = 7.0, bits: float = 16, lora_share: float = 0.005,
                activations_gb: float = 0.0, gpu_gb: float = 24.0):
    """Stacked bars of training memory for full / LoRA / QLoRA against one GPU's memory; returns the Figure."""
    table = memory_by_method(params_billion, bits, lora_share, activations_gb)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    bottom = [0.0] * len(table)
    for part, color in zip(PARTS, ["tab:blue", "tab:orange", "tab:red", "tab:gray"]):
        values = [table[m][part] for m in table]
        ax.bar(list(table), values, bottom=bottom, label=part, color=color)
        bottom = [b + v for b, v in zip(bottom, values)]
    for i, total in enumerate(bottom):
        ax.text(i, total, f"{total:.1f} GB", ha="center", va="bottom", fontsize=9)
    ax.axhline(gpu_gb, color="black", linestyle="--", linewidth=1)
    ax.text(2.45, gpu_gb, f"{gpu_gb:g} GB GPU", ha="right", va="bottom", fontsize=8)
    ax.set_ylabel("GB")
    ax.set_title(f"Training memory, {params_billion:g}B parameters, {bits:g}-bit weights")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def memory_widget():
    """Sliders for model size, weight bits, LoRA share, activations and GPU size over plot_memory."""
    import ipywidgets as widgets

    def show(params_billion, bits, lora_share_percent, activations_gb, gpu_gb):
        fig = plot_memory(params_billion, bits, lora_share_percent / 100, activations_gb, gpu_gb)
        plt.show()
        plt.close(fig)

    return widgets.interactive(
        show,
        params_billion=widgets.FloatLogSlider(value=7, base=10, min=-1, max=2, step=0.05, description="params (B)"),
        bits=widgets.Dropdown(options=[32, 16], value=16, description="bits"),
        lora_share_percent=widgets.FloatSlider(value=0.5, min=0.05, max=5, step=0.05, description="LoRA %"),
        activations_gb=widgets.FloatSlider(value=0, min=0, max=40, step=1, description="activ. GB"),
        gpu_gb=widgets.Dropdown(options=[16, 24, 40, 80], value=24, description="GPU GB"))


def rank_summary(delta: torch.Tensor, r: int) -> dict[str, float]:
    """LoRA parameters at rank r for a (d_out, d_in) update, the full count, their ratio and the SVD error."""
    d_out, d_in = delta.shape
    params = lora.lora_param_count(d_in, d_out, r)
    error = lora.relative_reconstruction_error(delta, [r])[0]
    return {"rank": r, "lora_params": params, "full_params": d_in * d_out, "share": params / (d_in * d_out),
            "relative_error": error}


def plot_rank(delta: torch.Tensor, r: int, max_rank: int = 64):
    """Relative reconstruction error vs rank for one update, with rank r marked; returns the Figure."""
    if not isinstance(max_rank, int) or not 1 <= max_rank <= min(delta.shape):
        raise ValueError(f"max_rank must be an int in [1, {min(delta.shape)}], got {max_rank!r}")
    ranks = list(range(1, max_rank + 1))
    errors = lora.relative_reconstruction_error(delta, ranks)
    info = rank_summary(delta, r)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(ranks, errors, color="tab:blue")
    ax.scatter([r], [info["relative_error"]], color="tab:red", zorder=3)
    ax.set_xlabel("rank r")
    ax.set_ylabel("relative Frobenius error")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"r={r}: {info['lora_params']:,} LoRA params = {info['share']:.1%} of {info['full_params']:,}; "
                 f"error {info['relative_error']:.2f}", fontsize=9)
    fig.tight_layout()
    return fig


def rank_widget(delta: torch.Tensor, max_rank: int = 64):
    """A rank slider over plot_rank for one weight update."""
    import ipywidgets as widgets

    def show(r):
        fig = plot_rank(delta, r, max_rank)
        plt.show()
        plt.close(fig)

    return widgets.interactive(show, r=widgets.IntSlider(value=8, min=1, max=max_rank, description="rank r"))


def plot_loss(losses: Sequence[float], title: str = "Training loss", smooth: int = 1):
    """The loss at every step (and a moving average over `smooth` steps); returns the Figure."""
    if not losses:
        raise ValueError("losses must contain at least one value, got []")
    if not isinstance(smooth, int) or smooth < 1:
        raise ValueError(f"smooth must be an int >= 1, got {smooth!r}")
    fig, ax = plt.subplots(figsize=(6, 3))
    steps = list(range(1, len(losses) + 1))
    ax.plot(steps, losses, color="tab:blue", alpha=0.4 if smooth > 1 else 1.0, label="loss")
    if smooth > 1 and len(losses) >= smooth:
        avg = [sum(losses[i - smooth + 1:i + 1]) / smooth for i in range(smooth - 1, len(losses))]
        ax.plot(steps[smooth - 1:], avg, color="tab:blue", label=f"mean of {smooth}")
        ax.legend(fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy on the answer")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_slerp_vs_lerp(v0: torch.Tensor, v1: torch.Tensor, points: int = 11):
    """Paths from v0 to v1 by linear and spherical interpolation (2-d vectors) and their norms; returns the Figure."""
    if v0.shape != (2,) or v1.shape != (2,):
        raise ValueError(f"v0 and v1 must be 2-d vectors of shape (2,), got {tuple(v0.shape)} and {tuple(v1.shape)}")
    ts = [i / (points - 1) for i in range(points)]
    lin = torch.stack([(1 - t) * v0 + t * v1 for t in ts])
    sph = torch.stack([lora.slerp(v0, v1, t) for t in ts])
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    left.plot(lin[:, 0], lin[:, 1], "o-", label="linear", color="tab:orange")
    left.plot(sph[:, 0], sph[:, 1], "o-", label="SLERP", color="tab:blue")
    left.set_aspect("equal")
    left.legend(fontsize=8)
    left.set_title("interpolation path")
    right.plot(ts, lin.norm(dim=1), label="linear", color="tab:orange")
    right.plot(ts, sph.norm(dim=1), label="SLERP", color="tab:blue")
    right.set_xlabel("t")
    right.set_ylabel("norm")
    right.set_title("norm along the path")
    fig.tight_layout()
    return fig


def plot_task_vector_merge(task_vectors: Sequence[torch.Tensor], merged: dict[str, torch.Tensor]):
    """Grouped bars of a few task vectors and their merges (1-d tensors); returns the Figure."""
    if not task_vectors or any(t.dim() != 1 for t in task_vectors):
        raise ValueError("task_vectors must be a non-empty list of 1-d tensors")
    series = {f"task {i + 1}": t for i, t in enumerate(task_vectors)} | dict(merged)
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    index = torch.arange(task_vectors[0].numel()).float()
    for k, (name, values) in enumerate(series.items()):
        ax.bar(index + k * width, values, width=width, label=name)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(index + 0.4 - width / 2, [f"w{i}" for i in range(len(index))])
    ax.legend(fontsize=8, ncol=2)
    ax.set_title("task vectors and their merges, entry by entry")
    fig.tight_layout()
    return fig
