"""Chapter 05's real finetune: LoRA through peft on SmolLM2-135M-Instruct, order text -> JSON, on CPU.

Measures held-out exact match before and after, the loss curve, the trainable share, the adapter's size on
disk vs the model's, and that the saved adapter reloads to the same outputs. Saves the adapter to
llmlab/data/ch05_adapter/ (the notebook loads it) and writes benchmarks/results/YYYY-MM-DD-<device>-lora.md.

    python benchmarks/train_lora.py [--steps 120] [--batch-size 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from common import machine_header, timed, write_result

from llmlab import lora, models
from llmlab.tasks import orders

ROOT = Path(__file__).resolve().parents[1]
ADAPTER_DIR = ROOT / "llmlab" / "data" / "ch05_adapter"


def folder_bytes(folder: Path) -> int:
    """Total size of the files in a folder."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def write_adapter_card(folder: Path, config, steps: int, em_before: float, em_after: float, n_test: int) -> None:
    """Replace peft's empty model card with what this adapter is and how it was made."""
    config_path = folder / "adapter_config.json"
    saved = json.loads(config_path.read_text(encoding="utf-8"))
    saved["base_model_name_or_path"] = models.DEFAULT_MODEL
    config_path.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(f"""# Chapter 05 LoRA adapter: order text -> JSON

Base model: {models.DEFAULT_MODEL} (load it with `llmlab.models.load()`, then
`peft.PeftModel.from_pretrained(model, this_folder)`).
Made by `python benchmarks/train_lora.py` ({steps} steps; see `train_log.json` and `benchmarks/results/*-cpu-lora.md`).
LoRA r={config.r}, alpha={config.lora_alpha} on {", ".join(sorted(config.target_modules))}
in layers {min(config.layers_to_transform)}-{max(config.layers_to_transform)}.
Held-out exact match on {n_test} orders: {em_before:.1%} zero-shot, {em_after:.1%} with this adapter.
Licence: Apache-2.0, like the base model.
""", encoding="utf-8")


def train_and_evaluate(args: argparse.Namespace) -> dict:
    """Zero-shot exact match, LoRA training, exact match after, adapter saved and reloaded; the raw results."""
    from peft import PeftModel, get_peft_model

    model, tok = models.load(device="cpu")
    train, test = orders.load_orders("train"), orders.load_orders("test")[:args.n_test]
    texts, targets = [e["text"] for e in test], [e["target"] for e in test]
    before, eval_seconds = timed(orders.generate_replies, model, tok, texts, max_new_tokens=40)
    em_before = orders.exact_match(before, targets)
    print(f"zero-shot exact match {em_before:.1%} on {len(test)} held-out ({eval_seconds:.0f}s)", flush=True)
    config = lora.lora_config()
    peft_model = get_peft_model(model, config)
    trainable, total = lora.count_parameters(peft_model)
    log = lora.train_adapter(peft_model, tok, orders.encode_examples(tok, train), steps=args.steps,
                             batch_size=args.batch_size, lr=args.lr, log_every=10, max_cpu_seconds=args.max_cpu_seconds)
    after = orders.generate_replies(peft_model, tok, texts, max_new_tokens=40)
    em_after = orders.exact_match(after, targets)
    print(f"after LoRA exact match {em_after:.1%}", flush=True)
    save_adapter(peft_model, args, config, log, em_before, em_after, len(test))
    base, _ = models.load(device="cpu")
    reloaded = PeftModel.from_pretrained(base, args.out).eval()
    again = orders.generate_replies(reloaded, tok, texts[:args.n_reload], max_new_tokens=40)
    return dict(texts=texts, before=before, after=after, em_before=em_before, em_after=em_after, n_test=len(test),
                eval_seconds=eval_seconds, config=config, trainable=trainable, total=total, log=log,
                same=sum(a == b for a, b in zip(after, again)), n_reload=len(again),
                adapter_bytes=folder_bytes(args.out),
                weights_bytes=(args.out / "adapter_model.safetensors").stat().st_size,
                model_bytes=(models.model_dir() / "model.safetensors").stat().st_size)


