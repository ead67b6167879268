"""Chapter 08 plots: logit-lens heatmap, target probability by layer, saliency strips, head effects, probes."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch

from llmlab import validate


def _label(token: str) -> str:
    """A token as a short readable label (newlines and tabs escaped)."""
    return repr(token)[1:-1]


def lens_cell_labels(top_ids: torch.Tensor, tokenizer) -> list[list[str]]:
    """Readable text of the top token in every (layer, position) cell of a (layers + 1, seq) id grid."""
    validate.tensor("top_ids", top_ids, dims=2)
    return [[_label(tokenizer.decode([int(i)])) for i in row] for row in top_ids]


def plot_logit_lens(result, tokenizer, every: int = 1):
    """Heatmap of the lens: rows = residual-stream entries (0 = embeddings), columns = prompt positions,
    colour = probability of the top token, text = that token. Returns the Figure."""
    validate.integer("every", every, 1)
    rows = list(range(0, result.top_ids.shape[0], every))
    if rows[-1] != result.top_ids.shape[0] - 1:
        rows.append(result.top_ids.shape[0] - 1)
    probs = result.top_probs[rows].float().numpy()
    labels = lens_cell_labels(result.top_ids[rows], tokenizer)
    seq = probs.shape[1]
    fig, ax = plt.subplots(figsize=(1.0 * seq + 2.5, 0.28 * len(rows) + 1.5))
    im = ax.imshow(probs, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for r, row in enumerate(labels):
        for c, text in enumerate(row):
            ax.text(c, r, text[:8], ha="center", va="center", fontsize=7,
                    color="white" if probs[r, c] > 0.6 else "black")
    ax.set_xticks(range(seq), [_label(t) for t in result.tokens], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), ["emb" if r == 0 else str(r) for r in rows], fontsize=7)
    ax.set_xlabel("input position (the cell shows the lens's guess for the NEXT token)")
    ax.set_ylabel("layer")
    ax.set_title("logit lens: top next token per layer")
    fig.colorbar(im, ax=ax, fraction=0.03, label="probability")
    fig.tight_layout()
    return fig


def plot_by_layer(series: dict[str, Sequence[float]], ylabel: str, title: str = "", reference: float | None = None):
    """One line per named series over residual-stream entries 0..layers (0 = embeddings); returns the Figure."""
    if not series:
        raise ValueError("series must contain at least one name: values pair, got {}")
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for name, values in series.items():
        ax.plot(range(len(values)), [float(v) for v in values], marker=".", label=name)
    if reference is not None:
        ax.axhline(reference, color="gray", ls="--", lw=1)
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def saliency_rows(saliencies: Sequence) -> torch.Tensor:
    """Each Saliency's scores divided by its largest |score|: a (methods, seq) grid in [-1, 1]."""
    validate.non_empty("saliencies", saliencies)
    lengths = {len(s.scores) for s in saliencies}
    if len(lengths) != 1:
        raise ValueError(f"saliencies must explain the same tokens, got lengths {sorted(lengths)}")
    rows = torch.stack([s.scores.float() for s in saliencies])
    return rows / rows.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)


def plot_saliency(saliencies: Sequence, title: str = ""):
    """Token strips, one row per method, red = pushes towards the target, blue = away; returns the Figure."""
    grid = saliency_rows(saliencies).numpy()
    tokens = saliencies[0].tokens
    fig, ax = plt.subplots(figsize=(0.75 * len(tokens) + 2.5, 0.5 * len(saliencies) + 1.4))
    ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for r in range(grid.shape[0]):
        for c, tok in enumerate(tokens):
            ax.text(c, r, _label(tok)[:9], ha="center", va="center", fontsize=8,
                    fontweight="bold" if bool(saliencies[0].target_mask[c]) else "normal")
    ax.set_yticks(range(len(saliencies)), [s.method for s in saliencies], fontsize=8)
    ax.set_xticks([])
    ax.set_title(title or "saliency (each row scaled to its largest |score|; target tokens in bold)")
    fig.tight_layout()
    return fig


def plot_head_effects(delta: torch.Tensor, title: str = ""):
    """Heatmap (layers, heads) of the target's probability change when each head is zero-ablated."""
    validate.float_tensor("delta", delta, dims=2)
    limit = max(float(delta.abs().max()), 1e-6)
    fig, ax = plt.subplots(figsize=(0.45 * delta.shape[1] + 2.5, 0.22 * delta.shape[0] + 1.5))
    im = ax.imshow(delta.numpy(), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_xticks(range(delta.shape[1]))
    ax.set_title(title or "change in target probability when one head is ablated")
    fig.colorbar(im, ax=ax, fraction=0.05)
    fig.tight_layout()
    return fig
