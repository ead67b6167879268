"""Chapter 12's preference tuning: DPO through TRL with a LoRA adapter on SmolLM2-135M-Instruct, on CPU.

Preference pairs: llmlab/data/ch12_prefs_*.jsonl (seeded generator scripts/data/ch12_make_data.py): short correct
replies preferred over rambling ones and over short wrong ones. Measures, on the 60 held-out prompts, the
rule-based judge's win rate of the tuned model over the base (95% bootstrap interval); logs reward margins and
the KL to the reference during training; trains the Bradley–Terry reward head on the same pairs and reports its
held-out accuracy. Saves the adapter to llmlab/data/ch12_dpo_adapter/ (the notebook loads it) and writes
benchmarks/results/YYYY-MM-DD-cpu-dpo.md. Run it alone:

    flock /tmp/llmlab-heavy.lock python benchmarks/train_dpo.py [--steps 40] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import machine_header, write_result  # benchmarks/common.py (this script's folder is on sys.path)

from llmlab import lora, models
from llmlab import posttraining as pt
from llmlab.evaluation.stats import bootstrap_ci
from llmlab.tasks import facts

ROOT = Path(__file__).resolve().parents[1]
ADAPTER_DIR = ROOT / "llmlab" / "data" / "ch12_dpo_adapter"
KL_EVERY = 5


def conversational(pairs: list[dict]):
    """TRL's conversational preference dataset from our pairs."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": [{"role": "user", "content": p["prompt"]}],
                               "chosen": [{"role": "assistant", "content": p["chosen"]}],
                               "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in pairs])


def make_callback(probe: dict, history: list[dict]):
    """A TrainerCallback that keeps TRL's logged metrics and, every KL_EVERY steps, the KL on a held-out batch."""
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        def on_log(self, args, state, control, logs=None, model=None, **kwargs):
            if logs and "loss" in logs:
                history.append({"step": state.global_step, **{k: logs[k] for k in (
                    "loss", "rewards/chosen", "rewards/rejected", "rewards/margins",
                    "rewards/accuracies") if k in logs}})

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step % KL_EVERY == 0 or state.global_step == state.max_steps:
                was_training = model.training
                model.eval()
                kl = pt.response_kl(model, probe)
                model.train(was_training)
                history.append({"step": state.global_step, "kl": kl})

    return Recorder()


def judge_all(replies: list[str], pairs: list[dict]) -> list[int]:
    """Judge scores (0-2) of replies against the pairs' gold answers."""
    return [pt.judge_reply(r, p["gold"]) for r, p in zip(replies, pairs)]


def reward_model(model, tok, train: list[dict], test: list[dict]) -> dict:
    """Fit the Bradley–Terry head on frozen last-token features; held-out accuracy overall and per kind."""
    def feats(pairs, key):
        return pt.response_features(model, tok, [p["prompt"] for p in pairs], [p[key] for p in pairs])

    start = time.perf_counter()
    head, losses = pt.train_reward_head(feats(train, "chosen"), feats(train, "rejected"))
    fc, fr = feats(test, "chosen"), feats(test, "rejected")
    by_kind = {}
    for kind in ("verbose", "wrong"):
        idx = [i for i, p in enumerate(test) if p["kind"] == kind]
        by_kind[kind] = (pt.pairwise_accuracy(head, fc[idx], fr[idx]), len(idx))
    return {"accuracy": pt.pairwise_accuracy(head, fc, fr), "by_kind": by_kind, "final_loss": losses[-1],
            "seconds": time.perf_counter() - start}


