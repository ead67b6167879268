"""Chapter 07 benchmark: speculative decoding of SmolLM2-135M-Instruct in fp32 and bf16, each against its own plain.

For each dtype (the target and every draft in that dtype): T(k)/T(1) for a k-token target pass, each trained
draft's cost ratio c, the pass-shape rounding error ε (a 5-token pass vs 5 one-token passes), and on the held-out
evaluation prompts, greedy, methods alternating per prompt: llmlab plain (kv_cache.generate), llmlab speculative
with the trained token draft, the trained feature (EAGLE-style) draft and prompt lookup (α per draft position,
identity with plain, and for every divergence the plain logit margin at its first token vs 2ε), and the feature
draft's teacher-forced top-1 agreement on plain's answers. In fp32 also transformers' generate(assistant_model=<the
same trained token draft>). Then prompt lookup vs plain (bf16) on the editing task set by type, with intervals.

Run: flock /tmp/llmlab-heavy.lock python benchmarks/bench_speculative.py [--prompts 10 --new-tokens 48]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from common import machine_header, timed, write_result

from llmlab import attention, kv_cache, models
from llmlab import speculative as S
from llmlab.evaluation.stats import bootstrap_ci
from llmlab.serving.timing import summarise

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
POSITIONS = 4


@torch.inference_mode()
def pass_cost(w, ids: torch.Tensor, ks: list[int], repeats: int) -> dict[int, float]:
    """Median seconds of one cached target pass over k new tokens after the prompt, for each k."""
    cache = kv_cache.KVCache.for_weights(w, 1, ids.shape[1] + max(ks))
    for _ in range(2 * repeats):  # warm up
        cache.truncate(0)
        attention.forward(w, ids, cache)
    times: dict[int, list[float]] = {k: [] for k in ks}
    for _ in range(repeats):  # round-robin over k, so drift in the machine's speed hits every k alike
        for k in ks:
            cache.truncate(ids.shape[1])
            times[k].append(timed(attention.forward, w, ids[:, -k:], cache)[1])
    return {k: summarise(v).median for k, v in times.items()}


@torch.inference_mode()
def draft_step_cost(draft: S.ModelDraft, ids: torch.Tensor, repeats: int) -> float:
    """Median seconds of one cached draft step (one token)."""
    times = []
    for _ in range(repeats):
        draft.start(ids[0].tolist(), ids.shape[1] + 16)
        times.append(timed(draft.propose, ids[0].tolist(), 1, S.GREEDY, torch.Generator())[1])
    return summarise(times).median


@torch.inference_mode()
def feature_step_cost(draft: S.FeatureDraft, w, ids: torch.Tensor, repeats: int) -> float:
    """Median seconds of one cached feature-draft step (one token), after the prompt's features are fed."""
    hidden: list = []
    attention.forward(w, ids[:, :-1], features=hidden)
    tokens = ids[0].tolist()
    draft.start(tokens, ids.shape[1] + repeats + 8, features=hidden[0][0])
    draft.propose(tokens, 1, S.GREEDY, torch.Generator())  # feeds the prompt's true features
    times = []
    for _ in range(repeats):  # propose(·, 2) = the stored first token + one draft step
        times.append(timed(draft.propose, tokens, 2, S.GREEDY, torch.Generator())[1])
        draft.cache.truncate(draft.true_length)
    return summarise(times).median


def teacher_forced(w, draft: S.FeatureDraft, prompts: list[torch.Tensor], outputs: list[list[int]]) -> float:
    """Teacher-forced top-1 agreement of the feature draft with the target over the answers' positions."""
    agree = total = 0
    for ids, out in zip(prompts, outputs):
        hits = S.teacher_forced_top1(w, draft, torch.cat([ids.cpu(), torch.tensor([out])], 1))[ids.shape[1] - 2:]
        agree, total = agree + int(hits.sum()), total + len(hits)
    return agree / total


def _row() -> dict:
    return {"tokens": 0, "seconds": 0.0, "identical": 0, "passes": 0, "accepted_at": [0] * POSITIONS,
            "tried_at": [0] * POSITIONS, "accepted": 0, "tried": 0, "margins": [], "speedups": [],
            "outputs": []}


