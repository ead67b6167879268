"""DSPy prompt optimization on chapter 06's ticket-routing task with the local SmolLM2-135M-Instruct.

Programs compared on the same test split (never seen by an optimizer) and on the "unseen" split (templates that no
train, dev or test message comes from: new phrasings): zero-shot with DSPy's default ChatAdapter
and free decoding (the failure), zero-shot with JSONAdapter + schema-constrained decoding (the un-optimized
program), hand-written few-shot (balanced demos), LabeledFewShot and BootstrapFewShot. Writes BootstrapFewShot's
program (chosen in advance) to llmlab/data/ch06_optimized_router.json, every per-example score to
llmlab/data/ch06_dspy_scores.json, and a report via benchmarks/common.py.
KNNFewShot (demos = the k training messages nearest to each input by all-MiniLM-L6-v2) is scored next to its
LM-free baseline, a vote of the same k neighbours' labels (prompting.knn_vote): that row says how much of the
optimizer's gain is the retriever's. k=4 for every program was fixed before any test run (KNNFewShot with k=4
and k=8 was tried on 60 dev messages only: 93% and 82%).
MIPROv2/COPRO are left out: they need a proposer LM to write instructions, and SmolLM2-135M's proposals do not parse.
KNNFewShot runs with max_bootstrapped_demos=0: it labels its neighbours from the data, no extra model calls.

Run: flock /tmp/llmlab-heavy.lock python benchmarks/bench_dspy.py [--test N] [--k 4]

--tier2 (see bench_dspy_tier2.py): the same question on the opt-in Qwen2.5-Coder-0.5B-Instruct with an arithmetic
task whose gain no retriever can give; records dspy-qwen05.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import dspy

from benchmarks import common
from llmlab import dspy_lm, models, prompting
from llmlab.evaluation.stats import paired_bootstrap
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
    for name, compile_one in [
        ("LabeledFewShot", lambda: dspy.LabeledFewShot(k=k).compile(base(), trainset=train)),
        ("BootstrapFewShot", lambda: dspy.BootstrapFewShot(metric=tickets.team_metric, max_bootstrapped_demos=k,
                                                          max_labeled_demos=k).compile(base(), trainset=train)),
        ("KNNFewShot", lambda: dspy.KNNFewShot(k, train, dspy_lm.minilm_embedder(), max_bootstrapped_demos=0,
                                               max_labeled_demos=k).compile(base())),  # trainset: in the constructor
    ]:
        start = time.perf_counter()
        program = compile_one()
        out[name] = (program, time.perf_counter() - start)
    return out


def predicted_teams(program, examples) -> list[str | None]:
    """The team the program gives each example (None when the reply does not parse): the LM cache answers these."""
    teams = []
    for example in examples:
        try:
            teams.append(program(**example.inputs()).team)
        except dspy_lm.AdapterParseError:
            teams.append(None)
    return teams


def measure(n_test: int, k: int, n_fail: int, n_unseen: int = 100) -> dict:
    """Per-example test and unseen-template scores of every program, compile times and parse failures."""
    model, tok = models.load()
    dspy_lm.configure_cache(tempfile.mkdtemp(prefix="dspy-bench-"))  # a fresh cache: honest timings
    train = dspy_lm.as_examples(tickets.load_tickets("train"))
    test = dspy_lm.as_examples(tickets.load_tickets("test"))[:n_test]
    unseen = dspy_lm.as_examples(tickets.load_tickets(tickets.UNSEEN))[:n_unseen]
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
            "scores": scores, "failures": fails, "compile_s": 0.0, "eval_s": time.perf_counter() - start,
            "unseen_scores": dspy_lm.evaluate_program(tickets.route_program(), unseen, tickets.team_metric)[0],
            "predictions": predicted_teams(tickets.route_program(), test)}
        for name, (program, seconds) in compile_programs(train, k).items():
            start = time.perf_counter()
            scores, fails = dspy_lm.evaluate_program(program, test, tickets.team_metric)
            results[name] = {"scores": scores, "failures": fails, "compile_s": seconds,
                             "eval_s": time.perf_counter() - start, "program": program,
                             "predictions": predicted_teams(program, test),
                             "unseen_scores": dspy_lm.evaluate_program(program, unseen, tickets.team_metric)[0]}
    results[f"kNN vote of the {k} nearest training labels, no LM"] = {
        "scores": knn_vote_scores(train, test, k), "failures": 0, "compile_s": 0.0,
        "unseen_scores": knn_vote_scores(train, unseen, k)}
    return results


def knn_vote_scores(train, test, k: int) -> list[float]:
    """Per-example scores of prompting.knn_vote over all-MiniLM-L6-v2 embeddings (KNNFewShot's neighbours)."""
    embed = dspy_lm.minilm_embedder()
    votes = prompting.knn_vote(embed([e.message for e in train]), [e.team for e in train],
                               embed([e.message for e in test]), k)
    return [float(v == e.team) for v, e in zip(votes, test)]


def format_report(results: dict, header: str) -> str:
    """A markdown table: accuracy and gain over the un-optimized program on test and on unseen templates."""
    un_optimized = results["zero-shot, JSONAdapter + constrained (un-optimized)"]
    lines = [f"# DSPy optimization, ticket routing (chapter 06)\n\n{header}\n",
             "test: 200 messages from the training templates; unseen: 100 messages from templates no optimizer saw.\n",
             "| program | test n | test accuracy | gain vs un-optimized [95% CI] | unseen accuracy | "
             "gain on unseen [95% CI] | parse failures | compile s |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        cells = []
        for key in ("scores", "unseen_scores"):
            s, base = r.get(key), un_optimized.get(key)
            gain = ""
            if s and base and len(s) == len(base) and r is not un_optimized:
                d, lo, hi = paired_bootstrap(base, s)
                gain = f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
            cells += [f"{100 * sum(s) / len(s):.1f}%" if s else "", gain]
        lines.append(f"| {name} | {len(r['scores'])} | {' | '.join(cells)} | {r['failures']} | "
                     f"{r['compile_s']:.1f} |")
    vote = next((r for n, r in results.items() if n.startswith("kNN vote")), None)
    for key, split in (("scores", "test"), ("unseen_scores", "unseen")):
        if vote is None or "KNNFewShot" not in results or not vote.get(key):
            continue
        d, lo, hi = paired_bootstrap(vote[key], results["KNNFewShot"][key])
        verdict = ("the LM reading the demos adds to their vote" if lo > 0 else
                   "the LM reading the demos does worse than their vote: the gain is the retriever's" if hi < 0
                   else "the LM adds nothing measurable to the vote of its demos")
        lines.append(f"\nKNNFewShot minus the LM-free vote of the same neighbours, {split}: {100 * d:+.1f} points "
                     f"[95% CI {100 * lo:+.1f}, {100 * hi:+.1f}]: {verdict}.")
    return "\n".join(lines)


def write(results: dict, report: str) -> None:
    """Save BootstrapFewShot's program (chosen before seeing any test score) and every per-example score."""
    results["BootstrapFewShot"]["program"].save(str(PROGRAM_PATH))
    scores = {n: {k: v for k, v in r.items() if k != "program"} for n, r in results.items()}
    SCORES_PATH.write_text(json.dumps(scores) + "\n", encoding="utf-8")
    print(common.write_result("dspy", report, data=scores), flush=True)


def main() -> None:
    """Parse arguments, measure, format, write."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--test", type=int, default=200, help="test examples (of 200)")
    parser.add_argument("--unseen", type=int, default=100, help="unseen-template examples (of 100)")
    parser.add_argument("--k", type=int, default=4, help="demos per program")
    parser.add_argument("--fail", type=int, default=20, help="test examples for the free-decoding failure case")
    parser.add_argument("--tier2", action="store_true", help="arithmetic on the opt-in tier (records dspy-qwen05)")
    if "--tier2" in sys.argv[1:]:  # its own options (--test, --unseen, --k mean other sizes there)
        from benchmarks import bench_dspy_tier2

        bench_dspy_tier2.main([a for a in sys.argv[1:] if a != "--tier2"])
        return
    args = parser.parse_args()
    header = common.machine_header()
    results = measure(args.test, args.k, args.fail, args.unseen)
    report = format_report(results, header)
    print(report, flush=True)
    write(results, report)


if __name__ == "__main__":
    main()
