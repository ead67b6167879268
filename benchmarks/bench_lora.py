"""Chapter 05 benchmark: finetuning memory table, and on an NVIDIA GPU the QLoRA run of the order-to-JSON finetune.

    python -m llmlab bench lora          (or: python benchmarks/bench_lora.py [--steps 70])

On CPU it prints the memory arithmetic and skips the QLoRA run with one line. On CUDA it loads
SmolLM2-135M-Instruct with a 4-bit NF4 base (bitsandbytes), adds the same LoRA adapter as
benchmarks/train_lora.py, trains, and records time, peak GPU memory and held-out exact match in
benchmarks/results/YYYY-MM-DD-<gpu>-lora.md. The CPU LoRA run itself is benchmarks/train_lora.py.
"""

from __future__ import annotations

import argparse
import os

import torch
from common import machine_header, timed, write_result

from llmlab import lora, memory, models
from llmlab.tasks import orders


def memory_table() -> str:
    """Markdown table of training memory (GB, before activations) for full, LoRA and QLoRA."""
    rows = ["| model | method | weights | gradients | optimizer | total |", "|---|---|---|---|---|---|"]
    for params in [0.135, 7, 13, 70]:
        for method in memory.METHODS:
            p = memory.training_memory_gb(params, method, bits=16, trainable_billion=params * 0.005)
            rows.append(f"| {params:g}B | {method} | {p['weights']:.2f} | {p['gradients']:.2f} | "
                        f"{p['optimizer']:.2f} | {p['total']:.2f} |")
    return "\n".join(rows)


def qlora_run(steps: int, batch_size: int, lr: float, n_test: int) -> str:
    """Train the QLoRA adapter on CUDA and return a markdown report."""
    dev = models.device()
    torch.manual_seed(0)
    torch.cuda.reset_peak_memory_stats(dev)
    base, tok = lora.load_nf4_base(device=dev)
    load_peak = torch.cuda.max_memory_allocated(dev)
    test = orders.load_orders("test")[:n_test]
    texts, targets = [e["text"] for e in test], [e["target"] for e in test]
    em_before = orders.exact_match(orders.generate_replies(base, tok, texts), targets)
    model = lora.qlora_model(base)
    trainable, _ = lora.count_parameters(model)
    torch.cuda.reset_peak_memory_stats(dev)
    log = lora.train_adapter(model, tok, orders.encode_examples(tok, orders.load_orders("train")), steps=steps,
                             batch_size=batch_size, lr=lr, log_every=25)
    train_peak = torch.cuda.max_memory_allocated(dev)
    em_after = orders.exact_match(orders.generate_replies(model, tok, texts), targets)
    return f"""# QLoRA finetune of SmolLM2-135M-Instruct — {machine_header(dev)}

Script: `python benchmarks/bench_lora.py --steps {steps} --batch-size {batch_size}`; base in 4-bit NF4 with double
quantization and bf16 compute (bitsandbytes), LoRA config as in benchmarks/train_lora.py ({trainable:,} trainable).

| measure | value |
|---|---|
| held-out exact match, zero-shot (NF4 base) | {em_before:.1%} |
| held-out exact match, after QLoRA | {em_after:.1%} |
| training | {len(log.losses)} steps x batch {batch_size}, {log.seconds:.1f} s |
| final loss (mean of last 10 steps) | {sum(log.losses[-10:]) / len(log.losses[-10:]):.4f} |
| peak GPU memory after loading the NF4 base | {load_peak / 1e6:.1f} MB |
| peak GPU memory during training | {train_peak / 1e6:.1f} MB |

Memory arithmetic (GB, before activations; LoRA share 0.5%):

{memory_table()}
"""


def main() -> None:
    """Print the memory table; on CUDA run QLoRA and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=70)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--n-test", type=int, default=120)
    args = parser.parse_args()
    print("Training memory (GB, before activations; LoRA/QLoRA train 0.5% of the parameters):")
    print(memory_table())
    if models.device().type != "cuda":
        print("QLoRA GPU run skipped: no CUDA device (bitsandbytes 4-bit training is measured on an NVIDIA GPU).")
        return
    report, seconds = timed(qlora_run, args.steps, args.batch_size, args.lr, args.n_test)
    print(report)
    data = {'steps': args.steps, 'batch_size': args.batch_size, 'lr': args.lr, 'n_test': args.n_test,
            'seconds': seconds}
    print(f"wrote {write_result('lora', report, models.device(), data=data)} ({seconds:.0f} s)")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
