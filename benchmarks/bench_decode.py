"""Batch-1 greedy decode against the memory-bandwidth roofline: every engine step as a row, in fp32, bf16 and int8.

Run with `python benchmarks/bench_decode.py` (about 6 minutes on 2 cores, torch.compile's two compiles included).
The methods run in one process, alternating (one call of each per round), so a load change hits them all alike;
the load average is in the header.
The roofline: a decode step reads every weight once, so tokens/s <= bandwidth / bytes of weights; the bandwidth is
measured here with a large fp32 matrix-vector product (llmlab.serving.roofline.measure_bandwidth).
The profile splits one kit decode step into its matrix products (the same products over the same weights, nothing
else) and the rest (norms, RoPE, cache, attention, Python); each dtype's perplexity is scored on a fixed text.
Writes benchmarks/results/DATE-DEVICE-decode_roofline.md and .json.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import warnings
from dataclasses import replace

import torch
from common import machine_header, write_result

from llmlab import attention, kv_cache, models, prepack, sampling, tokens
from llmlab.evaluation import perplexity
from llmlab.quantization.variants import eval_text
from llmlab.serving import roofline

PROMPT = "Explain in one paragraph why the sky is blue."
PPL_TOKENS = 256
# (row name, what it changes and why it should help)
STEPS = {
    "transformers generate": "the reference: model.generate, greedy, its dynamic cache",
    "sampling.decode on model(...)": "chapter 02's loop before: one transformers forward per token",
    "kit: q/k/v fused, gate/up apart": "the kit's engine as the issue measured it (input-major weights, "
                                       "preallocated cache)",
    "kit: + gate/up fused": "one matrix-vector product for gate and up: the same bytes, one call fewer per layer",
    "kit: + layout per matrix": "each matrix in the layout its product reads fastest (attention.decode_layout): "
                                "down_proj and bf16 matrices keep nn.Linear's rows",
    "kit: + bf16 weights prepacked": "oneDNN's blocked weight layout made once (llmlab.prepack), not copied into "
                                     "on every product; bf16 on an AMX CPU only, bit-identical up to 16 rows",
    "kit: + 1 thread": "no OpenMP fork/join per small op; on a busy machine spinning threads wait on each other",
    "kit: torch.compile(forward)": "inductor on the taught forward as it is: the cache's per-layer Python lengths "
                                   "break the graph and force recompiles, so most of the step stays eager",
    "sampling.decode on the kit": "chapter 02's loop now: the kit's forward and cache under the processors",
    "transformers generate, int8": "torch dynamic quantization's default (fbgemm): one int8 scale per weight "
                                   "matrix, int8 products",
    "transformers generate, int8 per row": "the same with one scale per output row (per_channel_dynamic_qconfig), "
                                           "as chapter 04's int8",
}


def relayout(w: attention.LlamaWeights, layout, fused: bool = True) -> attention.LlamaWeights:
    """The same weights with every matrix stored by `layout` (a function of one matrix); gate/up apart unless fused."""
    layers = []
    for layer in w.layers:
        gate_up = layout(torch.cat([layer.wgate, layer.wup]))
        inner = layer.wgate.shape[0]
        gate, up = (gate_up[:inner], gate_up[inner:]) if fused else (layout(layer.wgate), layout(layer.wup))
        layers.append(replace(layer, wqkv=layout(layer.wqkv), wo=layout(layer.wo), wdown=layout(layer.wdown),
                              wgate=gate, wup=up, wgate_up=gate_up if fused else None))
    return replace(w, layers=layers, lm_head=layout(w.lm_head), head_rows=None)


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


def unpacked(w: attention.LlamaWeights) -> attention.LlamaWeights:
    """The same weights in the same layout, as fresh copies with no prepacked twin (llmlab.prepack)."""
    layers = []
    for layer in w.layers:
        gate_up, inner = layer.wgate_up.clone(), layer.wgate.shape[0]
        layers.append(replace(layer, wqkv=layer.wqkv.clone(), wo=layer.wo.clone(), wdown=layer.wdown.clone(),
                              wgate_up=gate_up, wgate=gate_up[:inner], wup=gate_up[inner:]))
    return replace(w, layers=layers, lm_head=w.lm_head.clone(), head_rows=None)


def int8_model(model, per_row: bool = False):
    """A copy of an fp32 model with every nn.Linear (lm_head included) in torch's dynamic int8 quantization."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    spec = {torch.nn.Linear: per_channel_dynamic_qconfig} if per_row else {torch.nn.Linear}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(model), spec, dtype=torch.qint8)


