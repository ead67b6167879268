"""Chapter 09 with the opt-in second tier as the judge: Qwen2.5-Coder-0.5B-Instruct (bf16) on the shipped
human-labelled pairs and the shipped code candidates.

Measures, each with a 95% bootstrap interval over pairs (or candidates):
- A/B preference, both orders (free-form reply and next-token A vs B): position consistency under swap, share of
  slot A, agreement and Cohen's kappa against the human preference;
- 1-5 scores (next-token) of all 40 answers: exact agreement and quadratic-weighted kappa against the human scores;
- verbosity bias: the same pairs with the right answer padded by filler that adds nothing, and with the wrong answer
  lengthened by confident filler; the change in how often the judge picks the right answer, and in its scores;
- the shipped code candidates: the judge's score against whether the candidate passes its tests (AUROC).
Quality numbers only: this script times nothing (timings on this busy machine would not be comparable).

Run: flock /tmp/llmlab-heavy.lock python benchmarks/bench_judge_tier2.py [--per-problem 10]
(needs: python -m llmlab fetch qwen2.5-coder-0.5b-instruct). Writes
benchmarks/results/DATE-cpu-evaluation-judge-qwen05.md and its .json (per-item verdicts, for notebook 09).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from llmlab import models  # noqa: E402
from llmlab.evaluation import code as C  # noqa: E402
from llmlab.evaluation import judge as J  # noqa: E402
from llmlab.evaluation import roc  # noqa: E402
from llmlab.evaluation.stats import bootstrap_ci  # noqa: E402
from llmlab.tasks import coding, judging  # noqa: E402

NAME = "evaluation-judge-qwen05"
PAD_RIGHT = ("{answer} To add some context: this is a common question, and the answer given here is the standard one "
             "that textbooks and teachers give. I hope this helps, and feel free to ask if anything is unclear.")
LENGTHEN_WRONG = ("{answer} This is a well-established fact, widely taught in schools and confirmed by many reliable "
                  "sources, so you can rely on it with confidence whenever this question comes up.")


def ci(per_item: Sequence[float], statistic: Callable[[np.ndarray], float] | None = None) -> dict:
    """The value and 95% bootstrap interval of a per-item statistic (mean unless given; statistic gets indices)."""
    if statistic is None:
        _, low, high = bootstrap_ci(list(per_item))
        return {"value": float(np.mean(per_item)), "low": low, "high": high}
    idx = np.arange(len(per_item), dtype=float)
    _, low, high = bootstrap_ci(idx, statistic=lambda rows: statistic(rows.astype(int)))
    return {"value": float(statistic(idx.astype(int))), "low": low, "high": high}


def _nan_safe(x: float) -> float:
    """NaN as 0 inside a bootstrap (a resample with one label has kappa NaN: no agreement beyond chance shown)."""
    return 0.0 if np.isnan(x) else x


def pair_stats(original: list, swapped: list, human: list[str]) -> dict:
    """Consistency, slot-A share, agreement and kappa (both orders pooled, as which answer won) with intervals."""
    flip = {"A": "B", "B": "A", None: None}
    won_o = ["a" if v == "A" else "b" if v == "B" else "none" for v in original]
    won_s = ["b" if v == "A" else "a" if v == "B" else "none" for v in swapped]  # swapped slot A shows answer b
    truth = [h.lower() for h in human]
    consistent = [float(o is not None and s is not None and o != s) for o, s in zip(original, swapped)]
    agree = [(float(o == t) + float(s == t)) / 2 for o, s, t in zip(won_o, won_s, truth)]
    parsed = [v for v in (*original, *swapped) if v is not None]

    def kappa(rows: np.ndarray) -> float:
        return _nan_safe(J.cohens_kappa([won_o[i] for i in rows] + [won_s[i] for i in rows],
                                        [truth[i] for i in rows] * 2))

    return {"pairs": len(human), "consistency": ci(consistent), "agreement": ci(agree), "kappa": ci(agree, kappa),
            "slot_a_share": sum(v == "A" for v in parsed) / len(parsed) if parsed else float("nan"),
            "unparsable": sum(v is None for v in (*original, *swapped)),
            "kappa_original_order": J.cohens_kappa(["unparsable" if v is None else v for v in original], human),
            "both_orders_right": ci([float(o == t and s == t) for o, s, t in zip(won_o, won_s, truth)]),
            "verdicts": {"original": original, "swapped": swapped}, "swapped_should_be": [flip[h] for h in human]}


def averaged_stats(p_a_better: list[float], human: list[str]) -> dict:
    """The order-averaged judge: answer a wins when P(a better), averaged over both orders, exceeds one half."""
    verdicts = ["A" if p > 0.5 else "B" for p in p_a_better]
    p_right = [p if h == "A" else 1 - p for p, h in zip(p_a_better, human)]

    def kappa(rows: np.ndarray) -> float:
        return _nan_safe(J.cohens_kappa([verdicts[i] for i in rows], [human[i] for i in rows]))

    return {"verdicts": verdicts, "p_a_better": p_a_better, "agreement": ci([float(v == h) for v, h in
                                                                             zip(verdicts, human)]),
            "kappa": ci(p_right, kappa), "p_right": ci(p_right)}


def p_right_both_orders(model, tok, question: str, right: str, wrong: str) -> float:
    """The order-averaged probability, from the next-token A/B judge, that the right answer is the better one."""
    first = J.judge_pair_logprob(model, tok, question, right, wrong)[1]
    second = J.judge_pair_logprob(model, tok, question, wrong, right)[1]
    return (first["A"] / (first["A"] + first["B"]) + second["B"] / (second["A"] + second["B"])) / 2


def expected_score(probs: dict[str, float]) -> float:
    """The probability-weighted 1-5 score from the next-token probabilities of '1'..'5'."""
    total = sum(probs.values())
    return sum(int(s) * p for s, p in probs.items()) / total


def measure(model, tok, per_problem: int) -> dict:
    """Every judge measurement on the shipped labels and candidates (see the module docstring)."""
    items = judging.load_labels()
    human = [it.human_preference for it in items]
    replies: list[str] = []

    def free(q, a, b):
        verdict = J.judge_pair(model, tok, q, a, b, max_new_tokens=8)
        replies.append(verdict.reply)
        return verdict.value

    slot_a: list[float] = []  # P(A) / (P(A) + P(B)) of every next-token call, original order then swapped

    def logprob(q, a, b):
        verdict, probs = J.judge_pair_logprob(model, tok, q, a, b)
        slot_a.append(probs["A"] / (probs["A"] + probs["B"]))
        return verdict

    free_run = J.run_pair_judge(free, items)
    next_run = J.run_pair_judge(logprob, items)
    n = len(items)
    p_a_better = [(slot_a[i] + 1 - slot_a[n + i]) / 2 for i in range(n)]  # answer a sits in slot B when swapped
    out = {"free": {**pair_stats(free_run.original, free_run.swapped, human), "replies": replies},
           "next_token": pair_stats(next_run.original, next_run.swapped, human),
           "order_averaged": averaged_stats(p_a_better, human), "slot_a_probability": slot_a}

    def score(q: str, answer: str) -> tuple[int, float]:
        best, probs = J.judge_score_logprob(model, tok, q, answer)
        return int(best), expected_score(probs)

    scored = [[score(it.question, ans) for ans in (it.a, it.b)] for it in items]
    judge_s = [s for row in scored for s, _ in row]
    human_s = [h for it in items for h in (it.human_score_a, it.human_score_b)]

    def wkappa(rows: np.ndarray) -> float:
        cols = [2 * i + k for i in rows for k in (0, 1)]  # resample pairs, keep both answers of a pair
        return _nan_safe(J.weighted_kappa([judge_s[c] for c in cols], [human_s[c] for c in cols]))

    out["scores"] = {"judge": judge_s, "expected": [e for row in scored for _, e in row], "human": human_s,
                     "exact": ci([(float(row[0][0] == it.human_score_a) + float(row[1][0] == it.human_score_b)) / 2
                                  for row, it in zip(scored, items)]),
                     "weighted_kappa": ci(range(len(items)), wkappa),
                     "kappa_unweighted": J.cohens_kappa(judge_s, human_s)}
    out["verbosity"] = verbosity(model, tok, items, out["order_averaged"], scored)
    out["candidates"] = candidates(model, tok, per_problem)
    return out


def verbosity(model, tok, items, base: dict, scored: list) -> dict:
    """Pad the right answer / lengthen the wrong one: change in the order-averaged probability that the judge
    prefers the right answer, and in the modified answer's expected score."""
    rows = []
    for i, it in enumerate(items):
        right_is_a = it.human_preference == "A"
        right, wrong = (it.a, it.b) if right_is_a else (it.b, it.a)
        base_pick = base["p_a_better"][i] if right_is_a else 1 - base["p_a_better"][i]
        padded, longer = PAD_RIGHT.format(answer=right), LENGTHEN_WRONG.format(answer=wrong)
        s_right, s_wrong = scored[i][0 if right_is_a else 1][1], scored[i][1 if right_is_a else 0][1]
        rows.append({"id": it.id, "base": base_pick,
                     "padded_right": p_right_both_orders(model, tok, it.question, padded, wrong),
                     "lengthened_wrong": p_right_both_orders(model, tok, it.question, right, longer),
                     "score_right": s_right, "score_padded_right": expected_score(
                         J.judge_score_logprob(model, tok, it.question, padded)[1]),
                     "score_wrong": s_wrong, "score_lengthened_wrong": expected_score(
                         J.judge_score_logprob(model, tok, it.question, longer)[1])})
    col = {k: [r[k] for r in rows] for k in rows[0]}
    diff = {name: ci([a - b for a, b in zip(col[name], col["base"])]) for name in ("padded_right", "lengthened_wrong")}
    return {"rows": rows, "pick_right": {k: ci(col[k]) for k in ("base", "padded_right", "lengthened_wrong")},
            "pick_right_change": diff,
            "score_change": {"padded_right": ci([a - b for a, b in zip(col["score_padded_right"],
                                                                         col["score_right"])]),
                             "lengthened_wrong": ci([a - b for a, b in zip(col["score_lengthened_wrong"],
                                                                            col["score_wrong"])])}}