def measure(steps: int, batch_size: int, lr: float, beta: float, max_new_tokens: int, out: Path, n_eval: int = 60,
            rm_train: int = 240) -> dict:
    """Base replies, DPO training with LoRA, tuned replies, judge, reward model; returns every number."""
    from peft import PeftModel
    from trl import DPOConfig, DPOTrainer

    torch.manual_seed(0)
    model, tok = models.load(device="cpu")
    train, test = facts.load_preferences("train"), facts.load_preferences("test")[:n_eval]
    prompts = [p["prompt"] for p in test]
    load_start = os.getloadavg()

    start = time.perf_counter()
    base_replies = pt.chat_replies(model, tok, prompts, max_new_tokens=max_new_tokens)
    gen_seconds = time.perf_counter() - start
    rm = reward_model(model, tok, train[:rm_train], test)
    print(f"base replies {gen_seconds:.0f}s; reward head accuracy {rm['accuracy']:.1%}", flush=True)

    config = lora.lora_config(r=8, alpha=16, dropout=0.0, last_layers=10)
    args = DPOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=batch_size, max_steps=steps,
                     learning_rate=lr, beta=beta, max_length=128, logging_steps=1, report_to=[], use_cpu=True,
                     save_strategy="no", seed=0, lr_scheduler_type="constant_with_warmup", warmup_steps=3,
                     dataloader_num_workers=0, disable_tqdm=True)
    probe = pt.preference_batch(tok, test[:8])
    history: list[dict] = []
    trainer = DPOTrainer(model=model, args=args, train_dataset=conversational(train), processing_class=tok,
                         peft_config=config, callbacks=[make_callback(probe, history)])
    cpu0, start = time.process_time(), time.perf_counter()
    trainer.train()
    train_seconds, train_cpu = time.perf_counter() - start, time.process_time() - cpu0
    policy = trainer.model.eval()
    print(f"trained {steps} steps in {train_seconds:.0f}s", flush=True)

    with torch.no_grad():
        held = pt.dpo_batch_loss(policy, pt.preference_batch(tok, test), beta=beta)
    tuned_replies = pt.chat_replies(policy, tok, prompts, max_new_tokens=max_new_tokens)
    base_scores, tuned_scores = judge_all(base_replies, test), judge_all(tuned_replies, test)
    outcomes = pt.pairwise_outcomes(tuned_scores, base_scores)

    out.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(out)
    saved = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    saved["base_model_name_or_path"] = models.DEFAULT_MODEL
    (out / "adapter_config.json").write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    base2, _ = models.load(device="cpu")
    reloaded = PeftModel.from_pretrained(base2, out).eval()
    again = pt.chat_replies(reloaded, tok, prompts[:8], max_new_tokens=max_new_tokens)
    return {"steps": steps, "batch_size": batch_size, "lr": lr, "beta": beta, "threads": torch.get_num_threads(),
            "train_seconds": train_seconds, "train_cpu_seconds": train_cpu, "gen_seconds": gen_seconds,
            "history": history, "held_loss": float(held.loss), "held_margin": float(held.margins.mean()),
            "held_accuracy": float((held.margins > 0).float().mean()), "base_replies": base_replies,
            "tuned_replies": tuned_replies, "base_scores": base_scores, "tuned_scores": tuned_scores,
            "win": bootstrap_ci(outcomes), "outcomes": outcomes, "reward_model": rm,
            "reload_same": sum(a == b for a, b in zip(again, tuned_replies)), "reload_n": len(again),
            "adapter_bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()),
            "lora": {"r": config.r, "alpha": config.lora_alpha, "layers": f"{min(config.layers_to_transform)}-"
                     f"{max(config.layers_to_transform)}", "modules": sorted(config.target_modules)},
            "load_start": load_start, "load_end": os.getloadavg(), "prompts": prompts,
            "golds": [p["gold"] for p in test]}


def train_log(r: dict) -> dict:
    """What the notebook reads: settings, time, per-step metrics, held-out results."""
    keys = ("steps", "batch_size", "lr", "beta", "threads", "train_seconds", "train_cpu_seconds", "held_loss",
            "held_margin", "held_accuracy", "win", "base_scores", "tuned_scores", "lora",
            "prompts", "golds", "base_replies", "tuned_replies")  # replies: correctness and brevity apart
    log = {k: r[k] for k in keys}
    log["history"] = r["history"]
    log["examples"] = [{"prompt": p, "base": b, "tuned": t} for p, b, t in
                       list(zip(r["prompts"], r["base_replies"], r["tuned_replies"]))[:12]]
    log["reward_model"] = {k: r["reward_model"][k] for k in ("accuracy", "by_kind", "final_loss")}
    return log


