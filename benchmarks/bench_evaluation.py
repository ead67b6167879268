"""Chapter 09 measurements too slow for the notebook: the free-form LLM judge on every labelled pair in both orders,
the next-token (constrained) judge on the same pairs, and pass@k of the shipped candidates with execution times.

Run: python benchmarks/bench_evaluation.py [judges] [passk]  (minutes on 2 CPU cores); writes
results/DATE-cpu-evaluation-judge.md and results/DATE-cpu-evaluation-passk.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_header, timed, write_result  # noqa: E402

from llmlab import models  # noqa: E402
from llmlab.evaluation import code as C  # noqa: E402
from llmlab.evaluation import judge as J  # noqa: E402
from llmlab.tasks import coding, judging  # noqa: E402


def measure_judges(model, tokenizer) -> dict:
    """Free-form and next-token A/B judges on the labelled pairs, both orders; 1-5 scores of every answer."""
    items = judging.load_labels()
    replies: list[J.Verdict] = []

    def free(question, a, b):
        verdict = J.judge_pair(model, tokenizer, question, a, b, max_new_tokens=8)
        replies.append(verdict)
        return verdict.value

    free_run, free_s = timed(J.run_pair_judge, free, items)
    logprob_run, logprob_s = timed(J.run_pair_judge,
                                   lambda q, a, b: J.judge_pair_logprob(model, tokenizer, q, a, b)[0], items)
    score_verdicts = [J.judge_score(model, tokenizer, it.question, ans, max_new_tokens=6)
                      for it in items for ans in (it.a, it.b)]
    human_scores = [s for it in items for s in (it.human_score_a, it.human_score_b)]
    parsed = [(v.value, h) for v, h in zip(score_verdicts, human_scores) if v.parsed]
    return {"items": len(items), "free": free_run, "free_s": free_s, "logprob": logprob_run, "logprob_s": logprob_s,
            "free_examples": [v.reply for v in replies[:6]], "score_unparsable": J.unparsable_count(score_verdicts),
            "score_total": len(score_verdicts),
            "score_kappa_pass": J.cohens_kappa([int(v) >= 3 for v, _ in parsed], [h >= 3 for _, h in parsed])
            if parsed else float("nan")}


def measure_pass_at_k() -> dict:
    """Run every shipped candidate against its tests; pass@1/5/10 and the time per candidate."""
    problems = coding.load_problems()
    shipped = coding.load_candidates()
    start = time.perf_counter()
    results, statuses = {}, {}
    jobs = [(C.extract_code(r), p.tests) for p in problems for r in shipped["candidates"][p.id]]
    runs = C.run_candidates(jobs, timeout=3, workers=1)
    it = iter(runs)
    for p in problems:
        results[p.id] = [next(it).passed for _ in shipped["candidates"][p.id]]
    for r in runs:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    seconds = time.perf_counter() - start
    n = sum(map(len, results.values()))
    return {"settings": shipped["settings"], "results": results, "statuses": statuses,
            "pass": {k: C.mean_pass_at_k(list(results.values()), k) for k in (1, 5, 10)},
            "ms_per_candidate": 1000 * seconds / n, "candidates": n}


def _judge_rows(name: str, run: J.JudgeRun, seconds: float) -> str:
    """One table row for a judge run."""
    b = run.bias
    return (f"| {name} | {b.first_slot_share:.0%} | {b.consistent}/{b.pairs} | {run.agreement:.0%} | {run.kappa:.2f} "
            f"| {b.unparsable} | {seconds:.0f} s |\n")


def format_judges(judges: dict) -> str:
    """Markdown report of the judge measurements."""
    return "".join([
        f"# Chapter 09: LLM judge (SmolLM2-135M-Instruct) on {judges['items']} human-labelled pairs, both orders\n\n",
        f"{machine_header()}\n\n",
        "| judge | picks slot A | same winner both orders | agrees with human | Cohen's κ | unparsable | time |\n",
        "|---|---|---|---|---|---|---|\n",
        _judge_rows("free-form reply, parsed", judges["free"], judges["free_s"]),
        _judge_rows("next-token A vs B", judges["logprob"], judges["logprob_s"]),
        f"\n1-5 scores, free-form: {judges['score_unparsable']} of {judges['score_total']} replies unparsable; "
        f"κ on pass (≥3) / fail vs human over the parsed ones: {judges['score_kappa_pass']:.2f}.\n\n",
        "First free-form A/B replies: " + "; ".join(repr(r) for r in judges["free_examples"]) + "\n"])


def format_pass_at_k(passk: dict) -> str:
    """Markdown report of pass@k on the shipped candidates."""
    out = [f"# Chapter 09: pass@k of the shipped candidates ({passk['candidates']} = "
           f"{len(passk['results'])} problems × {passk['settings']['n']})\n\n{machine_header()}\n\n",
           f"Settings: {passk['settings']}\n\n",
           "| pass@1 | pass@5 | pass@10 |\n|---|---|---|\n",
           f"| {passk['pass'][1]:.3f} | {passk['pass'][5]:.3f} | {passk['pass'][10]:.3f} |\n\n",
           f"Outcomes: {passk['statuses']}; {passk['ms_per_candidate']:.0f} ms per sandboxed run.\n\n",
           "| problem | passed |\n|---|---|\n"]
    out += [f"| {pid} | {sum(r)}/{len(r)} |\n" for pid, r in passk["results"].items()]
    return "".join(out)


def main(parts: list[str]) -> None:
    """Measure, format and write the parts asked for ('judges', 'passk')."""
    if "judges" in parts:
        model, tokenizer = models.load(device="cpu")
        judges = measure_judges(model, tokenizer)
        report = format_judges(judges)
        print(report)
        print(write_result("evaluation-judge", report, data=judges))
    if "passk" in parts:
        passk = measure_pass_at_k()
        report = format_pass_at_k(passk)
        print(report)
        print(write_result("evaluation-passk", report, data=passk))


if __name__ == "__main__":
    main(sys.argv[1:] or ["judges", "passk"])
