"""Scaling laws on this CPU: a grid of 20 tiny byte-level decoders (5 sizes x 4 token counts) on the shipped text,
the fit L(N, D) = E + A/N^alpha + B/D^beta with bootstrap intervals, and "emergence" as a metric artefact: exact match
of the next k held-out bytes against per-byte log-probability, for the models trained longest.

Run with `python -m llmlab bench scaling` (about 3 minutes on 2 idle cores; every model trains on one thread).
Writes benchmarks/results/YYYY-MM-DD-cpu-scaling.md and .json.
"""

from __future__ import annotations

import math
import time

from common import machine_header, write_result

from llmlab.scaling import emergence, flops, laws, tiny

# (layers, hidden, inner); 4 heads sharing 2 key/value heads throughout
SIZES = [(1, 16, 32), (2, 32, 64), (2, 48, 128), (3, 64, 192), (4, 96, 256)]
STEPS = [50, 100, 200, 400]
BATCH, SEQ, LR, SEED = 16, 64, 3e-3, 0
KS = (1, 4, 8, 16)


def spec_of(layers: int, hidden: int, inner: int) -> tiny.TinySpec:
    """The TinySpec of one grid size."""
    return tiny.TinySpec(layers=layers, hidden=hidden, heads=4, kv_heads=2, inner=inner)


def grid_point(size: tuple[int, int, int], steps: int, train_tokens, val_tokens) -> dict:
    """Train one size for `steps` steps; its N (non-embedding), D (tokens seen), C = 6ND and validation loss."""
    spec = spec_of(*size)
    w = tiny.tiny_weights(spec, seed=SEED)
    start = time.perf_counter()
    losses = tiny.train(w, train_tokens, steps, batch=BATCH, seq=SEQ, lr=LR, seed=SEED)
    seconds = time.perf_counter() - start
    counts = flops.param_counts(flops.tiny_config(spec))
    n, d = counts["non_embedding"], steps * BATCH * SEQ
    point = {"layers": size[0], "hidden": size[1], "inner": size[2], "steps": steps, "N": n, "N_total": counts["total"],
             "D": d, "C": flops.training_flops(n, d), "train_loss": sum(losses[-10:]) / 10,
             "val_loss": tiny.eval_loss(w, val_tokens, seq=SEQ), "seconds": seconds}
    if steps == max(STEPS):
        score = emergence.score_continuations(w, val_tokens, ks=KS, seq=SEQ, windows=128)
        point["emergence"] = {"exact_match": {str(k): v for k, v in score.exact_match.items()},
                              "byte_accuracy": score.byte_accuracy, "byte_logprob": score.byte_logprob}
    return point


def measure() -> dict:
    """The grid, its fit with intervals, and the emergence sweep."""
    start = time.perf_counter()
    train_tokens, val_tokens = tiny.split_tokens(tiny.byte_tokens(tiny.corpus_text()))
    grid = [grid_point(size, steps, train_tokens, val_tokens) for size in SIZES for steps in STEPS]
    n, d, loss = ([p[k] for p in grid] for k in ("N", "D", "val_loss"))
    budget = math.exp(sum(math.log(p["C"]) for p in grid) / len(grid))  # the grid's geometric-mean compute
    law = laws.bootstrap_law(n, d, loss, budget, n_resamples=200, confidence=0.9, seed=0)
    n_opt, d_opt = laws.compute_optimal(law.fit, budget)
    sweep = [{"N": p["N"], "layers": p["layers"], "hidden": p["hidden"], **p.pop("emergence")}
             for p in grid if "emergence" in p]
    return {"grid": grid, "fit": law.fit._asdict(), "alpha": list(law.alpha), "beta": list(law.beta),
            "ratio": list(law.ratio), "confidence": 0.9, "budget": budget, "n_opt": n_opt, "d_opt": d_opt,
            "train_bytes": len(train_tokens), "batch": BATCH, "seq": SEQ, "lr": LR,
            "emergence": {"ks": list(KS), "steps": max(STEPS), "rows": sweep},
            "seconds": time.perf_counter() - start}


def report(data: dict) -> str:
    """The run as markdown: the grid, the fit with intervals, and the emergence sweep."""
    f = data["fit"]
    lines = [f"# Scaling laws on tiny byte-level decoders\n\n{machine_header()}\n",
             f"Grid: {len(data['grid'])} models, batch {data['batch']} x {data['seq']} bytes, AdamW lr {data['lr']}, "
             f"{data['train_bytes']} training bytes (the largest D repeats them "
             f"{max(p['D'] for p in data['grid']) / data['train_bytes']:.1f} times). N counts non-embedding "
             f"parameters.\n", "| layers | hidden | N | steps | D | C = 6ND | val loss |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {p['layers']} | {p['hidden']} | {p['N']:,} | {p['steps']} | {p['D']:,} | {p['C']:.2e} | "
              f"{p['val_loss']:.3f} |" for p in data["grid"]]
    a, b, r = data["alpha"], data["beta"], data["ratio"]
    lines += ["", f"Fit: L = {f['E']:.3f} + {f['A']:.3g}/N^{f['alpha']:.3f} + {f['B']:.3g}/D^{f['beta']:.3f}. "
                  f"{data['confidence']:.0%} bootstrap intervals over grid points: alpha {a[0]:.3f} "
                  f"[{a[1]:.3f}, {a[2]:.3f}], beta {b[0]:.3f} [{b[1]:.3f}, {b[2]:.3f}].",
              f"At C = {data['budget']:.2e} FLOPs the fitted optimum is N = {data['n_opt']:,.0f}, "
              f"D = {data['d_opt']:,.0f}: {r[0]:.1f} tokens per parameter [{r[1]:.1f}, {r[2]:.1f}] "
              f"(Chinchilla: about {laws.CHINCHILLA_TOKENS_PER_PARAM:.0f}).", "",
              f"## Exact match of the next k held-out bytes (models trained {data['emergence']['steps']} steps)", "",
              "| layers | hidden | N | " + " | ".join(f"exact k={k}" for k in data["emergence"]["ks"])
              + " | log-prob per byte |", "|---|---|---|" + "---|" * (len(data["emergence"]["ks"]) + 1)]
    lines += [f"| {e['layers']} | {e['hidden']} | {e['N']:,} | "
              + " | ".join(f"{e['exact_match'][str(k)]:.3f}" for k in data["emergence"]["ks"])
              + f" | {e['byte_logprob']:.3f} |" for e in data["emergence"]["rows"]]
    lines += ["", f"Total {data['seconds']:.0f} s."]
    return "\n".join(lines)


def main() -> None:
    data = measure()
    md = report(data)
    print(md)
    write_result("scaling", md, "cpu", data=data)


if __name__ == "__main__":
    main()
