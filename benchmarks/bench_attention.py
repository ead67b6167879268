"""Chapter 03 benchmark: llmlab's cached greedy loop vs transformers' generate, the bandwidth roofline, cache vs none.

Run: python -m llmlab bench attention   (or python benchmarks/bench_attention.py --new-tokens 256 --repeats 2)
Everything is measured side by side in one run on this machine; the table is printed and written to
benchmarks/results/YYYY-MM-DD-cpu-attention.md.
"""

from __future__ import annotations

import argparse
import copy
import sys

import torch
import torch.nn.functional as F
from common import machine_header, write_result
from common import timed as common_timed

from llmlab import attention, kv_cache, models

PROMPT = "Tell me about the ocean."


class GrowingCache:
    """A DynamicCache-style cache that concatenates on every step (for the static-cache ablation)."""

    def __init__(self, layers: int):
        self.k: list = [None] * layers
        self.v: list = [None] * layers
        self.lengths = [0] * layers

    @property
    def length(self) -> int:
        return min(self.lengths)

    def append(self, layer, k, v):
        self.k[layer] = k if self.k[layer] is None else torch.cat([self.k[layer], k], dim=2)
        self.v[layer] = v if self.v[layer] is None else torch.cat([self.v[layer], v], dim=2)
        self.lengths[layer] = self.k[layer].shape[2]
        return self.k[layer], self.v[layer]


@torch.inference_mode()
def generate_growing(w, ids, n):
    """Greedy loop like kv_cache.generate but with the growing (torch.cat) cache."""
    cache = GrowingCache(w.num_layers)
    logits = attention.forward(w, ids, cache)[:, -1]
    out = []
    for _ in range(n):
        token = logits.argmax(-1)
        out.append(token)
        if len(out) < n:
            logits = attention.forward(w, token[:, None], cache)[:, -1]
    return torch.stack(out, 1)


def timed(fn):
    """(seconds, result) of one call (this script's order; common.timed returns (result, seconds))."""
    result, seconds = common_timed(fn)
    return seconds, result


def gemv_bandwidth(mb: int = 512, repeats: int = 5) -> list[float]:
    """GB/s reading an fp32 matrix of `mb` MB in a matrix-vector product (the decode step's access pattern).

    Each repeat times both layouts, (out, in) rows and input-major, and keeps the faster: the roofline must not
    be lowered by a slow layout.
    """
    cols = 2048
    rows = mb * 2**20 // (4 * cols)
    weight = torch.randn(rows, cols)
    layouts = [weight, attention.input_major(weight)]
    x = torch.randn(1, cols)
    for w in layouts:
        F.linear(x, w)
    out = []
    for _ in range(repeats):
        seconds = min(timed(lambda w=w: F.linear(x, w))[0] for w in layouts)
        out.append(weight.numel() * 4 / seconds / 1e9)
    return out


