"""Chapter 06, DSPy optimization on the opt-in tier (Qwen2.5-Coder-0.5B-Instruct, bf16): arithmetic word problems.

The measure of an optimizer is the gain of the optimized program over the same module un-optimized: ChainOfThought
optimized vs ChainOfThought zero-shot (paired bootstrap over problems), on test and on unseen templates. Programs:
Predict and ChainOfThought zero-shot; LabeledFewShot with demos that carry the generator's worked reasoning;
BootstrapFewShot with bootstrapped traces only (max_labeled_demos=0: a labeled demo has no reasoning, DSPy would
fill it with "Not supplied for this particular example." and the model copies that). Every program decodes through
the kit's engine (JSONAdapter + schema-constrained decoding, free-text fields up to dspy_lm.MAX_STRING_LENGTH).
No LM-free baseline exists here: no vote of neighbours' answers can add two numbers.
MIPROv2 runs with auto="light" on ChainOfThought, bootstrapped traces only (max_labeled_demos=0, for the same reason).
In DSPy 3.4.1, light means 6 demo-set candidates (one of them zero-shot), 3 instruction candidates (the first is the
signature's own) and 10 search trials; auto fixes those, so the budget is set by what DSPy leaves open: a valset of
VAL further training-template problems (disjoint from the 12 the demos come from; <= 50 means no minibatching: each
trial scores the whole valset), one thread, and the proposer's reply length (PROPOSER_TOKENS). Its compile calls are
counted from an empty cache like BootstrapFewShot's, and the instructions it proposed and chose are recorded.

Pre-registered sizes (fixed before the recorded run, from a smoke run's ~5-6 s per ChainOfThought call on 2 quiet
cores, to fit ~35-40 minutes): 16 test problems, 36 unseen-template problems, a 6-problem valset. 36 unseen problems:
a +15-point gain with no problem lost gives a paired 95% interval of about +/-12 points, so it can exclude 0
(with 5% of problems lost as well, about +/-16: it would not); the earlier run's 12 could not. The unseen split has
only 3 templates (arithmetic.UNSEEN_TEMPLATES), and the intervals resample problems, not templates: they do not
cover the variance between templates.

Run: flock /tmp/llmlab-heavy.lock python benchmarks/bench_dspy.py --tier2 [--test 16 --unseen 36 --val 6 --k 3]
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
VAL, TEST, UNSEEN, PROPOSER_TOKENS = 6, 16, 36, 256  # pre-registered: see the docstring
MIPRO = "MIPROv2 light, bootstrapped traces + proposed instructions"


class RecordingMIPROv2(dspy.MIPROv2):
    """dspy.MIPROv2 that keeps the instructions its proposer wrote and the model calls the proposer made.

    DSPy 3.4.1 only logs the proposals; this overrides its private _propose_instructions (pinned version).
    """

    def __init__(self, engine, **kwargs):
        super().__init__(**kwargs)
        self.engine, self.proposed, self.proposer_calls = engine, {}, 0

    def _propose_instructions(self, *args, **kwargs):
        before = self.engine.calls
        self.proposed = super()._propose_instructions(*args, **kwargs)
        self.proposer_calls = self.engine.calls - before
        return self.proposed


def fresh_cache() -> None:
    """Point DSPy at an empty response cache: an optimizer's compile calls are then all real generations."""
    dspy_lm.configure_cache(tempfile.mkdtemp(prefix="dspy-tier2-"))


