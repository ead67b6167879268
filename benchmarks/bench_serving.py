"""Chapter 10 benchmark: the batch curve, continuous batching vs sequential serving, prefix caching, MBU/MFU.

Run: python -m llmlab bench serving   (or python benchmarks/bench_serving.py --requests 16 --rate 2)
Wrap it in `flock /tmp/llmlab-heavy.lock` on a shared machine. Everything is measured in one run on this machine;
the tables are printed and written to benchmarks/results/YYYY-MM-DD-<device>-serving.md.

Targets (issue 16): batch-16 decode ≥ 5× the tokens/s of batch 1; continuous batching ≥ 2× the throughput of
sequential serving at equal or better p50 latency under the same Poisson load; prefix caching cuts the TTFT of a
request with a ~600-token shared system prompt ≥ 3×. The verdicts are printed, never written into the result file
that notebook 10 reads.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from common import machine_header, write_result  # benchmarks/ is on sys.path when a script runs

from llmlab import attention, models
from llmlab.kv_cache import time_prefill_decode
from llmlab.serving import engine, prefix_cache, roofline, server, utilization
from llmlab.tasks import support

BATCHES = [1, 2, 4, 8, 16, 32]


def measure(args: argparse.Namespace) -> dict:
    """Run every measurement; returns plain data."""
    model, tok = models.load()
    w = attention.from_model(model, max_positions=2048)
    hw = roofline.measure_machine(device=model.device)
    prompt = torch.tensor([support.request_ids(tok, support.QUESTIONS[0], with_system=False)], device=model.device)
    curve = engine.measure_batch_decode(w, prompt, BATCHES, new_tokens=args.new_tokens, repeats=args.repeats)
    long_prompt = torch.tensor([support.request_ids(tok, support.QUESTIONS[1])], device=model.device)
    prefill_s = min(time_prefill_decode(w, long_prompt, decode_tokens=1)[0] for _ in range(args.repeats))

    rng = np.random.default_rng(0)
    questions = [support.QUESTIONS[i % len(support.QUESTIONS)] for i in range(args.requests)]
    prompts = [support.request_ids(tok, q, with_system=False) for q in questions]
    lengths = rng.integers(args.min_out, args.max_out + 1, size=args.requests).tolist()
    serving = {}
    for name, max_batch in (("sequential (max_batch=1)", 1), (f"continuous (max_batch={args.max_batch})",
                                                              args.max_batch)):
        with server.serve(w, max_batch=max_batch, timeout=args.timeout) as url:
            serving[name] = server.run_load(url, prompts, lengths, rate=args.rate, seed=1, timeout=args.timeout)

    system = support.system_ids(tok)
    suffixes = [support.request_ids(tok, q)[len(system):] for q in support.QUESTIONS[:args.prefix_requests]]
    prefix_cache.measure_prefix_ttft(w, system[:32], suffixes[:1])  # warm-up
    prefix = prefix_cache.measure_prefix_ttft(w, system, suffixes)
    return {"hw": hw, "w": w, "curve": curve, "prefill_s": prefill_s, "prefill_tokens": long_prompt.shape[1],
            "serving": serving, "prefix": prefix, "args": args, "load_after": os.getloadavg()}


def verdict(ok: bool) -> str:
    """PASS or MISS."""
    return "**PASS**" if ok else "**MISS**"


def format_targets(d: dict) -> str:
    """The issue's targets with PASS/MISS verdicts, for the terminal only (never in the result file)."""
    curve, runs, px = d["curve"], [r.summary() for r in d["serving"].values()], d["prefix"]
    b16 = next(p for p in curve if p.batch == 16).tokens_per_s / curve[0].tokens_per_s
    ratio = runs[1]["throughput tok/s"] / runs[0]["throughput tok/s"]
    ok = ratio >= 2 and runs[1]["latency p50"] <= runs[0]["latency p50"]
    return "\n".join([f"Target batch 16 ≥ 5× batch 1: {b16:.2f}× {verdict(b16 >= 5)}",
                      (f"Target continuous ≥ 2× sequential throughput at equal or better p50 latency: "
                       f"{ratio:.2f}× {verdict(ok)}"),
                      f"Target prefix caching ≥ 3× TTFT: {px.speedup:.1f}× {verdict(px.speedup >= 3)}"])


