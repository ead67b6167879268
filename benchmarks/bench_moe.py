"""Chapter 14 benchmark: a tiny dense decoder vs a mixture of experts at equal active MLP FLOPs, and expert usage
with and without the Switch balancing loss (router collapse).

    python benchmarks/bench_moe.py          (about 2 minutes on 2 idle cores)

Dense: 2 layers, width 64, one SwiGLU MLP of width 128. MoE: the same attention, 4 experts of width 64, top-2, so
each token runs 2 x 64 = 128 MLP units like the dense model (plus a 4 x 64 router). Same data, seed and steps.
"""

from __future__ import annotations

import time

import torch
from common import machine_header, write_result

from llmlab import moe
from llmlab.scaling import tiny

SPEC = tiny.TinySpec(layers=2, hidden=64, heads=4, kv_heads=2, inner=128, max_positions=128)
EXPERTS, K, EXPERT_INNER, STEPS, ALPHA = 4, 2, 64, 300, 0.01


def usage_on(w, fwd: moe.MoEForward, val: torch.Tensor) -> list[list[float]]:
    """Per layer, the share of assignments each expert gets on evenly spaced held-out windows."""
    starts = torch.linspace(0, len(val) - 66, 32).long()
    x, _ = tiny.batch_at(val, starts, 64)
    with torch.no_grad():
        fwd(w, x)
    return fwd.usage().tolist()


def measure() -> dict:
    """Train dense, MoE without and with the balancing loss; return curves, held-out losses and expert usage."""
    torch.manual_seed(0)
    train_tok, val = tiny.split_tokens(tiny.byte_tokens(tiny.corpus_text()))
    out: dict = {"steps": STEPS, "experts": EXPERTS, "k": K, "alpha": ALPHA}
    t0 = time.perf_counter()
    dense = tiny.tiny_weights(SPEC, seed=0)
    out["dense_curve"] = tiny.train(dense, train_tok, STEPS)
    out["dense_val"] = tiny.eval_loss(dense, val)
    for label, alpha in [("moe_free", 0.0), ("moe_balanced", ALPHA)]:
        w = moe.to_moe(tiny.tiny_weights(SPEC, seed=0), EXPERTS, EXPERT_INNER, seed=1)
        fwd = moe.MoEForward(k=K)
        bal: list[float] = []

        def extra(fwd=fwd, bal=bal, alpha=alpha):
            b = fwd.balancing_loss()
            bal.append(b.item())
            return alpha * b

        out[label + "_curve"] = tiny.train(w, train_tok, STEPS, forward=fwd, extra_loss=extra)
        out[label + "_balance_curve"] = bal
        out[label + "_val"] = tiny.eval_loss(w, val, forward=fwd)
        out[label + "_usage"] = usage_on(w, fwd, val)
    total, active = moe.active_mlp_params(SPEC.hidden, EXPERT_INNER, EXPERTS, K)
    out.update(moe_mlp_total=total, moe_mlp_active=active, dense_mlp=3 * SPEC.hidden * SPEC.inner,
               seconds=time.perf_counter() - t0)
    return out


def report(d: dict) -> str:
    """Markdown summary."""
    lines = [f"# Tiny dense vs MoE (top-{d['k']} of {d['experts']}) at equal active MLP FLOPs", "",
             machine_header(), "", f"{d['steps']} steps each; run took {d['seconds']:.0f} s.", "",
             "| model | held-out loss (nats/byte) | final balance loss | max expert share (layer 1, 2) |",
             "|---|---|---|---|", f"| dense | {d['dense_val']:.3f} | - | - |"]
    for label in ("moe_free", "moe_balanced"):
        shares = ", ".join(f"{max(u):.2f}" for u in d[label + "_usage"])
        lines.append(f"| {label} | {d[label + '_val']:.3f} | {d[label + '_balance_curve'][-1]:.3f} | {shares} |")
    lines += ["", f"MLP parameters: dense {d['dense_mlp']}, MoE total {d['moe_mlp_total']}, active "
                  f"{d['moe_mlp_active']} per token."]
    return "\n".join(lines)


if __name__ == "__main__":
    data = measure()
    md = report(data)
    print(md)
    write_result("moe", md, "cpu", data=data)
