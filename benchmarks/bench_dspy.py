"""DSPy prompt optimization on chapter 06's ticket-routing task with the local SmolLM2-135M-Instruct.

Programs compared on the same test split (never seen by an optimizer): zero-shot with DSPy's default ChatAdapter
and free decoding (the failure), zero-shot with JSONAdapter + schema-constrained decoding (the un-optimized
program), hand-written few-shot (balanced demos), LabeledFewShot and BootstrapFewShot. Writes BootstrapFewShot's
program (chosen in advance) to llmlab/data/ch06_optimized_router.json, every per-example score to
llmlab/data/ch06_dspy_scores.json, and a report via benchmarks/common.py.
MIPROv2/COPRO are left out: they need a proposer LM to write instructions, and SmolLM2-135M's proposals do not parse.
KNNFewShot is left out for cost: it runs BootstrapFewShot (k extra model calls) for every test input.

Run: flock /tmp/llmlab-heavy.lock python benchmarks/bench_dspy.py [--test N] [--k 4]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import dspy

from benchmarks import common
from llmlab import dspy_lm, models, prompting
from llmlab.tasks import tickets

PROGRAM_PATH = Path(__file__).resolve().parent.parent / "llmlab" / "data" / "ch06_optimized_router.json"
SCORES_PATH = Path(__file__).resolve().parent.parent / "llmlab" / "data" / "ch06_dspy_scores.json"


def compile_programs(train, k: int) -> dict:
    """Each optimizer's program and its compile seconds."""
    base = tickets.route_program
    out = {}
    hand = base()
    hand.demos = [dspy.Example(message=r["text"], team=r["label"])
                  for r in prompting.pick_demos(tickets.load_tickets("train"), k)]
    out["hand-written few-shot"] = (hand, 0.0)
    for name, make in [
        ("LabeledFewShot", lambda: dspy.LabeledFewShot(k=k)),
        ("BootstrapFewShot", lambda: dspy.BootstrapFewShot(metric=tickets.team_metric, max_bootstrapped_demos=k,
                                                          max_labeled_demos=k)),
    ]:
        start = time.perf_counter()
        program = make().compile(base(), trainset=train)
        out[name] = (program, time.perf_counter() - start)
    return out


def measure(n_test: int, k: int, n_fail: int) -> dict:
    """Per-example test scores of every program, compile times and parse failures."""
    model, tok = models.load()
    dspy_lm.configure_cache(tempfile.mkdtemp(prefix="dspy-bench-"))  # a fresh cache: honest timings
    train = dspy_lm.as_examples(tickets.load_tickets("train"))
    test = dspy_lm.as_examples(tickets.load_tickets("test"))[:n_test]
    free = dspy_lm.local_lm(model, tok, constrain=False, max_tokens=48)
    json_lm = dspy_lm.local_lm(model, tok, constrain=True, max_tokens=24)
    results = {}
    with dspy.context(lm=free, adapter=dspy.ChatAdapter()):
        scores, fails = dspy_lm.evaluate_program(tickets.route_program(), test[:n_fail], tickets.team_metric)
    results["zero-shot, ChatAdapter, free decoding"] = {"scores": scores, "failures": fails, "compile_s": 0.0}
    with dspy.context(lm=json_lm, adapter=dspy.JSONAdapter()):
        start = time.perf_counter()
        scores, fails = dspy_lm.evaluate_program(tickets.route_program(), test, tickets.team_metric)
        results["zero-shot, JSONAdapter + constrained (un-optimized)"] = {
            "scores": scores, "failures": fails, "compile_s": 0.0, "eval_s": time.perf_counter() - start}
        for name, (program, seconds) in compile_programs(train, k).items():
            start = time.perf_counter()
            scores, fails = dspy_lm.evaluate_program(program, test, tickets.team_metric)
            results[name] = {"scores": scores, "failures": fails, "compile_s": seconds,
                             "eval_s": time.perf_counter() - start, "program": program}
    return results


def format_report(results: dict, header: str) -> str:
    """A markdown table: accuracy, parse failures, compile time, and the gain over the un-optimized program."""
    base = results["zero-shot, JSONAdapter + constrained (un-optimized)"]["scores"]
    lines = [f"# DSPy optimization, ticket routing (chapter 06)\n\n{header}\n",
             "| program | n | test accuracy | parse failures | compile s | gain vs un-optimized [95% CI] |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        s = r["scores"]
        gain = ""
        if len(s) == len(base) and s is not base:
            d, lo, hi = prompting.paired_bootstrap(base, s)
            gain = f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
        lines.append(f"| {name} | {len(s)} | {100 * sum(s) / len(s):.1f}% | {r['failures']} | "
                     f"{r['compile_s']:.1f} | {gain} |")
    return "\n".join(lines)


def write(results: dict, report: str) -> None:
    """Save BootstrapFewShot's program (chosen before seeing any test score) and every per-example score."""
    results["BootstrapFewShot"]["program"].save(str(PROGRAM_PATH))
    SCORES_PATH.write_text(json.dumps({n: {k: v for k, v in r.items() if k != "program"}
                                       for n, r in results.items()}) + "\n")
    print(common.write_result("dspy", report), flush=True)


def main() -> None:
    """Parse arguments, measure, format, write."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--test", type=int, default=200, help="test examples (of 200)")
    parser.add_argument("--k", type=int, default=4, help="demos per program")
    parser.add_argument("--fail", type=int, default=20, help="test examples for the free-decoding failure case")
    args = parser.parse_args()
    header = common.machine_header()
    results = measure(args.test, args.k, args.fail)
    report = format_report(results, header)
    print(report, flush=True)
    write(results, report)


if __name__ == "__main__":
    main()
