"""Chapter 07 benchmark: speculative decoding of SmolLM2-135M-Instruct with the kit's trained draft and prompt lookup.

Compares, on the 20 shipped evaluation prompts, greedy, in one run with the methods alternating per prompt:
llmlab's plain cached decoding (kv_cache.generate), llmlab's speculative loop (trained draft, reduced and full head;
prompt lookup), transformers' generate, generate(assistant_model=<the same trained draft>) and
generate(prompt_lookup_num_tokens=...). Also measures T(k)/T(1) for a k-token target pass and the draft's cost
ratio c, and prints the speedup model with them. On a machine without a GPU it prints the *predicted* GPU speedup
(a model, not a measurement).

Run: flock /tmp/llmlab-heavy.lock python benchmarks/bench_speculative.py [--prompts 20 --new-tokens 64]
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial

import torch
from common import machine_header, timed, write_result

from llmlab import attention, kv_cache, models
from llmlab import speculative as S
from llmlab.serving.timing import summarise

H100 = {"bandwidth_gb_s": 3350, "bf16_tflops": 989, "launch_us": 5.0}  # H100 SXM datasheet; launch: a typical figure


@torch.inference_mode()
def pass_cost(w, ids: torch.Tensor, ks: list[int], repeats: int) -> dict[int, float]:
    """Median seconds of one cached target pass over k new tokens after the prompt, for each k."""
    sync = models.synchronizer(ids.device)

    def one_pass(feed, cache):
        out = attention.forward(w, feed, cache)
        sync()
        return out

    cache = kv_cache.KVCache.for_weights(w, 1, ids.shape[1] + max(ks))
    for _ in range(3 * repeats):  # warm up: a GPU starts at idle clocks, a CPU's caches are cold
        cache.truncate(0)
        one_pass(ids, cache)
    times: dict[int, list[float]] = {k: [] for k in ks}
    for _ in range(repeats):  # round-robin over k, so drift in the machine's speed hits every k alike
        for k in ks:
            cache.truncate(ids.shape[1])
            times[k].append(timed(one_pass, ids[:, -k:], cache)[1])
    return {k: summarise(v).median for k, v in times.items()}


@torch.inference_mode()
def draft_step_cost(draft: S.ModelDraft, ids: torch.Tensor, repeats: int) -> float:
    """Median seconds of one cached draft step (one token)."""
    times = []
    for _ in range(repeats):
        draft.start(ids[0].tolist(), ids.shape[1] + 16)
        _, t = timed(draft.propose, ids[0].tolist(), 1, S.GREEDY, torch.Generator())
        times.append(t)
    return summarise(times).median


def hf_generate(model, ids, n, eos, **kwargs) -> list[int]:
    """transformers' greedy generate; new token ids."""
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                         eos_token_id=eos, pad_token_id=eos, **kwargs)
    return out[0, ids.shape[1]:].tolist()