def auroc(scores: Sequence[float], passed: Sequence[bool]) -> float:
    """The kit's AUROC (llmlab.evaluation.roc), or NaN when a resample holds one class only."""
    if len({bool(p) for p in passed}) < 2:
        return float("nan")
    return roc.auroc(scores, passed)


def candidates(model, tok, per_problem: int) -> dict:
    """The judge's 1-5 score of each shipped code candidate against whether it passes the problem's tests."""
    problems = coding.load_problems()
    shipped = coding.load_candidates()["candidates"]
    jobs, asks = [], []
    for p in problems:
        for reply in shipped[p.id][:per_problem]:
            jobs.append((C.extract_code(reply), p.tests))
            asks.append((f"Complete this Python function:\n```python\n{p.prompt}```", reply))
    passed = [r.passed for r in C.run_candidates(jobs, timeout=3, workers=1)]
    judged = [J.judge_score_logprob(model, tok, q, a) for q, a in asks]
    expected = [expected_score(probs) for _, probs in judged]
    scores = [int(best) for best, _ in judged]

    def area(rows: np.ndarray) -> float:
        value = auroc([expected[i] for i in rows], [passed[i] for i in rows])
        return 0.5 if np.isnan(value) else value

    return {"n": len(jobs), "passed": passed, "judge": scores, "expected": expected,
            "pass_rate": float(np.mean(passed)), "auroc": ci(range(len(jobs)), area),
            "accuracy_at_3": ci([float((s >= 3) == p) for s, p in zip(scores, passed)]),
            "mean_expected_passing": float(np.mean([e for e, p in zip(expected, passed) if p] or [np.nan])),
            "mean_expected_failing": float(np.mean([e for e, p in zip(expected, passed) if not p] or [np.nan]))}