def int8_bytes(model) -> int:
    """Bytes of int8 weights (and their per-row scales) one decode step reads, norms included."""
    total = 0
    for module in model.modules():
        if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):  # one byte a weight (+ a scale per row)
            weight = module.weight()
            per_row = weight.qscheme() == torch.per_channel_affine
            total += weight.numel() + (weight.shape[0] * 12 if per_row else 0)  # fp64 scale + int32 zero point
        elif type(module).__name__.endswith("RMSNorm"):
            total += sum(p.numel() * p.element_size() for p in module.parameters())
    return total


def hf_generate(model, ids: torch.Tensor, n: int):
    """A call of transformers' greedy generate for n new tokens (list of ids)."""
    def run():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                             eos_token_id=None, pad_token_id=0)
        return out[0, ids.shape[1]:].tolist()
    return run


def methods(model, ids: torch.Tensor, n: int) -> dict:
    """Each row's call: greedy new token ids (list) for the prompt."""
    w = sampling.engine.kit_weights(model)
    w_old = relayout(w, attention.input_major)
    w_apart = relayout(w, attention.input_major, fused=False)
    w_plain = unpacked(w)
    threads = torch.get_num_threads()
    torch._dynamo.reset()
    compiled = torch.compile(attention.forward, dynamic=True)

    def decode_on_model():
        handle = model.register_forward_hook(lambda mod, args, out: None)  # a watched model decodes on its own
        try:
            return sampling.greedy(model, ids, n, eos_token_id=[]).token_ids
        finally:
            handle.remove()

    def kit(weights):
        return lambda: kv_cache.generate(weights, ids, n)[0].tolist()

    def kit_compiled():  # on the unpacked weights: inductor lowers the products itself
        cache = kv_cache.KVCache.for_weights(w_plain, 1, ids.shape[1] + n)
        token = compiled(w_plain, ids, cache)[:, -1].argmax(-1, keepdim=True)
        out = [token.item()]
        for _ in range(n - 1):
            token = compiled(w_plain, token, cache)[:, -1].argmax(-1, keepdim=True)
            out.append(token.item())
        return out

    packed = any(prepack.is_packed(t) for t in (w.lm_head, w.layers[0].wqkv))
    return {
        "transformers generate": _with_threads(threads, hf_generate(model, ids, n)),
        "sampling.decode on model(...)": _with_threads(threads, decode_on_model),
        "kit: q/k/v fused, gate/up apart": _with_threads(threads, kit(w_apart)),
        "kit: + gate/up fused": _with_threads(threads, kit(w_old)),
        "kit: + layout per matrix": _with_threads(threads, kit(w_plain)),
        **({"kit: + bf16 weights prepacked": _with_threads(threads, kit(w))} if packed else {}),
        "kit: + 1 thread": _with_threads(1, kit(w)),
        "kit: torch.compile(forward)": _with_threads(threads, kit_compiled),
        "sampling.decode on the kit": _with_threads(threads, lambda: sampling.greedy(model, ids, n,
                                                                                     eos_token_id=[]).token_ids),
    }


def _median_s(fn, repeats: int) -> float:
    """Median seconds of fn() over repeats calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def profile_step(w: attention.LlamaWeights, ids: torch.Tensor, repeats: int = 20) -> dict:
    """Milliseconds of one kit decode step, and of only its matrix products (same weights, same order)."""
    cache = kv_cache.KVCache.for_weights(w, 1, ids.shape[1] + 1)
    token = kv_cache.prefill(w, ids, cache).argmax(-1)
    length = cache.length

    def step():
        cache.truncate(length)
        kv_cache.decode_step(w, token, cache)

    x = torch.zeros(1, 1, w.hidden_size, dtype=w.embed.dtype)
    inner = torch.zeros(1, 1, w.intermediate_size, dtype=w.embed.dtype)

    def products():
        for layer in w.layers:
            prepack.linear(x, layer.wqkv)
            prepack.linear(x, layer.wo)
            prepack.linear(x, layer.wgate_up)
            prepack.linear(inner, layer.wdown)
        prepack.linear(x, w.lm_head)

    step_s, products_s = _median_s(step, repeats), _median_s(products, repeats)
    return {"step_ms": step_s * 1e3, "products_ms": products_s * 1e3, "rest_ms": (step_s - products_s) * 1e3,
            "products_only_tok_s": 1 / products_s}


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


def _ppl(model, tokenizer) -> float:
    """Perplexity of the first PPL_TOKENS tokens of chapter 04's evaluation text."""
    return perplexity(model, tokenizer, eval_text(), window=PPL_TOKENS, max_tokens=PPL_TOKENS)