def measure(n_prompts: int, new_tokens: int, gamma: int, repeats: int, skip_hf: bool, quick: bool = False) -> dict:
    """Everything: pass costs, c, and per-method tokens, seconds and statistics over the prompts."""
    device = models.device()
    model, tok = models.load(device=device)
    w = attention.from_model(model, max_positions=2048)
    eos = tok.eos_token_id
    drafts = {"trained draft (reduced head)": S.trained_draft(w, tok),
              "trained draft (full head)": S.trained_draft(w, tok, full_head=True),
              "prompt lookup": S.NgramDraft()}
    prompts = S.prompts("eval")[:n_prompts]
    ids0 = S.encode(tok, prompts[0]).to(device)
    costs = pass_cost(w, ids0, list(range(1, 10)), repeats)
    c = {name: draft_step_cost(d, ids0, repeats) / costs[1] for name, d in drafts.items()
         if isinstance(d, S.ModelDraft)}
    hf_draft = None if skip_hf else S.load_draft(model, tok)[0]

    def plain(ids):
        return kv_cache.generate(w, ids, new_tokens, eos_token_id=eos)[0].tolist()

    def spec(draft, ids, adaptive=False):
        return S.generate(w, draft, ids, new_tokens, gamma=gamma, eos_token_id=eos, adaptive=adaptive)

    methods = {"llmlab plain (kv_cache.generate)": plain}
    for name, d in drafts.items():
        methods[f"llmlab speculative, {name}, γ={gamma}"] = partial(spec, d)
    if not quick:
        methods[f"llmlab speculative, trained draft (reduced head), adaptive γ from {gamma}"] = partial(
            spec, drafts["trained draft (reduced head)"], adaptive=True)
    else:
        del methods[f"llmlab speculative, trained draft (full head), γ={gamma}"]
    if not skip_hf and not quick:
        methods["transformers generate"] = lambda ids: hf_generate(model, ids, new_tokens, eos)
    if not skip_hf:
        methods[f"transformers assistant_model=trained draft, γ={gamma} constant"] = lambda ids: hf_generate(
            model, ids, new_tokens, eos, assistant_model=hf_draft)
        if not quick:
            methods[f"transformers prompt_lookup_num_tokens={gamma}"] = lambda ids: hf_generate(
                model, ids, new_tokens, eos, prompt_lookup_num_tokens=gamma)
    if hf_draft is not None:
        hf_draft.generation_config.num_assistant_tokens = gamma
        hf_draft.generation_config.num_assistant_tokens_schedule = "constant"

    rows = {name: {"tokens": 0, "seconds": 0.0, "identical": 0, "accepted": 0, "proposed": 0, "rejections": 0,
                   "passes": 0}
            for name in methods}
    names = list(methods)
    with torch.inference_mode():
        for i, prompt in enumerate(prompts):
            ids = S.encode(tok, prompt).to(device)
            reference = None
            order = names if i % 2 == 0 else names[::-1]  # alternate so drift in machine load hits all alike
            outputs = {}
            for name in order:
                out, seconds = timed(methods[name], ids)
                if isinstance(out, S.SpeculativeResult):
                    r = rows[name]
                    r["accepted"] += out.accepted
                    r["proposed"] += out.proposed
                    r["rejections"] += out.rejections
                    r["passes"] += out.target_passes
                    out = out.token_ids
                outputs[name] = out
                rows[name]["tokens"] += len(out)
                rows[name]["seconds"] += seconds
            reference = outputs[names[0]]
            for name in names:
                rows[name]["identical"] += outputs[name] == reference
            print(f"  prompt {i + 1}/{len(prompts)} done", flush=True)
    return {"device": device, "costs": costs, "c": c, "rows": rows, "prompts": len(prompts),
            "new_tokens": new_tokens, "gamma": gamma}


def gpu_prediction(alpha: float, gamma: int, params_target: float = 134.5e6, params_draft: float = 9.2e6,
                   layers_target: int = 30, layers_draft: int = 2) -> dict[str, float]:
    """A model of the H100 speedup: per pass max(bytes / bandwidth, kernel launches), T(γ+1)/T(1) ≈ 1."""
    def step(params, layers):
        memory = params * 2 / (H100["bandwidth_gb_s"] * 1e9)
        launches = (layers * 12 + 4) * H100["launch_us"] * 1e-6
        return max(memory, launches)
    c = step(params_draft, layers_draft) / step(params_target, layers_target)
    return {"c": c, "speedup": S.predicted_speedup(alpha, gamma, c, 1.0),
            "target_step_ms": step(params_target, layers_target) * 1e3}