def format_report(d: dict) -> str:
    """Markdown tables from measure()'s data."""
    hw, w, curve, a = d["hw"], d["w"], d["curve"], d["args"]
    params = w.nbytes() // w.embed.element_size()
    bpp = w.embed.element_size()
    lines = ["# Chapter 10 serving benchmark (SmolLM2-135M-Instruct, fp32, llmlab's own decode loop)", "",
             machine_header(w.embed.device), "",
             (f"This machine, measured now: {hw.peak('fp32') / 1e9:.1f} GFLOP/s (fp32 matmul), "
             f"{hw.bandwidth / 1e9:.1f} GB/s (matrix-vector read); ridge point "
             f"{hw.ridge_point('fp32'):.1f} FLOP/byte. Weights read per step: {w.nbytes() / 1e6:.0f} MB "
             f"({params / 1e6:.0f} M parameters in matmuls)."), "",
             (f"## Batched decode ({curve[0].prompt_tokens}-token prompt, {a.new_tokens} new tokens, best of "
              f"{a.repeats})"), "",
             ("| batch | TTFT s | s/step | tokens/s | × batch 1 | request latency s | FLOP/byte | GFLOP/s attained "
              "| roofline GFLOP/s |"), "|---|---|---|---|---|---|---|---|---|"]
    base = curve[0].tokens_per_s
    for p in curve:
        ai = roofline.forward_intensity(params, p.batch, bpp)
        got = 2 * params * p.batch / p.tpot
        roof = roofline.attainable_flops(ai, hw.peak("fp32"), hw.bandwidth)
        lines.append(f"| {p.batch} | {p.ttft:.3f} | {p.tpot:.3f} | {p.tokens_per_s:.1f} | "
                     f"{p.tokens_per_s / base:.2f} | {p.request_latency:.2f} | {ai:.1f} | {got / 1e9:.1f} | "
                     f"{roof / 1e9:.1f} |")
    b16 = next(p for p in curve if p.batch == 16).tokens_per_s / base
    mbu = utilization.mbu(params, bpp, base, hw.bandwidth / 1e9)
    prefill_tps = d["prefill_tokens"] / d["prefill_s"]
    mfu = utilization.mfu(params, prefill_tps, hw.peak("fp32") / 1e12)
    lines += ["", f"Batch 16 gives {b16:.2f}× the tokens/s of batch 1.", "",
              (f"MBU of batch-1 decode: {params / 1e6:.0f} M × {bpp} B × {base:.1f} tok/s = "
              f"{params * bpp * base / 1e9:.2f} GB/s of {hw.bandwidth / 1e9:.1f} GB/s measured = **{mbu:.0%}**. "
              f"MFU of a {d['prefill_tokens']}-token prefill ({prefill_tps:.0f} tok/s): **{mfu:.0%}** of the "
              f"measured fp32 matmul peak."), ""]
    lines += [(f"## Serving over HTTP on loopback: {a.requests} requests, Poisson at {a.rate}/s, "
               f"{a.min_out}–{a.max_out} new tokens each (EOS ignored), same trace for both"), "",
              "| server | wall s | tokens/s | latency p50 s | latency p90 s | TTFT p50 s |",
              "|---|---|---|---|---|---|"]
    runs = list(d["serving"].items())
    for name, r in runs:
        s = r.summary()
        lines.append(f"| {name} | {s['wall s']:.1f} | {s['throughput tok/s']:.1f} | {s['latency p50']:.2f} | "
                     f"{s['latency p90']:.2f} | {s['ttft p50']:.2f} |")
    seq, cont = runs[0][1].summary(), runs[1][1].summary()
    ratio = cont["throughput tok/s"] / seq["throughput tok/s"]
    lines += ["", (f"Continuous batching gives {ratio:.2f}× the throughput of sequential serving, p50 latency "
                   f"{cont['latency p50']:.2f} s vs {seq['latency p50']:.2f} s."), ""]
    px = d["prefix"]
    lines += [(f"## Prefix caching: {px.prefix_tokens}-token shared system prompt, questions of "
               f"{min(px.suffix_tokens)}–{max(px.suffix_tokens)} tokens"), "",
              "| question tokens | TTFT full prefill s | TTFT from cached prefix s | × |", "|---|---|---|---|"]
    for n, u, c in zip(px.suffix_tokens, px.uncached, px.cached):
        lines.append(f"| {n} | {u:.3f} | {c:.3f} | {u / c:.1f} |")
    lines += ["", f"Median speedup {px.speedup:.1f}×.", "",
              f"Load average after the run: {', '.join(f'{x:.2f}' for x in d['load_after'])}"]
    return "\n".join(lines)


def main() -> int:
    """Measure, print, write."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--rate", type=float, default=2.0, help="Poisson arrivals per second")
    parser.add_argument("--min-out", type=int, default=16)
    parser.add_argument("--max-out", type=int, default=32)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--prefix-requests", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=580.0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # 1 avoids OpenMP barrier stalls when the cores are oversubscribed
    data = measure(args)
    report = format_report(data)
    print(report)
    kept = {k: v for k, v in data.items() if k != 'w'}  # everything but the weights
    print(f"\nwritten to {write_result('serving', report, models.device(), data=kept)}")
    print(format_targets(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
