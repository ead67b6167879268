"""Chapter 06, DSPy optimization on the opt-in tier (Qwen2.5-Coder-0.5B-Instruct, bf16): arithmetic word problems.

The measure of an optimizer is the gain of the optimized program over the same module un-optimized: ChainOfThought
optimized vs ChainOfThought zero-shot (paired bootstrap over problems), on test and on unseen templates. Programs:
Predict and ChainOfThought zero-shot; LabeledFewShot with demos that carry the generator's worked reasoning;
BootstrapFewShot with bootstrapped traces only (max_labeled_demos=0: a labeled demo has no reasoning, DSPy would
fill it with "Not supplied for this particular example." and the model copies that). Every program decodes through
the kit's engine (JSONAdapter + schema-constrained decoding, free-text fields up to dspy_lm.MAX_STRING_LENGTH).
No LM-free baseline exists here: no vote of neighbours' answers can add two numbers. MIPROv2 is left out: its
proposer and its trials cost far more model calls than this script's 8-minute budget on 2 cores.

Run: flock /tmp/llmlab-heavy.lock python benchmarks/bench_dspy.py --tier2 [--test 16 --unseen 12 --k 3]
(needs: python -m llmlab fetch qwen2.5-coder-0.5b-instruct). Records dspy-qwen05 (.md and .json).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import dspy

from benchmarks import common
from llmlab import dspy_lm, models
from llmlab.evaluation.stats import bootstrap_ci, paired_bootstrap
from llmlab.tasks import arithmetic

NAME = "dspy-qwen05"
BASE = "ChainOfThought, zero-shot (un-optimized)"


def programs(lm, train_rows: list[dict], k: int) -> dict:
    """Each program with the model calls its compilation made."""
    out = {"Predict, zero-shot": (arithmetic.predict_program(), 0), BASE: (arithmetic.cot_program(), 0)}
    labeled = dspy.LabeledFewShot(k=k).compile(arithmetic.cot_program(),
                                               trainset=arithmetic.as_examples(train_rows, with_reasoning=True))
    out["LabeledFewShot, demos with worked reasoning"] = (labeled, 0)
    before = lm.engine.calls
    with dspy_lm.quiet():
        boot = dspy.BootstrapFewShot(metric=arithmetic.answer_metric, max_bootstrapped_demos=k, max_labeled_demos=0,
                                     max_rounds=1).compile(arithmetic.cot_program(),
                                                           trainset=arithmetic.as_examples(train_rows))
    assert dspy_lm.drop_incomplete_demos(boot) == 0  # traces only: every demo has its reasoning
    out["BootstrapFewShot, bootstrapped traces only"] = (boot, lm.engine.calls - before)
    return out


def measure(n_train: int, n_test: int, n_unseen: int, k: int, max_tokens: int) -> dict | None:
    """Per-problem scores of every program on test and unseen, parse failures, compile and eval calls, seconds."""
    loaded = common.load_second_tier()
    if loaded is None:
        return None
    model, tok = loaded
    dspy_lm.configure_cache(tempfile.mkdtemp(prefix="dspy-tier2-"))  # fresh: every call is a real generation
    lm = dspy_lm.local_lm(model, tok, constrain=True, max_tokens=max_tokens, name=models.SECOND_TIER)
    splits = {"test": arithmetic.as_examples(arithmetic.make_problems("test", n_test)),
              "unseen": arithmetic.as_examples(arithmetic.make_problems("unseen", n_unseen))}
    res: dict = {"n_train": n_train, "n_test": n_test, "n_unseen": n_unseen, "k": k, "max_tokens": max_tokens,
                 "programs": {}}
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        start = time.perf_counter()
        built = programs(lm, arithmetic.make_problems("train", n_train), k)
        res["compile_s"] = time.perf_counter() - start
        for name, (program, compile_calls) in built.items():
            row = {"compile_calls": compile_calls, "demos": sum(len(p.demos) for _, p in program.named_predictors())}
            start = time.perf_counter()
            for split, examples in splits.items():
                row[split], row[f"{split}_failures"] = dspy_lm.evaluate_program(program, examples,
                                                                                arithmetic.answer_metric)
            row["eval_calls"], row["eval_s"] = n_test + n_unseen, time.perf_counter() - start  # one per problem
            res["programs"][name] = row
            print(f"{name}: test {sum(row['test'])}/{n_test}, unseen {sum(row['unseen'])}/{n_unseen} "
                  f"({row['eval_s']:.0f} s)", flush=True)
    base = res["programs"][BASE]
    for row in res["programs"].values():
        for split in splits:
            row[f"{split}_accuracy"] = list(bootstrap_ci(row[split]))
            row[f"{split}_gain"] = list(paired_bootstrap(base[split], row[split]))
    return res


def format_report(res: dict, header: str) -> str:
    """Markdown: accuracy and gain over ChainOfThought zero-shot, with intervals, and the model-call budget."""
    lines = [f"# DSPy optimization on Qwen2.5-Coder-0.5B-Instruct (bf16, opt-in tier), arithmetic word problems "
             f"(chapter 06)\n\n{header}\n",
             f"{res['n_test']} test problems (the training templates) and {res['n_unseen']} problems from templates "
             f"no optimizer saw; {res['k']} demos at most; the optimizers drew from {res['n_train']} training "
             f"problems. Greedy, JSONAdapter + constrained decoding, at most {res['max_tokens']} tokens per reply. "
             "Intervals: 95% percentile bootstrap over problems (gains: paired). Model provenance: anonymous PyPI "
             "packages, no stated licence; upstream Qwen2.5-Coder is Apache-2.0 (see README).\n",
             "| program | demos | test accuracy | gain vs CoT zero-shot | unseen accuracy | gain on unseen | "
             "parse failures | compile calls | eval calls |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in res["programs"].items():
        gains = ["" if name == BASE else f"{common_interval(r[f'{s}_gain'], signed=True)}" for s in ("test", "unseen")]
        lines.append(f"| {name} | {r['demos']} | {common_interval(r['test_accuracy'])} | {gains[0]} | "
                     f"{common_interval(r['unseen_accuracy'])} | {gains[1]} | "
                     f"{r['test_failures'] + r['unseen_failures']} | {r['compile_calls']} | {r['eval_calls']} |")
    lines += ["", "Budget: compile calls are the model calls an optimizer made before evaluation (LabeledFewShot "
              "makes none); each program then made one call per problem (a program identical to another, e.g. no "
              "demos bootstrapped, is answered from DSPy's cache). MIPROv2 was not run (see the script)."]
    return "\n".join(lines)


def common_interval(values, signed: bool = False) -> str:
    """A stored [mean, low, high] in points, e.g. '+12.5 [+0.0, +25.0]' or '43.8% [18.8%, 68.8%]'."""
    mean, low, high = (100 * v for v in values)
    return f"{mean:+.1f} [{low:+.1f}, {high:+.1f}]" if signed else f"{mean:.1f}% [{low:.1f}%, {high:.1f}%]"


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, measure, format, write."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", type=int, default=12, help="training problems the optimizers may use")
    parser.add_argument("--test", type=int, default=16, help="test problems")
    parser.add_argument("--unseen", type=int, default=12, help="unseen-template problems")
    parser.add_argument("--k", type=int, default=3, help="demos per program")
    parser.add_argument("--max-tokens", type=int, default=160, help="tokens per reply")
    parser.add_argument("--dry", action="store_true", help="print, do not record (a smoke run)")
    args = parser.parse_args(argv)
    header = common.machine_header()
    start = time.perf_counter()
    res = measure(args.train, args.test, args.unseen, args.k, args.max_tokens)
    if res is None:
        return
    res["total_s"] = time.perf_counter() - start
    report = format_report(res, header) + f"\n\nWhole run: {res['total_s']:.0f} s (busy machine: not a speed)."
    print(report, flush=True)
    if not args.dry:
        print(common.write_result(NAME, report, data={"header": header, **res}), flush=True)


if __name__ == "__main__":
    main()