def _add(row: dict, out, seconds: float, plain_rate: float | None) -> list[int]:
    """Accumulate one prompt's run into row; returns its new tokens."""
    if isinstance(out, S.SpeculativeResult):
        acc, tried = out.position_counts(POSITIONS)
        row["accepted_at"] = [a + b for a, b in zip(row["accepted_at"], acc)]
        row["tried_at"] = [a + b for a, b in zip(row["tried_at"], tried)]
        row["accepted"] += out.accepted
        row["tried"] += out.accepted + out.rejections
        row["passes"] += out.target_passes
        out = out.token_ids
    row["outputs"].append(out)
    row["tokens"] += len(out)
    row["seconds"] += seconds
    if plain_rate is not None:
        row["speedups"].append(len(out) / seconds / plain_rate)
    return out


def run_prompts(methods: dict, prompts: list[torch.Tensor], w, tolerance: float | None) -> dict:
    """Every method on every prompt, order alternating; identity (and divergence margins) against the first one."""
    names = list(methods)
    rows = {n: _row() for n in names}
    for i, ids in enumerate(prompts):
        timings, outputs = {}, {}
        for name in (names if i % 2 == 0 else names[::-1]):
            timings[name] = timed(methods[name], ids)
        outputs[names[0]] = _add(rows[names[0]], *timings[names[0]], None)
        plain_rate = len(outputs[names[0]]) / timings[names[0]][1]
        for name in names[1:]:
            outputs[name] = _add(rows[name], *timings[name], plain_rate)
        for name in names:
            rows[name]["identical"] += outputs[name] == outputs[names[0]]
            skip = name == names[0] or tolerance is None or name.startswith("transformers")
            d = None if skip else S.divergence(w, ids, outputs[names[0]], outputs[name], tolerance)
            if d is not None:
                rows[name]["margins"].append(d.margin)
    return rows


def measure_dtype(model, tok, dtype_name: str, prompts: list[torch.Tensor], new_tokens: int, gamma: int,
                  repeats: int, with_hf: bool) -> dict:
    """Pass costs, c, ε and the per-method rows for one dtype (target, drafts and transformers all in it)."""
    dtype = DTYPES[dtype_name]
    w = S.cast_weights(attention.from_model(model, max_positions=2048), dtype)
    eos = tok.eos_token_id
    trained = S.trained_draft(w, tok)
    feature = S.trained_feature_draft(w, tok)
    costs = pass_cost(w, prompts[0], list(range(1, 10)), repeats)
    c = draft_step_cost(trained, prompts[0], repeats) / costs[1]
    c_feature = feature_step_cost(feature, w, prompts[0], repeats) / costs[1]
    eps = max(S.pass_shape_error(w, ids, gamma + 1) for ids in prompts)
    methods = {"llmlab plain": lambda ids: kv_cache.generate(w, ids, new_tokens, eos_token_id=eos)[0].tolist(),
               "llmlab speculative, trained draft": lambda ids: S.generate(
                   w, trained, ids, new_tokens, gamma=gamma, eos_token_id=eos),
               "llmlab speculative, feature draft": lambda ids: S.generate(
                   w, feature, ids, new_tokens, gamma=gamma, eos_token_id=eos),
               "llmlab speculative, prompt lookup": lambda ids: S.generate(
                   w, S.NgramDraft(), ids, new_tokens, gamma=gamma, eos_token_id=eos)}
    if with_hf:  # the loaded model is fp32; transformers runs only there, with the draft in the same dtype
        hf_target = model
        hf_draft = S.load_draft(hf_target, tok)[0]
        hf_draft.generation_config.num_assistant_tokens = gamma
        hf_draft.generation_config.num_assistant_tokens_schedule = "constant"
        methods["transformers assistant_model=trained draft"] = lambda ids: hf_target.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False, eos_token_id=eos,
            pad_token_id=eos, assistant_model=hf_draft)[0, ids.shape[1]:].tolist()
    with torch.inference_mode():
        rows = run_prompts(methods, prompts, w, 2 * eps)
    agreement = teacher_forced(w, feature, prompts, rows["llmlab plain"]["outputs"])
    return {"costs": costs, "c": c, "c_feature": c_feature, "eps": eps, "rows": rows, "w": w,
            "teacher_forced_top1": agreement}