def fmt(stat: dict, percent: bool = True) -> str:
    """'value [low, high]', in percent or as a plain number."""
    if percent:
        return f"{100 * stat['value']:.1f}% [{100 * stat['low']:.1f}, {100 * stat['high']:.1f}]"
    return f"{stat['value']:+.2f} [{stat['low']:+.2f}, {stat['high']:+.2f}]"


def format_report(res: dict, header: str) -> str:
    """Markdown tables of every measurement, each with its 95% bootstrap interval."""
    lines = [f"# Chapter 09: Qwen2.5-Coder-0.5B-Instruct (bf16, opt-in tier) as the judge\n\n{header}\n",
             "Quality numbers only; nothing here is timed (timings not comparable: busy machine). Intervals: 95% "
             "percentile bootstrap over the pairs (candidates for the last table). Model provenance: "
             "anonymous PyPI packages, no stated licence; upstream Qwen2.5-Coder is Apache-2.0 (see README).\n",
             f"## A/B preference on the {res['free']['pairs']} human-labelled pairs, both orders\n",
             "| judge | same winner both orders | picks slot A | agrees with human (both orders) "
             "| Cohen's κ vs human (both orders) | right in both orders | unparsable |",
             "|---|---|---|---|---|---|---|"]
    for name, key in (("free-form reply, parsed", "free"), ("next-token A vs B", "next_token")):
        r = res[key]
        lines.append(f"| {name} | {fmt(r['consistency'])} | {100 * r['slot_a_share']:.0f}% | {fmt(r['agreement'])} "
                     f"| {fmt(r['kappa'], False)} | {fmt(r['both_orders_right'])} | {r['unparsable']} |")
    o = res["order_averaged"]
    lines += ["\nOrder-averaged next-token judge (answer x wins when P(x better), averaged over x shown first and x "
              "shown second, exceeds one half; this cancels a constant pull toward slot A):\n",
              "| agrees with human | Cohen's κ vs human | mean P(right answer better) |", "|---|---|---|",
              f"| {fmt(o['agreement'])} | {fmt(o['kappa'], False)} | {fmt(o['p_right'])} |"]
    s = res["scores"]
    lines += [f"\n## 1-5 scores of all {len(s['human'])} answers (next-token)\n",
              "| exact agreement with the human score | quadratic-weighted κ | unweighted κ |", "|---|---|---|",
              f"| {fmt(s['exact'])} | {fmt(s['weighted_kappa'], False)} | {s['kappa_unweighted']:+.2f} |",
              "\n## Verbosity bias (next-token judges, both orders)\n",
              "Padding: the right answer followed by filler that adds no information; the wrong answer followed by "
              "confident filler. An unbiased judge's numbers do not move.\n",
              "| pair shown | P(right answer better), order-averaged | change vs original | change in the modified "
              "answer's expected score (1-5) |", "|---|---|---|---|"]
    v = res["verbosity"]
    lines.append(f"| original | {fmt(v['pick_right']['base'])} | | |")
    for key, label in (("padded_right", "right answer padded"), ("lengthened_wrong", "wrong answer lengthened")):
        lines.append(f"| {label} | {fmt(v['pick_right'][key])} | {fmt(v['pick_right_change'][key], False)} "
                     f"| {fmt(v['score_change'][key], False)} |")
    c = res["candidates"]
    lines += [f"\n## Scoring the {c['n']} shipped code candidates against their tests\n",
              f"{100 * c['pass_rate']:.0f}% of the candidates pass their tests.\n",
              "| AUROC of the expected score (pass vs fail) | accuracy of 'score ≥ 3 means passes' "
              "| mean expected score, passing | failing |", "|---|---|---|---|",
              f"| {fmt(c['auroc'], False)} | {fmt(c['accuracy_at_3'])} | {c['mean_expected_passing']:.2f} "
              f"| {c['mean_expected_failing']:.2f} |",
              "\nFirst free-form A/B replies: " + "; ".join(repr(r) for r in res["free"]["replies"][:6])]
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, load the tier (or say how to fetch it), measure, write the report and its JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-problem", type=int, default=10, help="code candidates judged per problem (max 10)")
    parser.add_argument("--dry-run", action="store_true", help="print the report, write nothing")
    args = parser.parse_args()
    loaded = common.load_second_tier()
    if loaded is None:
        return
    model, tok = loaded
    header = common.machine_header()
    res = measure(model, tok, args.per_problem)
    report = format_report(res, header)
    print(report, flush=True)
    if args.dry_run:
        return
    path = common.write_result(NAME, report, data={"header": header, "model": models.SECOND_TIER, **res})
    print(f"wrote {path} and its .json")


if __name__ == "__main__":
    main()
