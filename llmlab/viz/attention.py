"""Chapter 03 plots and widgets: attention maps, prefill vs decode, cache vs no cache, a KV-memory calculator."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch

from llmlab.kv_cache import LLAMA_PRESETS, kv_savings

DTYPE_BYTES = {"fp32": 4, "fp16/bf16": 2, "int8": 1, "int4": 0.5}


def attention_map(maps: torch.Tensor, layer: int, head: int) -> torch.Tensor:
    """One head's (seq, seq) attention weights out of (layers, heads, seq, seq) maps."""
    if not isinstance(maps, torch.Tensor) or maps.dim() != 4:
        raise ValueError(f"maps must be a (layers, heads, seq, seq) tensor, got {getattr(maps, 'shape', maps)!r}")
    for pname, value, size in [("layer", layer, maps.shape[0]), ("head", head, maps.shape[1])]:
        if not isinstance(value, int) or not 0 <= value < size:
            raise ValueError(f"{pname} must be an int in [0, {size - 1}], got {value!r}")
    return maps[layer, head]


def plot_attention_map(maps: torch.Tensor, tokens: Sequence[str], layer: int = 0, head: int = 0):
    """Heatmap of one head's attention: rows are queries, columns the keys they attend to; returns the Figure."""
    grid = attention_map(maps, layer, head)
    if len(tokens) != grid.shape[0]:
        raise ValueError(f"tokens must have one label per position ({grid.shape[0]}), got {len(tokens)}")
    fig, ax = plt.subplots(figsize=(0.32 * len(tokens) + 2.5, 0.32 * len(tokens) + 1.5))
    im = ax.imshow(grid.float().numpy(), cmap="viridis", vmin=0, vmax=1)
    labels = [repr(t)[1:-1] for t in tokens]
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query")
    ax.set_title(f"layer {layer}, head {head}")
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    return fig


def attention_map_widget(maps: torch.Tensor, tokens: Sequence[str]):
    """Layer and head sliders over plot_attention_map."""
    import ipywidgets as widgets

    def show(layer: int, head: int) -> None:
        plot_attention_map(maps, tokens, layer, head)
        plt.show()

    return widgets.interactive(show, layer=widgets.IntSlider(0, 0, maps.shape[0] - 1, description="layer"),
                               head=widgets.IntSlider(0, 0, maps.shape[1] - 1, description="head"))


def plot_prefill_decode(prompt_lengths: Sequence[int], ttft: Sequence[float], tpot: Sequence[float]):
    """Time to first token and time per output token against prompt length; returns the Figure."""
    if not len(prompt_lengths) == len(ttft) == len(tpot) or not prompt_lengths:
        raise ValueError(f"prompt_lengths, ttft and tpot must be non-empty and of equal length, got "
                         f"{len(prompt_lengths)}, {len(ttft)}, {len(tpot)}")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(prompt_lengths, [1e3 * t for t in ttft], "o-", label="prefill (time to first token)")
    ax.plot(prompt_lengths, [1e3 * t for t in tpot], "s-", label="one decode step (time per output token)")
    ax.set_xlabel("prompt length (tokens)")
    ax.set_ylabel("milliseconds")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_cache_curves(new_tokens: Sequence[int], cached: Sequence[float], uncached: Sequence[float]):
    """Generation time with and without the KV cache against number of generated tokens; returns the Figure."""
    if not len(new_tokens) == len(cached) == len(uncached) or not new_tokens:
        raise ValueError(f"new_tokens, cached and uncached must be non-empty and of equal length, got "
                         f"{len(new_tokens)}, {len(cached)}, {len(uncached)}")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(new_tokens, cached, "o-", label="with KV cache (linear)")
    ax.plot(new_tokens, uncached, "s-", label="no cache: recompute everything (quadratic)")
    ax.set_xlabel("new tokens generated")
    ax.set_ylabel("seconds")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def kv_memory_rows(preset: str, batch: int, seq_len: int, dtype: str = "fp16/bf16") -> list[tuple[str, float]]:
    """(variant, GB) rows of KV-cache memory for a preset model under MHA, its GQA, MQA, a window, sharing."""
    if preset not in LLAMA_PRESETS:
        raise ValueError(f"preset must be one of {sorted(LLAMA_PRESETS)}, got {preset!r}")
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype must be one of {sorted(DTYPE_BYTES)}, got {dtype!r}")
    savings = kv_savings(LLAMA_PRESETS[preset], batch, seq_len, DTYPE_BYTES[dtype])
    return [(name, value / 1e9) for name, value in savings.items()]


def kv_calculator_widget():
    """Preset, batch, context length and dtype controls over kv_memory_rows, shown as a table."""
    import ipywidgets as widgets

    def show(preset: str, batch: int, seq_len: int, dtype: str) -> None:
        for name, gb in kv_memory_rows(preset, batch, seq_len, dtype):
            print(f"{name:40s} {gb:10.2f} GB")

    return widgets.interactive(
        show,
        preset=widgets.Dropdown(options=list(LLAMA_PRESETS), value="Llama 2 13B", description="model"),
        batch=widgets.IntSlider(32, 1, 128, description="batch"),
        seq_len=widgets.IntText(2048, description="tokens"),
        dtype=widgets.Dropdown(options=list(DTYPE_BYTES), value="fp16/bf16", description="dtype"),
    )