def measure_editing(model, tok, new_tokens: int, gamma: int, dtype_name: str = "bf16") -> dict:
    """Prompt lookup vs plain on the editing task set, per task type: per-prompt speedups and α."""
    w = S.cast_weights(attention.from_model(model, max_positions=2048), DTYPES[dtype_name])
    eos = tok.eos_token_id
    methods = {"plain": lambda ids: kv_cache.generate(w, ids, new_tokens, eos_token_id=eos)[0].tolist(),
               "lookup": lambda ids: S.generate(w, S.NgramDraft(), ids, new_tokens, gamma=gamma, eos_token_id=eos)}
    out = {}
    with torch.inference_mode():
        for kind in S.TASK_TYPES:
            prompts = [S.encode(tok, t["prompt"]) for t in S.editing_tasks(kind)]
            rows = run_prompts(methods, prompts, w, None)
            out[kind] = rows["lookup"]
    return out


def alpha_by_position(row: dict) -> list[float | None]:
    """α at draft positions 1..POSITIONS from the row's counts (None where never tried)."""
    return [a / t if t else None for a, t in zip(row["accepted_at"], row["tried_at"])]


def summary(m: dict, gamma: int) -> dict:
    """The JSON data: per dtype T(k)/T(1), c, ε, per method speed, α, α by position, identity, margins."""
    data = {"gamma": gamma, "prompts": m["prompts"], "new_tokens": m["new_tokens"], "dtypes": {}, "editing": {}}
    for name, d in m["dtypes"].items():
        rows = d["rows"]
        plain_tps = rows["llmlab plain"]["tokens"] / rows["llmlab plain"]["seconds"]
        methods = {}
        for method, r in rows.items():
            tps = r["tokens"] / r["seconds"]
            methods[method] = {"tokens_per_s": tps, "speedup": tps / plain_tps, "identical": r["identical"],
                               "alpha": r["accepted"] / r["tried"] if r["tried"] else None,
                               "alpha_by_position": alpha_by_position(r),
                               "tokens_per_pass": r["tokens"] / r["passes"] if r["passes"] else None,
                               "divergence_margins": r["margins"],
                               "speedup_ci": list(bootstrap_ci(r["speedups"])) if r["speedups"] else None}
        costs = d["costs"]
        data["dtypes"][name] = {"T_ms": {k: v * 1e3 for k, v in costs.items()},
                                "verify_cost": {k: v / costs[1] for k, v in costs.items()}, "c": d["c"],
                                "c_feature": d["c_feature"], "teacher_forced_top1": d["teacher_forced_top1"],
                                "eps": d["eps"], "tolerance": 2 * d["eps"], "methods": methods}
    for kind, r in m["editing"].items():
        data["editing"][kind] = {"prompts": len(r["speedups"]), "speedup_ci": list(bootstrap_ci(r["speedups"])),
                                 "alpha": r["accepted"] / r["tried"] if r["tried"] else None,
                                 "tokens_per_pass": r["tokens"] / r["passes"]}
    return data


def _f(x, fmt=".2f") -> str:
    return "" if x is None else format(x, fmt)