def projection_microbench(w, repeats: int = 200) -> tuple[float, float]:
    """Milliseconds per token for all layers' q/k/v + gate/up projections: separate calls vs fused."""
    x = torch.randn(1, 1, w.hidden_size)
    hq, hk, d = w.num_heads, w.num_kv_heads, w.head_dim
    splits = [(layer.wqkv[:hq * d], layer.wqkv[hq * d:(hq + hk) * d], layer.wqkv[(hq + hk) * d:],
               layer.wgate, layer.wup) for layer in w.layers]
    sep = [tuple(attention.input_major(t) for t in s) for s in splits]

    def separate():
        for s in sep:
            for t in s:
                F.linear(x, t)

    def fused():
        for layer in w.layers:
            F.linear(x, layer.wqkv)
            F.linear(x, layer.wgate)
            F.linear(x, layer.wup)

    res = []
    for fn in (separate, fused):
        fn()
        best = min(timed(fn)[0] for _ in range(repeats // 20))
        res.append(best * 1e3)
    return res[0], res[1]


def leading_matches(a: torch.Tensor, b: torch.Tensor) -> int:
    """How many tokens two generations share before they first differ."""
    differ = (a != b).nonzero()
    return int(differ[0, 0]) if len(differ) else len(a)


def spread(values: list[float]) -> str:
    """'best (min–max over n runs)'."""
    return f"{max(values):.2f} ({min(values):.2f}–{max(values):.2f}, n={len(values)})"


@torch.inference_mode()
def measure(n: int, repeats: int, nocache_runs: bool, bf16_runs: bool) -> dict:
    """Every measurement of the table, side by side in one process; returns the raw numbers."""
    model, tokenizer = models.load(device="cpu")
    model.generation_config.eos_token_id = None  # exactly n tokens from both, no early stop
    ids = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)["input_ids"]
    # the prompt contains <|im_end|> (id 2), which is also the pad id: without an explicit mask generate would
    # mask those positions out
    settings = dict(attention_mask=torch.ones_like(ids), do_sample=False, pad_token_id=tokenizer.pad_token_id)
    w = attention.from_model(model)

    def hf(m, use_cache=True, tokens=n):
        return m.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, use_cache=use_cache,
                          **settings)[0, ids.shape[1]:]

    # transformers' weights come straight from safetensors at unaligned addresses; an aligned copy is both a little
    # faster and bit-identical to llmlab's (aligned) copies in the matrix-vector products, so it is shown as well
    aligned, _ = models.load(device="cpu")
    aligned.generation_config.eos_token_id = None
    for p in aligned.parameters():
        p.data = p.data.clone()

    hf(model, tokens=2), hf(aligned, tokens=2), kv_cache.generate(w, ids, 2), generate_growing(w, ids, 2)
    rates: dict[str, list[float]] = {k: [] for k in ["hf", "hf_aligned", "llmlab", "llmlab_growing"]}
    outputs, bandwidths = {}, []
    for _ in range(repeats):  # interleaved so that contention from other users hits all of them alike
        bandwidths += gemv_bandwidth()
        for key, fn in [("hf", lambda: hf(model)), ("hf_aligned", lambda: hf(aligned)),
                        ("llmlab", lambda: kv_cache.generate(w, ids, n)[0]),
                        ("llmlab_growing", lambda: generate_growing(w, ids, n)[0])]:
            seconds, out = timed(fn)
            rates[key].append(n / seconds)
            outputs[key] = out
            print(f"  {key}: {n / seconds:.2f} tok/s", file=sys.stderr, flush=True)
    bandwidths += gemv_bandwidth()
    res = dict(n=n, repeats=repeats, prompt_tokens=ids.shape[1], rates=rates, bandwidths=bandwidths,
               weight_bytes=w.nbytes(), same_hf=torch.equal(outputs["llmlab"], outputs["hf"]),
               same_aligned=torch.equal(outputs["llmlab"], outputs["hf_aligned"]),
               projections=projection_microbench(w), nocache={}, bf16={})
    assert res["same_aligned"], "llmlab's greedy tokens differ from transformers' (aligned weights)"
    if nocache_runs:
        seconds, out = timed(lambda: kv_cache.generate(w, ids, n, use_cache=False)[0])
        res["nocache"]["llmlab"] = n / seconds
        assert torch.equal(out, outputs["llmlab"]), "no-cache tokens differ from cached tokens"
        res["nocache"]["hf"] = n / timed(lambda: hf(model, use_cache=False))[0]
    if bf16_runs:  # half the bytes per token; the tokens may drift from fp32's, so they are compared
        model16 = copy.deepcopy(aligned).to(torch.bfloat16)
        w16 = attention.from_model(model16)
        hf(model16, tokens=2), kv_cache.generate(w16, ids, 2)
        for key, fn in [("hf", lambda: hf(model16)), ("llmlab", lambda: kv_cache.generate(w16, ids, n)[0])]:
            seconds, out = timed(fn)
            res["bf16"][key] = (n / seconds, leading_matches(out, outputs["llmlab"]))
    return res