def format_report(m: dict, header: str) -> str:
    """Markdown: pass costs, c, the per-method table, the speedup model and the GPU prediction."""
    costs, rows, gamma = m["costs"], m["rows"], m["gamma"]
    plain = rows["llmlab plain (kv_cache.generate)"]
    plain_tps = plain["tokens"] / plain["seconds"]
    title = (f"# Speculative decoding, SmolLM2-135M-Instruct, {m['prompts']} prompts × ≤{m['new_tokens']} new "
             f"tokens, greedy")
    lines = [title, "", header, "",
             "## Target pass cost T(k)/T(1) (cached, after the prompt)", "",
             "| k | " + " | ".join(str(k) for k in costs) + " |", "|---|" + "---|" * len(costs),
             "| ms | " + " | ".join(f"{v * 1e3:.1f}" for v in costs.values()) + " |",
             "| T(k)/T(1) | " + " | ".join(f"{v / costs[1]:.2f}" for v in costs.values()) + " |", "",
             "Draft cost ratio c (one draft step / one target step): "
             + ", ".join(f"{k}: {v:.3f}" for k, v in m["c"].items()), "",
             "## Methods (alternating order per prompt)", "",
             "| method | tokens/s | vs llmlab plain | identical to llmlab plain | α | tokens per target pass |",
             "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        tps = r["tokens"] / r["seconds"]
        tried = r["accepted"] + r["rejections"]
        alpha = f"{r['accepted'] / tried:.3f}" if tried else ""
        per_pass = f"{r['tokens'] / r['passes']:.2f}" if r["passes"] else ""
        lines.append(f"| {name} | {tps:.1f} | {tps / plain_tps:.2f}× | {r['identical']}/{m['prompts']} | {alpha} | "
                     f"{per_pass} |")
    hf = [n for n in rows if n.startswith("transformers assistant")]
    main = f"llmlab speculative, trained draft (reduced head), γ={gamma}"
    if hf:
        ours = rows[main]["tokens"] / rows[main]["seconds"]
        theirs = rows[hf[0]]["tokens"] / rows[hf[0]]["seconds"]
        lines += ["", (f"llmlab speculative vs transformers assisted generation (same draft, same run): "
                       f"{ours / theirs:.2f}×")]
    r = rows[main]
    alpha = r["accepted"] / max(1, r["accepted"] + r["rejections"])
    c = m["c"]["trained draft (reduced head)"]
    lines += ["", "## Speedup model with the measured α, c and T(γ+1)/T(1)", "",
              "| γ | tokens per pass (1−α^(γ+1))/(1−α) | predicted speedup |", "|---|---|---|"]
    for g in range(1, 9):
        lines.append(f"| {g} | {S.expected_tokens_per_step(alpha, g):.2f} | "
                     f"{S.predicted_speedup(alpha, g, c, costs[g + 1] / costs[1]):.2f}× |")
    if m["device"].type != "cuda":
        gp = gpu_prediction(alpha, gamma)
        lines += ["", (f"**Predicted GPU speedup (a model, not a measurement; the GPU measurement is owed):** on an "
                      f"H100 ({H100['bandwidth_gb_s']} GB/s, {H100['bf16_tflops']} bf16 TFLOPS) a 135M-parameter "
                      f"decode step is launch-bound (~{gp['target_step_ms']:.2f} ms for ~364 kernels at "
                      f"{H100['launch_us']} µs), so T(γ+1)/T(1) ≈ 1 and c ≈ {gp['c']:.3f} (layer count ratio); with "
                      f"the measured α = {alpha:.3f} and γ = {gamma} the model predicts {gp['speedup']:.2f}×. "
                       f"Run this script on a CUDA machine to measure it.")]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--gamma", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-transformers", action="store_true")
    ap.add_argument("--quick", action="store_true", help="only llmlab plain, speculative (trained, lookup), "
                                                          "transformers assisted")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (1 is fastest on a crowded machine)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    header = machine_header(models.device())
    start = time.time()
    m = measure(args.prompts, args.new_tokens, args.gamma, args.repeats, args.skip_transformers, args.quick)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    report = format_report(m, header) + f"\n\nLoad average at the end: {load}; {time.time() - start:.0f} s in all."
    print(report)
    print(f"wrote {write_result('speculative', report, m['device'], data={'header': header, **m})}")


if __name__ == "__main__":
    main()