def format_report(data: dict, header: str) -> str:
    """Markdown: per dtype the pass costs, c, ε and the methods table; the editing set; the speedup model."""
    g = data["gamma"]
    lines = [f"# Speculative decoding, SmolLM2-135M-Instruct, {data['prompts']} prompts × ≤{data['new_tokens']} new "
             f"tokens, greedy, γ = {g}", "", header, "",
             "## Target pass cost T(k)/T(1), draft cost c, pass-shape rounding error ε", "",
             "| dtype | T(1) ms | " + " | ".join(f"T({k})/T(1)" for k in range(2, 10))
             + " | c (token draft) | c (feature draft) | ε |",
             "|---|---|" + "---|" * 8 + "---|---|---|"]
    for name, d in data["dtypes"].items():
        v = d["verify_cost"]
        lines.append(f"| {name} | {d['T_ms'][1]:.1f} | " + " | ".join(f"{v[k]:.2f}" for k in range(2, 10))
                     + f" | {d['c']:.3f} | {d['c_feature']:.3f} | {d['eps']:.2g} |")
    for name, d in data["dtypes"].items():
        lines += ["", f"## Methods, {name} (target, drafts and transformers in {name}; alternating order)", "",
                  "| method | tokens/s | vs plain | 95% CI (per prompt) | identical to plain | α | "
                  + " | ".join(f"α{i + 1}" for i in range(POSITIONS)) + " | tokens/pass | divergence margins |",
                  "|---|---|---|---|---|---|" + "---|" * POSITIONS + "---|---|"]
        for method, r in d["methods"].items():
            ci = r["speedup_ci"]
            lines.append(f"| {method} | {r['tokens_per_s']:.1f} | {r['speedup']:.2f}× | "
                         + (f"[{ci[1]:.2f}, {ci[2]:.2f}]" if ci else "") + f" | {r['identical']}/{data['prompts']} | "
                         f"{_f(r['alpha'], '.3f')} | " + " | ".join(_f(a) for a in r["alpha_by_position"])
                         + f" | {_f(r['tokens_per_pass'])} | "
                         + ", ".join(f"{x:.3g}" for x in r["divergence_margins"]) + " |")
        hf = d["methods"].get("transformers assistant_model=trained draft")
        if hf:
            ours = d["methods"]["llmlab speculative, trained draft"]["tokens_per_s"]
            lines += ["", f"llmlab's loop vs transformers' assisted generation (same draft, {name}): "
                          f"{ours / hf['tokens_per_s']:.2f}×"]
        f = d["methods"]["llmlab speculative, feature draft"]["alpha_by_position"][0]
        lines += ["", f"Feature draft, {name}: α at draft position 1 in the loop {_f(f, '.3f')}; teacher-forced "
                      f"top-1 agreement on the same answers {d['teacher_forced_top1']:.3f}"]
    tolerances = ", ".join(f"{n}: {d['tolerance']:.3g}" for n, d in data["dtypes"].items())
    lines += ["", "Divergence margins: plain's logit margin between its token and the speculative token at the first "
              f"divergence; a near-tie when ≤ 2ε ({tolerances})."]
    lines += ["", "## Prompt lookup vs plain, bf16, editing task set (llmlab/data/ch07_editing.json)", "",
              "| task type | prompts | speedup (mean of per-prompt) | 95% CI | α | tokens/pass |",
              "|---|---|---|---|---|---|"]
    for kind, r in data["editing"].items():
        ci = r["speedup_ci"]
        lines.append(f"| {kind} | {r['prompts']} | {ci[0]:.2f}× | [{ci[1]:.2f}, {ci[2]:.2f}] | "
                     f"{_f(r['alpha'], '.3f')} | {r['tokens_per_pass']:.2f} |")
    lines += ["", "## Speedup model with the measured α, c and T(γ+1)/T(1)", "",
              f"| dtype | draft | α | c | predicted speedup at γ = 1..8 | break-even α at γ = {g} |",
              "|---|---|---|---|---|---|"]
    for name, d in data["dtypes"].items():
        for kind, method, c in [("token", "trained draft", d["c"]), ("feature", "feature draft", d["c_feature"])]:
            a = d["methods"][f"llmlab speculative, {method}"]["alpha"]
            pred = [S.predicted_speedup(a, k, c, d["verify_cost"][k + 1]) for k in range(1, 9)]
            be = S.break_even_alpha(g, c, d["verify_cost"][g + 1])
            lines.append(f"| {name} | {kind} | {a:.3f} | {c:.3f} | " + ", ".join(f"{p:.2f}" for p in pred)
                         + f" | {_f(be, '.3f')} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=10)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--gamma", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--editing-tokens", type=int, default=64)
    ap.add_argument("--skip-transformers", action="store_true")
    args = ap.parse_args()
    device = models.device()
    header = machine_header(device)
    start = time.time()
    model, tok = models.load(device=device)
    prompts = [S.encode(tok, p).to(device) for p in S.prompts("eval")[:args.prompts]]
    m = {"prompts": len(prompts), "new_tokens": args.new_tokens, "dtypes": {}}
    for name in DTYPES:
        m["dtypes"][name] = measure_dtype(model, tok, name, prompts, args.new_tokens, args.gamma, args.repeats,
                                          with_hf=DTYPES[name] == model.dtype and not args.skip_transformers)
        print(f"  {name} done, {time.time() - start:.0f} s", flush=True)
    m["editing"] = measure_editing(model, tok, args.editing_tokens, args.gamma)
    data = summary(m, args.gamma)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    data["header"], data["load_end"], data["seconds"] = header, load, time.time() - start
    report = format_report(data, header) + f"\n\nLoad average at the end: {load}; {data['seconds']:.0f} s in all."
    print(report)
    print(f"wrote {write_result('speculative', report, device, data=data)}")


if __name__ == "__main__":
    main()