def format_report(r: dict, header: str) -> str:
    """The markdown results file."""
    win, lo, hi = r["win"]
    losses = [h for h in r["history"] if "loss" in h]
    kls = {h["step"]: h["kl"] for h in r["history"] if "kl" in h}
    curve = "\n".join(f"| {h['step']} | {h['loss']:.4f} | {h.get('rewards/margins', float('nan')):.3f} | "
                      f"{h.get('rewards/accuracies', float('nan')):.2f} | "
                      f"{kls[h['step']]:.4f} |" if h["step"] in kls else
                      f"| {h['step']} | {h['loss']:.4f} | {h.get('rewards/margins', float('nan')):.3f} | "
                      f"{h.get('rewards/accuracies', float('nan')):.2f} | |" for h in losses)
    n = len(r["outcomes"])
    wins, ties = sum(o == 1 for o in r["outcomes"]), sum(o == 0.5 for o in r["outcomes"])
    rm = r["reward_model"]

    def cell(text: str) -> str:
        return "`" + " ".join(text.replace("`", "'").replace("|", "/").split())[:110] + "`"

    examples = "\n".join(f"| {p} | {cell(b)} | {cell(t)} |" for p, b, t in
                         list(zip(r["prompts"], r["base_replies"], r["tuned_replies"]))[:8])
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    kinds = rm["by_kind"]
    table = "\n".join(f"| {k} | {v} |" for k, v in [
        ("training", f"{r['steps']} steps x {r['batch_size']} pairs, lr {r['lr']}, beta {r['beta']}, "
                     "TRL DPOTrainer (loss 'sigmoid')"),
        ("LoRA", f"r={r['lora']['r']}, alpha={r['lora']['alpha']} on {', '.join(r['lora']['modules'])}, "
                 f"layers {r['lora']['layers']}"),
        ("training time", f"{r['train_seconds']:.0f} s wall ({r['train_seconds'] / r['steps']:.1f} s/step), "
                          f"{r['train_cpu_seconds']:.0f} s CPU, {r['threads']} threads"),
        (f"win rate tuned vs base (ties = 1/2), {n} held-out prompts",
         f"**{win:.1%}** (95% bootstrap interval {lo:.1%} – {hi:.1%}); {wins} wins, {ties} ties, "
         f"{n - wins - ties} losses"),
        ("mean judge score (0-2) base -> tuned", f"{mean(r['base_scores']):.2f} -> {mean(r['tuned_scores']):.2f}"),
        ("held-out DPO loss / mean reward margin / pair accuracy",
         f"{r['held_loss']:.3f} / {r['held_margin']:.3f} / {r['held_accuracy']:.1%}"),
        ("reward model (linear Bradley–Terry head on frozen last-token features), held-out pair accuracy",
         f"{rm['accuracy']:.1%} (verbose pairs {kinds['verbose'][0]:.1%} of {kinds['verbose'][1]}, "
         f"wrong-answer pairs {kinds['wrong'][0]:.1%} of {kinds['wrong'][1]})"),
        ("adapter on disk", f"{r['adapter_bytes'] / 1e6:.2f} MB; reloaded: {r['reload_same']}/{r['reload_n']} "
                            "replies identical"),
        (f"base replies for {n} prompts", f"{r['gen_seconds']:.0f} s")])
    return f"""# DPO with LoRA on SmolLM2-135M-Instruct, CPU

{header}
Load average at the end: {", ".join(f"{x:.2f}" for x in r["load_end"])}.
Script: `flock /tmp/llmlab-heavy.lock python benchmarks/train_dpo.py {r.get("argv", "")}`.

Data: 240 training pairs, {len(r["prompts"])} of the 60 held-out pairs (`llmlab/data/ch12_prefs_*.jsonl`, seeded
generator `scripts/data/ch12_make_data.py`). Chosen = short correct reply; rejected = the correct reply buried in a
preamble and filler (60%) or a short wrong reply (40%). Judge (`posttraining.judge_reply`): +1 if the gold answer
appears as a word, +1 if the reply has at most 20 words; greedy replies, at most {r.get("max_new_tokens", 48)} new
tokens.

| measure | value |
|---|---|
{table}

Training curve (TRL's logged metrics per step; KL = mean per-token KL(policy || reference) on 8 held-out pairs'
responses, every {KL_EVERY} steps):

| step | loss | reward margin | reward accuracy | KL |
|---|---|---|---|---|
{curve}

First held-out prompts:

| prompt | base | tuned |
|---|---|---|
{examples}
"""


def main() -> None:
    """Train, evaluate, save the adapter and its log, write the results file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-eval", type=int, default=60, help="held-out prompts/pairs to evaluate on (of 60)")
    parser.add_argument("--rm-train", type=int, default=240, help="training pairs for the reward head (of 240)")
    parser.add_argument("--out", type=Path, default=ADAPTER_DIR)
    parser.add_argument("--raw", type=Path, default=Path(tempfile.gettempdir()) / "llmlab-dpo-raw.json",
                        help="where the measured numbers are kept (reformat them with --format-only)")
    parser.add_argument("--format-only", action="store_true", help="only rewrite the reports from --raw")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.format_only:
        r = json.loads(args.raw.read_text(encoding="utf-8"))
        header = r["header"]
    else:
        header = machine_header()
        r = measure(args.steps, args.batch_size, args.lr, args.beta, args.max_new_tokens, args.out, args.n_eval,
                    args.rm_train)
        r["header"] = header
        r["argv"] = " ".join(sys.argv[1:])
        r["max_new_tokens"] = args.max_new_tokens
        args.raw.write_text(json.dumps(r), encoding="utf-8")
    (args.out / "train_log.json").write_text(json.dumps(train_log(r), indent=1) + "\n", encoding="utf-8")
    (args.out / "README.md").write_text(
        f"# Chapter 12 DPO adapter\n\nBase model: {models.DEFAULT_MODEL} (`llmlab.models.load()`, then "
        "`peft.PeftModel.from_pretrained(model, this_folder)`).\nMade by `python benchmarks/train_dpo.py`; "
        "see `train_log.json` and `benchmarks/results/*-cpu-dpo.md`. Licence: Apache-2.0, like the base model.\n",
        encoding="utf-8")
    path = write_result("dpo", format_report(r, header), data=r)
    print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