def mipro(lm, train_rows: list[dict], val_rows: list[dict], k: int, proposer_tokens: int) -> tuple:
    """MIPROv2 (auto="light") on ChainOfThought, bootstrapped traces only; the program and what its search saw."""
    optimizer = RecordingMIPROv2(lm.engine, metric=arithmetic.answer_metric, auto="light",
                                 prompt_model=lm.copy(max_tokens=proposer_tokens), max_bootstrapped_demos=k,
                                 max_labeled_demos=0, num_threads=1)
    with dspy_lm.quiet():
        program = optimizer.compile(arithmetic.cot_program(), trainset=arithmetic.as_examples(train_rows),
                                    valset=arithmetic.as_examples(val_rows))
    assert dspy_lm.drop_incomplete_demos(program) == 0  # traces only: every demo has its reasoning
    seen = [{"instruction": s["program"].predictors()[0].signature.instructions,
             "demos": len(s["program"].predictors()[0].demos), "val_score": s["score"]}
            for s in getattr(program, "candidate_programs", [])]
    info = {"chosen_instruction": program.predictors()[0].signature.instructions, "val_score": program.score,
            "proposed": list(optimizer.proposed.get(0, [])), "proposer_calls": optimizer.proposer_calls,
            "evaluated": seen, "evaluations": len(getattr(program, "trial_logs", {})), "n_val": len(val_rows)}
    return program, info


def counted(lm, compile_one) -> tuple:
    """compile_one() from an empty cache: its result, the model calls it made and its seconds."""
    fresh_cache()
    before, start = lm.engine.calls, time.perf_counter()
    result = compile_one()
    return result, lm.engine.calls - before, time.perf_counter() - start


def bootstrap(train_rows: list[dict], k: int):
    """BootstrapFewShot on ChainOfThought, bootstrapped traces only (max_labeled_demos=0)."""
    with dspy_lm.quiet():
        program = dspy.BootstrapFewShot(metric=arithmetic.answer_metric, max_bootstrapped_demos=k,
                                        max_labeled_demos=0, max_rounds=1).compile(
            arithmetic.cot_program(), trainset=arithmetic.as_examples(train_rows))
    assert dspy_lm.drop_incomplete_demos(program) == 0  # traces only: every demo has its reasoning
    return program


def programs(lm, train_rows: list[dict], val_rows: list[dict], k: int, proposer_tokens: int) -> tuple[dict, dict]:
    """Each program with the model calls and seconds its compilation took (each from an empty cache), and MIPROv2's
    search record."""
    out = {"Predict, zero-shot": (arithmetic.predict_program(), 0, 0.0), BASE: (arithmetic.cot_program(), 0, 0.0)}
    labeled = dspy.LabeledFewShot(k=k).compile(arithmetic.cot_program(),
                                               trainset=arithmetic.as_examples(train_rows, with_reasoning=True))
    out["LabeledFewShot, demos with worked reasoning"] = (labeled, 0, 0.0)
    out["BootstrapFewShot, bootstrapped traces only"] = counted(lm, lambda: bootstrap(train_rows, k))
    (program, info), calls, seconds = counted(lm, lambda: mipro(lm, train_rows, val_rows, k, proposer_tokens))
    out[MIPRO] = (program, calls, seconds)
    return out, info


def measure(n_train: int, n_val: int, n_test: int, n_unseen: int, k: int, max_tokens: int,
            proposer_tokens: int) -> dict | None:
    """Per-problem scores of every program on test and unseen, parse failures, compile and eval calls, seconds."""
    loaded = common.load_second_tier()
    if loaded is None:
        return None
    model, tok = loaded
    fresh_cache()  # every call is a real generation
    lm = dspy_lm.local_lm(model, tok, constrain=True, max_tokens=max_tokens, name=models.SECOND_TIER)
    splits = {"test": arithmetic.as_examples(arithmetic.make_problems("test", n_test)),
              "unseen": arithmetic.as_examples(arithmetic.make_problems("unseen", n_unseen))}
    res: dict = {"n_train": n_train, "n_val": n_val, "n_test": n_test, "n_unseen": n_unseen, "k": k,
                 "max_tokens": max_tokens, "proposer_tokens": proposer_tokens, "programs": {}}
    rows = arithmetic.make_problems("train", n_train + n_val)  # the first n_train are the other optimizers' trainset
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        start = time.perf_counter()
        built, res["mipro"] = programs(lm, rows[:n_train], rows[n_train:], k, proposer_tokens)
        res["compile_s"] = time.perf_counter() - start
        print(f"compiled in {res['compile_s']:.0f} s; MIPROv2 chose: {res['mipro']['chosen_instruction']!r}",
              flush=True)
        for name, (program, compile_calls, compile_s) in built.items():
            row = {"compile_calls": compile_calls, "compile_s": compile_s,
                   "demos": sum(len(p.demos) for _, p in program.named_predictors())}
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
    lines += ["", "Budget: compile calls are the model calls an optimizer made before evaluation, each optimizer "
              "starting from an empty cache (LabeledFewShot makes none; a prompt asked twice within one compile is "
              "answered from DSPy's cache and not counted); each program then made one call per problem (a program "
              "identical to another is answered from the cache)."]
    if "mipro" in res:
        lines += ["", *mipro_lines(res["mipro"], res["programs"][MIPRO])]
    return "\n".join(lines)