def save_adapter(peft_model, args: argparse.Namespace, config, log, em_before: float, em_after: float,
                 n_test: int) -> None:
    """Save the adapter, its card and its training log into args.out."""
    args.out.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(args.out)
    write_adapter_card(args.out, config, len(log.losses), em_before, em_after, n_test)
    (args.out / "train_log.json").write_text(json.dumps(
        {"steps": len(log.losses), "planned_steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
         "seconds": round(log.seconds, 1), "cpu_seconds": round(log.cpu_seconds, 1), "threads": args.threads,
         "losses": [round(x, 4) for x in log.losses],
         "exact_match_before": em_before, "exact_match_after": em_after, "n_test": n_test}, indent=1) + "\n",
        encoding="utf-8")


def cell(reply: str, width: int) -> str:
    """A reply squeezed into one markdown table cell."""
    return "`" + " ".join(reply.replace("`", "'").split())[:width] + "`"


def report(r: dict, args: argparse.Namespace) -> str:
    """The markdown results file."""
    log, config, losses = r["log"], r["config"], r["log"].losses
    curve = "\n".join(f"| {i + 1} | {sum(losses[i:i + 10]) / len(losses[i:i + 10]):.4f} |"
                      for i in range(0, len(losses), 10))
    examples = "\n".join(f"| {t} | {cell(b, 80)} | {cell(a, 90)} |"
                         for t, b, a in list(zip(r["texts"], r["before"], r["after"]))[:5])
    budget = f"{args.max_cpu_seconds:.0f} CPU s = {args.max_cpu_seconds / args.threads / 60:.1f} min of {args.threads}"
    layers = f"{min(config.layers_to_transform)}-{max(config.layers_to_transform)}"
    return f"""# LoRA finetune of SmolLM2-135M-Instruct on CPU — {machine_header('cpu')}

Script: `python benchmarks/train_lora.py --steps {args.steps} --batch-size {args.batch_size}` ({args.threads} threads).

Task: `llmlab/data/ch05_orders_*.jsonl` (seeded generator `scripts/data/ch05_make_orders.py`): a short free-text
order -> one JSON object with keys item, qty, color, city, shipping. Metric: exact match of the first JSON object in
the greedy reply with the target dict, on {r["n_test"]} held-out orders (texts never seen in training).

| measure | value |
|---|---|
| held-out exact match, zero-shot | {r["em_before"]:.1%} |
| held-out exact match, after LoRA | {r["em_after"]:.1%} |
| change | {100 * (r["em_after"] - r["em_before"]):+.1f} points |
| training | {len(losses)} steps (of {args.steps} planned) x batch {args.batch_size}, AdamW lr {args.lr} |
| training time | {log.seconds:.0f} s wall, {log.cpu_seconds:.0f} s CPU (budget {budget} idle cores) |
| LoRA config | r={config.r}, alpha={config.lora_alpha}, dropout={config.lora_dropout}, \
modules {sorted(config.target_modules)} in layers {layers} |
| trainable parameters | {r["trainable"]:,} of {r["total"]:,} ({r["trainable"] / r["total"]:.3%}) |
| adapter on disk (folder / weights file) | {r["adapter_bytes"] / 1e6:.2f} MB / {r["weights_bytes"] / 1e6:.2f} MB |
| base model on disk (fp32 safetensors) | {r["model_bytes"] / 1e6:.1f} MB \
(adapter weights = {r["weights_bytes"] / r["model_bytes"]:.2%}) |
| reload of saved adapter | {r["same"]}/{r["n_reload"]} greedy replies identical (first held-out orders) |
| zero-shot generation of {r["n_test"]} replies | {r["eval_seconds"]:.0f} s |

Loss (mean over each block of 10 steps, starting at the step shown):

| step | loss |
|---|---|
{curve}

First examples (zero-shot reply vs after LoRA):

| order | zero-shot | after LoRA |
|---|---|---|
{examples}
"""


def main() -> None:
    """Train, evaluate, save, reload, and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=70)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-test", type=int, default=60)
    parser.add_argument("--max-cpu-seconds", type=float, default=1140.0)
    parser.add_argument("--n-reload", type=int, default=12)
    parser.add_argument("--out", type=Path, default=ADAPTER_DIR)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    r = train_and_evaluate(args)
    text = report(r, args)
    print(f"wrote {write_result('lora', text, 'cpu', data={'args': args, **r})}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