def report(res: dict) -> str:
    """The markdown results: measurements, then targets."""
    n, rates, nocache, bf16 = res["n"], res["rates"], res["nocache"], res["bf16"]
    bw = max(res["bandwidths"])
    roofline = bw * 1e9 / res["weight_bytes"]
    best = {k: max(v) for k, v in rates.items()}
    hf_best = max(best["hf"], best["hf_aligned"])
    ratio_hf, ratio_roof = best["llmlab"] / hf_best, best["llmlab"] / roofline
    sep_ms, fused_ms = res["projections"]
    lines = [
        f"# Chapter 03 benchmark: attention and the KV cache — {machine_header('cpu')}",
        "",
        f"SmolLM2-135M-Instruct fp32, greedy, prompt {PROMPT!r} in the chat template ({res['prompt_tokens']} "
        f"tokens), {n} new tokens, EOS disabled. Every tok/s is the best of {res['repeats']} interleaved runs, "
        "range in brackets.",
        "",
        "| measurement | value |",
        "|---|---|",
        f"| transformers `generate`, cached, tok/s | {spread(rates['hf'])} |",
        f"| transformers `generate`, cached, aligned weight copies, tok/s | {spread(rates['hf_aligned'])} |",
        f"| llmlab cached greedy (static cache, fused input-major projections), tok/s | {spread(rates['llmlab'])} |",
        f"| llmlab with a growing torch.cat cache instead, tok/s | {spread(rates['llmlab_growing'])} |",
        f"| llmlab tokens identical to transformers' (as loaded / aligned) | {res['same_hf']} / "
        f"{res['same_aligned']} |",
        f"| gemv memory bandwidth, 512 MB fp32 matrix, faster of two layouts, GB/s | {spread(res['bandwidths'])} |",
        f"| weights read per token, MB | {res['weight_bytes'] / 1e6:.0f} |",
        f"| bandwidth roofline (bandwidth / weight bytes), tok/s | {roofline:.1f} |",
        f"| q/k/v + gate/up projections, 30 layers, separate vs fused, ms/token | {sep_ms:.2f} vs {fused_ms:.2f} |",
    ]
    if nocache:
        lines += [f"| transformers `generate`, no cache, tok/s | {nocache['hf']:.2f} |",
                  f"| llmlab, no cache, tok/s | {nocache['llmlab']:.2f} |"]
    if bf16:
        lines += [
            f"| transformers `generate`, bf16 weights, tok/s (tokens equal to fp32's before the first difference) "
            f"| {bf16['hf'][0]:.2f} ({bf16['hf'][1]}/{n}) |",
            f"| llmlab cached greedy, bf16 weights, tok/s (same) | {bf16['llmlab'][0]:.2f} ({bf16['llmlab'][1]}/{n}) |",
        ]
    lines += ["", "| target | measured | met |", "|---|---|---|",
              f"| llmlab ≥ 1.3× transformers (best of the two rows) | {ratio_hf:.2f}× | {ratio_hf >= 1.3} |",
              f"| llmlab ≥ 60% of the bandwidth roofline | {100 * ratio_roof:.0f}% | {ratio_roof >= 0.6} |"]
    if nocache:
        ratio_cache = best["llmlab"] / nocache["llmlab"]
        lines.append(f"| cache vs no cache ≥ 4× at {n} new tokens (llmlab) | {ratio_cache:.1f}× | {ratio_cache >= 4} |")
        lines.append(f"| (transformers, same) | {hf_best / nocache['hf']:.1f}× | {hf_best / nocache['hf'] >= 4} |")
    if bf16:
        ratio16 = bf16["llmlab"][0] / hf_best
        lines.append(f"| (llmlab bf16 ≥ 1.3× transformers fp32; tokens not identical, so it does not count) "
                     f"| {ratio16:.2f}× | — |")
    return "\n".join(lines) + "\n"


def main() -> int:
    """Parse arguments, measure, print the table and write it to benchmarks/results/."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each cached generator")
    parser.add_argument("--skip-nocache", action="store_true", help="skip the slow no-cache runs")
    parser.add_argument("--skip-bf16", action="store_true", help="skip the bf16 runs")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write a results file")
    args = parser.parse_args()
    if args.new_tokens < 1 or args.repeats < 1:
        parser.error(f"--new-tokens and --repeats must be >= 1, got {args.new_tokens} and {args.repeats}")
    res = measure(args.new_tokens, args.repeats, not args.skip_nocache, not args.skip_bf16)
    text = report(res)
    print(text)
    if not args.no_write:
        print(f"wrote {write_result('attention', text, 'cpu', data=res)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
