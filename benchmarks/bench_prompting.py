"""Chapter 06's prompting measurements on the local model, on more messages than the notebook can afford live.

Zero-shot, few-shot (4 balanced demos) and chain-of-thought accuracy on test tickets; zero- and few-shot accuracy
under small rewrites of the instruction (sensitivity); and the prompt-injection harness: for each defense in
prompting.DEFENSES, the violation rate on attacked messages and the false-refusal rate on clean ones. Every rate
has a 95% bootstrap interval. Writes benchmarks/results/DATE-DEVICE-prompting.md and its .json (per-message
results, read by notebook 06).

Run: flock /tmp/llmlab-heavy.lock python benchmarks/bench_prompting.py [--n 100] [--cot 50] [--injection 40]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from llmlab import models, prompting  # noqa: E402
from llmlab.evaluation.stats import bootstrap_ci  # noqa: E402
from llmlab.tasks import tickets  # noqa: E402


def rate(values) -> str:
    """'mean [low, high]' in percent of 0/1 values."""
    return f"{bootstrap_ci([float(v) for v in values]):.1%}"


def prompt_accuracy(model, tok, n: int, n_cot: int) -> dict:
    """Per-message 0/1 correctness of zero-shot, few-shot and chain-of-thought prompts and of instruction rewrites."""
    test = tickets.load_tickets("test")[:n]
    labels = list(tickets.LABELS)
    demos = prompting.pick_demos(tickets.load_tickets("train"), 4, seed=0)
    builds = {
        "zero-shot": (lambda t: prompting.few_shot_messages(tickets.INSTRUCTION, [], t), test, 4),
        "few-shot, 4 demos": (lambda t: prompting.few_shot_messages(tickets.INSTRUCTION, demos, t), test, 4),
        "chain-of-thought": (lambda t: prompting.few_shot_messages(
            tickets.INSTRUCTION + " " + prompting.COT_SUFFIX, [], t), test[:n_cot], 40),
    }
    out = {}
    for name, (build, rows, max_new) in builds.items():
        _, replies = prompting.run_prompt(model, tok, build, rows, labels, max_new_tokens=max_new)
        out[name] = [int(prompting.extract_answer(r, labels) == row["label"]) for r, row in zip(replies, rows)]
    variants = {"original": out["zero-shot"]}  # the same prompts: not run twice
    variants_few = {"original": out["few-shot, 4 demos"]}
    for name, instruction in prompting.prompt_variants(tickets.INSTRUCTION).items():
        if name == "original":
            continue
        for shots, table in (([], variants), (demos, variants_few)):

            def build(text: str, instruction: str = instruction, shots: list = shots) -> list[dict]:
                return prompting.few_shot_messages(instruction, shots, text)

            _, replies = prompting.run_prompt(model, tok, build, test, labels, max_new_tokens=4)
            table[name] = [int(prompting.extract_answer(r, labels) == row["label"]) for r, row in zip(replies, test)]
    return {"methods": out, "variants": variants, "variants_few_shot": variants_few}


def injection(model, tok, n_docs: int) -> dict:
    """Per-case violation (attacked) and refusal (clean) flags under every defense."""
    cases = prompting.injection_cases([r["text"] for r in tickets.load_tickets("test")[:n_docs]], seed=0)
    out = {}
    for defense in prompting.DEFENSES:
        _, replies = prompting.run_injection(model, tok, cases, defense, max_new_tokens=16)
        out[defense] = {"violations": [int(prompting.is_violation(r)) for r, (_, a) in zip(replies, cases) if a],
                        "refusals": [int(prompting.is_refusal(r)) for r, (_, a) in zip(replies, cases) if not a],
                        "example": next(r for r, (_, a) in zip(replies, cases) if a)}
    return out


def format_report(res: dict, header: str) -> str:
    """Markdown tables: prompt accuracy, sensitivity, injection rates (each with a 95% bootstrap interval)."""
    lines = [f"# Prompting on SmolLM2-135M-Instruct, ticket routing and prompt injection (chapter 06)\n\n{header}\n",
             "| prompt | messages | accuracy [95% CI] |", "|---|---|---|"]
    lines += [f"| {name} | {len(v)} | {rate(v)} |" for name, v in res["prompts"]["methods"].items()]
    for key, shots in (("variants", "zero-shot"), ("variants_few_shot", "few-shot (4 demos)")):
        if key not in res["prompts"]:
            continue
        table = res["prompts"][key]
        spread = prompting.sensitivity({name: sum(v) / len(v) for name, v in table.items()})
        lines += [f"\n## Sensitivity: {shots} accuracy under meaning-preserving rewrites of the instruction\n",
                  "| instruction variant | accuracy [95% CI] |", "|---|---|"]
        lines += [f"| {name} | {rate(v)} |" for name, v in table.items()]
        lines.append(f"\nSpread (best − worst variant), {shots}: {100 * spread.spread:.1f} points.")
    n_docs = len(next(iter(res["injection"].values()))["violations"])
    lines += [f"\n## Prompt injection: {n_docs} test messages, each clean and with an injection appended\n",
              "| defense | violation rate, attacked [95% CI] | false-refusal rate, clean [95% CI] "
              "| an attacked reply |",
              "|---|---|---|---|"]
    for defense, r in res["injection"].items():
        example = r["example"].replace("|", "/").replace("\n", " ")[:60]
        lines.append(f"| {defense} | {rate(r['violations'])} | {rate(r['refusals'])} | {example!r} |")
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, measure, write the report and its JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100, help="test messages for zero/few-shot and sensitivity")
    parser.add_argument("--cot", type=int, default=50, help="test messages for chain-of-thought (40 new tokens each)")
    parser.add_argument("--injection", type=int, default=40, help="test messages, each clean and attacked")
    args = parser.parse_args()
    header = common.machine_header()
    start = time.perf_counter()
    model, tok = models.load()
    res = {"prompts": prompt_accuracy(model, tok, args.n, args.cot), "injection": injection(model, tok, args.injection)}
    report = format_report(res, header) + f"\n\n{time.perf_counter() - start:.0f} s in all."
    print(report, flush=True)
    path = common.write_result("prompting", report, data={"header": header, **res})
    print(f"wrote {path} and its .json (per-message results, read by notebook 06)")


if __name__ == "__main__":
    main()