def mipro_lines(info: dict, row: dict) -> list[str]:
    """Markdown: MIPROv2's search (valset, evaluations, proposer calls) and the instructions it proposed and chose."""
    out = ["## MIPROv2 (auto=\"light\")\n",
           f"Searched on {info['n_val']} validation problems from the training templates (none of them a training "
           f"problem the demos come from, none a test problem): "
           f"{info['evaluations']} full evaluations of candidate programs (the default "
           f"included), {row['compile_calls']} compile calls in all, {info['proposer_calls']} of them by the "
           f"instruction proposer, {row['compile_s']:.0f} s. Best validation score {info['val_score']:.1f}%.\n",
           f"Instruction chosen: {info['chosen_instruction']!r}\n", "Instruction candidates (0 is the signature's "
           "own; DSPy overwrites the proposer's first proposal with it):\n"]
    out += [f"{i}. {text!r}" for i, text in enumerate(info["proposed"])]
    out += ["", "| evaluated candidate: instruction | demos | validation score |", "|---|---|---|"]
    out += [f"| {c['instruction'][:120]!r} | {c['demos']} | {c['val_score']:.1f}% |" for c in info["evaluated"]]
    return out


def common_interval(values, signed: bool = False) -> str:
    """A stored [mean, low, high] in points, e.g. '+12.5 [+0.0, +25.0]' or '43.8% [18.8%, 68.8%]'."""
    mean, low, high = (100 * v for v in values)
    return f"{mean:+.1f} [{low:+.1f}, {high:+.1f}]" if signed else f"{mean:.1f}% [{low:.1f}%, {high:.1f}%]"


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, measure, format, write."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", type=int, default=12, help="training problems the optimizers may use")
    parser.add_argument("--val", type=int, default=VAL, help="further training problems: MIPROv2's valset")
    parser.add_argument("--test", type=int, default=TEST, help="test problems")
    parser.add_argument("--unseen", type=int, default=UNSEEN, help="unseen-template problems")
    parser.add_argument("--k", type=int, default=3, help="demos per program")
    parser.add_argument("--max-tokens", type=int, default=160, help="tokens per reply")
    parser.add_argument("--proposer-tokens", type=int, default=PROPOSER_TOKENS,
                        help="tokens per reply of MIPROv2's instruction proposer")
    parser.add_argument("--dry", action="store_true", help="print, do not record (a smoke run)")
    args = parser.parse_args(argv)
    header = common.machine_header()
    start = time.perf_counter()
    res = measure(args.train, args.val, args.test, args.unseen, args.k, args.max_tokens, args.proposer_tokens)
    if res is None:
        return
    res["total_s"] = time.perf_counter() - start
    report = format_report(res, header) + f"\n\nWhole run: {res['total_s']:.0f} s (busy machine: not a speed)."
    print(report, flush=True)
    if not args.dry:
        print(common.write_result(NAME, report, data={"header": header, **res}), flush=True)


if __name__ == "__main__":
    main()
