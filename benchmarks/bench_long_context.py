"""Chapter 14 benchmark: long context on this CPU.

    python benchmarks/bench_long_context.py          (about 3 minutes on 2 idle cores)

1. SmolLM2-135M-Instruct's loss against position on 1024 tokens of the kit's text with full attention, a 128-token
   sliding window, and the window plus 4 attention sinks (StreamingLLM), next to the KV bytes each keeps.
2. A tiny byte-level decoder trained at 64 positions, evaluated at 512 with plain RoPE, position interpolation,
   NTK-aware scaling and YaRN (factor 8), before and after a short finetune at 256 positions.
3. A needle-in-a-haystack grid (length x depth) on SmolLM2, scored teacher-forced (every answer digit the argmax).
4. Prefill time of SmolLM2 against length, fitted as a + b n + c n^2.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from common import machine_header, write_result

from llmlab import attention, models
from llmlab import longcontext as lc
from llmlab.scaling import tiny

SEQ, WINDOW, SINKS = 1024, 128, 4
TINY = tiny.TinySpec(layers=2, hidden=64, heads=4, kv_heads=2, inner=128, max_positions=512)
SHORT, LONG, FACTOR = 64, 512, 8.0
NEEDLE_LENGTHS, DEPTHS = [256, 512, 1024, 2048], [0.0, 0.25, 0.5, 0.75, 1.0]
PREFILL_LENGTHS = [64, 128, 256, 512, 768, 1024, 1536, 2048]


def window_ppl(w, tok) -> dict:
    """Loss by position (mean over 64-position buckets) for full / window / window + sinks, and KV bytes."""
    ids = torch.tensor(tok(tiny.corpus_text())["input_ids"][:SEQ + 1])[None]
    x, y = ids[:, :-1], ids[:, 1:]
    out = {}
    for label, mask in [("full", attention.causal_mask(SEQ)), ("window", lc.sliding_window_mask(SEQ, WINDOW)),
                        ("window_sinks", lc.sliding_window_mask(SEQ, WINDOW, SINKS))]:
        with torch.no_grad():
            logits = lc.masked_forward(w, x, mask)
        loss = torch.nn.functional.cross_entropy(logits[0], y[0], reduction="none")
        out[label] = loss.reshape(-1, 64).mean(1).tolist()
        out[label + "_kv_bytes"] = lc.kv_bytes(w, SEQ, None if label == "full" else WINDOW,
                                               SINKS if label == "window_sinks" else 0, 4)
    return out


def rope_scaling() -> dict:
    """Held-out loss at 64 and 512 positions for each RoPE variant, before and after a 60-step finetune at 256."""
    train_tok, val = tiny.split_tokens(tiny.byte_tokens(tiny.corpus_text()))
    w = tiny.tiny_weights(TINY, seed=0)
    w = lc.with_rope(w, "default", 1.0, SHORT, LONG)
    tiny.train(w, train_tok, 400, seq=SHORT)
    out: dict = {}
    for kind in lc.ROPE_KINDS:
        wk = lc.with_rope(copy.deepcopy(w), kind, FACTOR, SHORT, LONG)
        before = lc.loss_by_position(wk, val, LONG - 1, windows=8)
        tiny.train(wk, train_tok, 60, batch=4, seq=256, lr=1e-3, seed=1)
        after = lc.loss_by_position(wk, val, LONG - 1, windows=8)
        out[kind] = {"before_short": before[:SHORT].mean().item(), "before_long": before[SHORT:].mean().item(),
                     "after_short": after[:SHORT].mean().item(), "after_long": after[SHORT:].mean().item(),
                     "before_by_64": before[:448].reshape(-1, 64).mean(1).tolist(),
                     "after_by_64": after[:448].reshape(-1, 64).mean(1).tolist()}
    return out


def needle(w, tok) -> dict:
    """Teacher-forced needle retrieval: 1 where every digit of the secret is the argmax, for each length x depth."""
    hay = tok(tiny.corpus_text())["input_ids"]
    fact = tok(" The secret number is 7314.")["input_ids"]
    question = tok("\nQuestion: What is the secret number?\nAnswer: The secret number is")["input_ids"]
    answer = tok(" 7314")["input_ids"]
    grid, margin = [], []
    for n in NEEDLE_LENGTHS:
        row, mrow = [], []
        for depth in DEPTHS:
            body = hay[:n - len(fact) - len(question) - len(answer)]
            cut = int(round(depth * len(body)))
            ids = torch.tensor(body[:cut] + fact + body[cut:] + question + answer)[None]
            with torch.no_grad():
                logits = attention.forward(w, ids[:, :-1])[0, -len(answer):]
            target = ids[0, -len(answer):]
            row.append(int((logits.argmax(-1) == target).all()))
            mrow.append(torch.log_softmax(logits, -1).gather(1, target[:, None]).sum().item())
        grid.append(row)
        margin.append(mrow)
    return {"lengths": NEEDLE_LENGTHS, "depths": DEPTHS, "found": grid, "answer_logprob": margin}


def prefill_fit(w) -> dict:
    """Best-of-2 prefill seconds at each length and the least-squares fit a + b n + c n^2."""
    secs = []
    for n in PREFILL_LENGTHS:
        ids = torch.randint(0, w.vocab_size, (1, n), generator=torch.Generator().manual_seed(n))
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            with torch.no_grad():
                attention.forward(w, ids)
            best = min(best, time.perf_counter() - t0)
        secs.append(best)
    n = np.array(PREFILL_LENGTHS, dtype=float)
    coef, *_ = np.linalg.lstsq(np.stack([np.ones_like(n), n, n ** 2], 1), np.array(secs), rcond=None)
    return {"lengths": PREFILL_LENGTHS, "seconds": secs, "a": coef[0], "b": coef[1], "c": coef[2]}


def measure() -> dict:
    """All four parts; the real model loads once."""
    t0 = time.perf_counter()
    model, tok = models.load()
    w = attention.from_model(model)
    data = {"window": window_ppl(w, tok), "rope": rope_scaling(), "needle": needle(w, tok), "prefill": prefill_fit(w)}
    data["seconds"] = time.perf_counter() - t0
    return data


def report(d: dict) -> str:
    """Markdown summary."""
    win, rope, nd, pf = d["window"], d["rope"], d["needle"], d["prefill"]
    lines = ["# Long context on CPU: windows and sinks, RoPE scaling, needle in a haystack, prefill fit", "",
             machine_header(), "", f"Run took {d['seconds']:.0f} s.", "",
             f"## SmolLM2 loss by position ({SEQ} tokens, window {WINDOW}, sinks {SINKS})", "",
             "| positions | full | window | window + sinks |", "|---|---|---|---|"]
    for i in range(0, SEQ // 64, 2):
        lines.append(f"| {i * 64}-{i * 64 + 63} | {win['full'][i]:.3f} | {win['window'][i]:.3f} | "
                     f"{win['window_sinks'][i]:.3f} |")
    lines += ["", f"KV bytes (fp32) at {SEQ} tokens: full {win['full_kv_bytes']:,}, window {win['window_kv_bytes']:,}, "
                  f"window + sinks {win['window_sinks_kv_bytes']:,}.", "",
              f"## Tiny model trained at {SHORT} positions, evaluated at {LONG} (factor {FACTOR:g})", "",
              "| RoPE | before: loss < 64 | before: loss >= 64 | after finetune: < 64 | after: >= 64 |",
              "|---|---|---|---|---|"]
    for kind, r in rope.items():
        lines.append(f"| {kind} | {r['before_short']:.3f} | {r['before_long']:.3f} | {r['after_short']:.3f} | "
                     f"{r['after_long']:.3f} |")
    lines += ["", "## Needle in a haystack (1 = every answer digit is the argmax)", "",
              "| length \\ depth | " + " | ".join(f"{x:g}" for x in nd["depths"]) + " |",
              "|---|" + "---|" * len(nd["depths"])]
    for n, row in zip(nd["lengths"], nd["found"]):
        lines.append(f"| {n} | " + " | ".join(str(v) for v in row) + " |")
    lines += ["", "## Prefill time", "", "| tokens | seconds |", "|---|---|"]
    lines += [f"| {n} | {s:.3f} |" for n, s in zip(pf["lengths"], pf["seconds"])]
    lines += ["", f"Fit: t = {pf['a']:.3g} + {pf['b']:.3g} n + {pf['c']:.3g} n^2 seconds."]
    return "\n".join(lines)


if __name__ == "__main__":
    data = measure()
    md = report(data)
    print(md)
    write_result("long-context", md, "cpu", data=data)
