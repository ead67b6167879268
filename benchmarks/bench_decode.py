"""Batch-1 greedy decode against the memory-bandwidth roofline: every engine step as a row, in fp32 and bf16.

Run with `python benchmarks/bench_decode.py` (about 3 minutes on 2 idle cores). The methods run in one process,
alternating (one call of each per round), so a load change hits them all alike; the load average is in the header.
The roofline: a decode step reads every weight once, so tokens/s <= bandwidth / bytes of weights; the bandwidth is
measured here with a large fp32 matrix-vector product (llmlab.serving.roofline.measure_bandwidth).
Writes benchmarks/results/DATE-DEVICE-decode_roofline.md and .json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch
from common import machine_header, write_result

from llmlab import attention, kv_cache, models, sampling, tokens
from llmlab.serving import roofline

PROMPT = "Explain in one paragraph why the sky is blue."
# (row name, what it changes and why it should help)
STEPS = {
    "transformers generate": "the reference: model.generate, greedy, its dynamic cache",
    "sampling.decode on model(...)": "chapter 02's loop before: one transformers forward per token",
    "kit: q/k/v fused, gate/up apart": "the kit's engine as the issue measured it (input-major weights, "
                                       "preallocated cache)",
    "kit: + gate/up fused": "one matrix-vector product for gate and up: the same bytes, one call fewer per layer",
    "kit: + 1 thread": "no OpenMP fork/join per small op; on a busy machine spinning threads wait on each other",
    "sampling.decode on the kit": "chapter 02's loop now: the kit's forward and cache under the processors",
}


def unfused(w: attention.LlamaWeights) -> attention.LlamaWeights:
    """The same weights with gate and up as two matrices (no fused [gate; up])."""
    return replace(w, layers=[replace(layer, wgate=layer.wgate.contiguous(), wup=layer.wup.contiguous(),
                                      wgate_up=None) for layer in w.layers])


def _with_threads(n: int, fn):
    """fn run with n torch threads, the previous count restored."""
    def run():
        before = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            return fn()
        finally:
            torch.set_num_threads(before)
    return run


def methods(model, ids: torch.Tensor, n: int) -> dict:
    """Each row's call: greedy new token ids (list) for the prompt."""
    w = sampling.engine.kit_weights(model)
    w_apart = unfused(w)
    threads = torch.get_num_threads()

    def hf():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                             eos_token_id=None, pad_token_id=0)
        return out[0, ids.shape[1]:].tolist()

    def decode_on_model():
        handle = model.register_forward_hook(lambda mod, args, out: None)  # a watched model decodes on its own
        try:
            return sampling.greedy(model, ids, n, eos_token_id=[]).token_ids
        finally:
            handle.remove()

    def kit(weights):
        return lambda: kv_cache.generate(weights, ids, n)[0].tolist()

    return {
        "transformers generate": _with_threads(threads, hf),
        "sampling.decode on model(...)": _with_threads(threads, decode_on_model),
        "kit: q/k/v fused, gate/up apart": _with_threads(threads, kit(w_apart)),
        "kit: + gate/up fused": _with_threads(threads, kit(w)),
        "kit: + 1 thread": _with_threads(1, kit(w)),
        "sampling.decode on the kit": _with_threads(threads, lambda: sampling.greedy(model, ids, n,
                                                                                     eos_token_id=[]).token_ids),
    }


def _rounds(calls: dict, rounds: int) -> tuple[dict, dict]:
    """Seconds of each call per round (one call of each, in turn, per round) and each call's last output."""
    times = {name: [] for name in calls}
    outputs = {}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            outputs[name] = call()
            times[name].append(time.perf_counter() - start)
    return times, outputs


def measure_dtype(dtype: torch.dtype, n: int, rounds: int, bandwidth: float) -> dict:
    """Tokens/s of every row (median over alternating rounds), roofline share and greedy identity for one dtype."""
    model, tokenizer = models.load(dtype=dtype, device="cpu")
    ids = tokens.encode_prompt(tokenizer, PROMPT)
    calls = methods(model, ids, n)
    w = sampling.engine.kit_weights(model)
    with torch.inference_mode():
        for call in calls.values():  # warm-up: first-call allocations and the weight copy
            call()
        times, outputs = _rounds(calls, rounds)
    ceiling = bandwidth / w.nbytes()
    reference = outputs["transformers generate"]
    rows = {}
    for name in calls:
        tok_s = n / statistics.median(times[name])
        rows[name] = {"tok_s": tok_s, "roofline_share": tok_s / ceiling, "identical": outputs[name] == reference}
    return {"bytes_per_token": w.nbytes(), "roofline_tok_s": ceiling, "rows": rows, "prompt_tokens": ids.shape[1]}


def measure(n: int, rounds: int) -> dict:
    """Both dtypes with one bandwidth measurement between them."""
    bandwidth = roofline.measure_bandwidth(256, repeats=5)
    data = {"new_tokens": n, "rounds": rounds, "bandwidth_bytes_s": bandwidth, "threads": torch.get_num_threads(),
            "dtypes": {}}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        data["dtypes"][name] = measure_dtype(dtype, n, rounds, bandwidth)
    return data


def format_report(data: dict, header: str) -> str:
    """Markdown: one table per dtype, each row with tokens/s, share of the roofline, identity and why."""
    lines = [f"# Batch-1 greedy decode against the bandwidth roofline\n\n{header}\n",
             f"{data['new_tokens']} new tokens, median of {data['rounds']} alternating rounds, "
             f"bandwidth {data['bandwidth_bytes_s'] / 1e9:.1f} GB/s (fp32 matrix-vector read).\n"]
    for dtype, d in data["dtypes"].items():
        lines += [f"\n## {dtype}: {d['bytes_per_token'] / 1e6:.0f} MB per token, roofline "
                  f"{d['roofline_tok_s']:.1f} tok/s\n",
                  "| method | tok/s | share of roofline | tokens = transformers' | what it changes |",
                  "|---|---|---|---|---|"]
        for name, row in d["rows"].items():
            lines.append(f"| {name} | {row['tok_s']:.1f} | {row['roofline_share']:.0%} | "
                         f"{'yes' if row['identical'] else 'NO'} | {STEPS[name]} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    header = machine_header("cpu")
    data = measure(args.tokens, args.rounds)
    data["header"] = header
    report = format_report(data, header)
    print(report)
    print(write_result("decode_roofline", report, "cpu", data=data))


if __name__ == "__main__":
    main()