def measure_dtype(model, tokenizer, calls: dict, n: int, rounds: int, bandwidth: float, nbytes: int) -> dict:
    """Tokens/s of every row (median over alternating rounds), roofline share and greedy identity for one dtype."""
    with torch.inference_mode():
        for call in calls.values():  # warm-up: first-call allocations and the weight copy
            call()
        times, outputs = _rounds(calls, rounds)
    ceiling = bandwidth / nbytes
    reference = outputs["transformers generate"]
    rows = {}
    for name in calls:
        tok_s = n / statistics.median(times[name])
        rows[name] = {"tok_s": tok_s, "roofline_share": tok_s / ceiling, "identical": outputs[name] == reference}
    return {"bytes_per_token": nbytes, "roofline_tok_s": ceiling, "rows": rows, "tokens": reference,
            "perplexity": _ppl(model, tokenizer)}


def measure(n: int, rounds: int) -> dict:
    """fp32, bf16 and int8 with one bandwidth measurement before them."""
    bandwidth = roofline.measure_bandwidth(256, repeats=5)
    data = {"new_tokens": n, "rounds": rounds, "bandwidth_bytes_s": bandwidth, "threads": torch.get_num_threads(),
            "perplexity_tokens": PPL_TOKENS, "dtypes": {}}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        model, tokenizer = models.load(dtype=dtype, device="cpu")
        ids = tokens.encode_prompt(tokenizer, PROMPT)
        w = sampling.engine.kit_weights(model)
        d = measure_dtype(model, tokenizer, methods(model, ids, n), n, rounds, bandwidth, w.nbytes())
        with torch.inference_mode():
            d["profile"] = profile_step(w, ids)
        d["profile"]["roofline_ms"] = 1e3 / d["roofline_tok_s"]
        d["profile"]["products_only_share"] = d["profile"]["products_only_tok_s"] / d["roofline_tok_s"]
        data["dtypes"][name] = d
        if name == "fp32":
            fp32_model = model
    for name, per_row in (("int8", False), ("int8 per row", True)):
        q = int8_model(fp32_model, per_row)
        row = "transformers generate, int8" + (" per row" if per_row else "")
        calls = {"transformers generate": lambda: data["dtypes"]["fp32"]["tokens"],  # the fp32 reference
                 row: hf_generate(q, ids, n)}
        data["dtypes"][name] = measure_dtype(q, tokenizer, calls, n, rounds, bandwidth, int8_bytes(q))
        del data["dtypes"][name]["rows"]["transformers generate"]
    base = data["dtypes"]["fp32"]["perplexity"]
    for d in data["dtypes"].values():
        d["perplexity_change"] = d["perplexity"] / base - 1
    return data


def format_report(data: dict, header: str) -> str:
    """Markdown: one table per dtype (tokens/s, share of the roofline, identity, why), its profile and perplexity."""
    lines = [f"# Batch-1 greedy decode against the bandwidth roofline\n\n{header}\n",
             f"{data['new_tokens']} new tokens, median of {data['rounds']} alternating rounds, "
             f"bandwidth {data['bandwidth_bytes_s'] / 1e9:.1f} GB/s (fp32 matrix-vector read). Perplexity on the "
             f"first {data['perplexity_tokens']} tokens of chapter 04's evaluation text. int8 tokens are compared "
             f"with fp32 transformers'.\n"]
    for dtype, d in data["dtypes"].items():
        lines += [f"\n## {dtype}: {d['bytes_per_token'] / 1e6:.0f} MB per token, roofline "
                  f"{d['roofline_tok_s']:.1f} tok/s, perplexity {d['perplexity']:.3f} "
                  f"({d['perplexity_change']:+.2%} against fp32)\n"]
        if "profile" in d:
            p = d["profile"]
            lines.append(f"One kit decode step: {p['step_ms']:.1f} ms = {p['products_ms']:.1f} ms of matrix "
                         f"products + {p['rest_ms']:.1f} ms of everything else; the roofline allows "
                         f"{p['roofline_ms']:.1f} ms. With no overhead at all (what fewer Python calls or "
                         f"torch.compile could at most buy) the products alone would run "
                         f"{p['products_only_tok_s']:.1f} tok/s, {p['products_only_share']:.0%} of the roofline.\n")
        lines += ["| method | tok/s | share of roofline | tokens = transformers' | what it changes |",
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
