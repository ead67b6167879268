"""The tier-2 reports of bench_dspy (--tier2), bench_agents and bench_rag, on made-up scores: no model needed."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_agents  # noqa: E402
import bench_dspy_tier2  # noqa: E402
import bench_rag  # noqa: E402

from llmlab.evaluation.stats import bootstrap_ci, paired_bootstrap  # noqa: E402


def test_dspy_tier2_report_shows_gains_over_the_same_module_and_the_budget():
    base, better = [0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]

    def row(s, calls):
        return {"test": s, "unseen": s, "test_failures": 0, "unseen_failures": 1, "demos": 3,
                "compile_calls": calls, "eval_calls": 8, "test_accuracy": list(bootstrap_ci(s)),
                "unseen_accuracy": list(bootstrap_ci(s)), "test_gain": list(paired_bootstrap(base, s)),
                "unseen_gain": list(paired_bootstrap(base, s))}

    res = {"n_train": 12, "n_test": 4, "n_unseen": 4, "k": 3, "max_tokens": 160,
           "programs": {bench_dspy_tier2.BASE: row(base, 0),
                        "BootstrapFewShot, bootstrapped traces only": row(better, 7)}}
    md = bench_dspy_tier2.format_report(res, "header")
    assert f"| {bench_dspy_tier2.BASE} | 3 | 25.0% [" in md
    assert "| BootstrapFewShot, bootstrapped traces only | 3 | 75.0% [" in md and "| +50.0 [" in md
    assert md.rstrip().endswith("answered from the cache).") and "| 1 | 7 | 8 |" in md
    res["programs"][bench_dspy_tier2.MIPRO] = {**row(better, 40), "compile_s": 300.0}
    res["mipro"] = {"n_val": 6, "evaluations": 11, "proposer_calls": 12, "val_score": 50.0,
                    "chosen_instruction": "Add the numbers.", "proposed": ["Solve it.", "Add the numbers."],
                    "evaluated": [{"instruction": "Add the numbers.", "demos": 2, "val_score": 50.0}]}
    md = bench_dspy_tier2.format_report(res, "header")
    assert f"| {bench_dspy_tier2.MIPRO} | 3 | 75.0% [" in md and "| 1 | 40 | 8 |" in md
    assert "11 full evaluations" in md and "40 compile calls in all, 12 of them by the instruction proposer" in md
    assert "Instruction chosen: 'Add the numbers.'" in md and "1. 'Add the numbers.'" in md
    assert md.rstrip().endswith("| 'Add the numbers.' | 2 | 50.0% |")


def test_agents_tier2_report_and_step_flags():
    assert bench_agents.step_flags([{"valid": 2, "steps": 3}, {"valid": 0, "steps": 1}]) == [1.0, 1.0, 0.0, 0.0]

    def rows(ok, valid=2):
        return [{"success": s, "mode": "success" if s else "wrong answer", "steps": 2, "valid": valid} for s in ok]

    small, tier = [False, False, True, False], [True, False, True, True]
    res = {"n": 4, "max_steps": 4, "models": {}, "success_gain": {
        "constrained": list(paired_bootstrap([float(s) for s in small], [float(s) for s in tier]))}}
    for label, ok in zip(bench_agents.TIER2_MODELS, (small, tier)):
        res["models"][label] = {"constrained": bench_agents.summarise(rows(ok), 1.0),
                                "free": bench_agents.summarise(rows([False] * 4, valid=1), 2.0)}
    res["success_gain"]["free"] = [0.0, 0.0, 0.0]
    md = bench_agents.format_tier2(res, "header")
    assert "| SmolLM2-135M-Instruct | constrained | 25.0% [" in md
    assert "| Qwen2.5-Coder-0.5B-Instruct | constrained | 75.0% [" in md
    assert "| Qwen2.5-Coder-0.5B-Instruct | free | 0.0% [0.0%, 0.0%] | 50.0% [" in md
    assert "task success, constrained (paired over tasks): +50.0 points" in md
    assert "| success | 1 | 0 | 3 | 0 |" in md and "| wrong answer | 3 | 4 | 1 | 4 |" in md


def test_agents_pick_tasks_keeps_the_mix_of_plans():
    tasks = [{"id": f"T{i:02d}"} for i in range(60)]
    assert [t["id"] for t in bench_agents.pick_tasks(tasks, 20)] == [f"T{i:02d}" for i in range(0, 60, 3)]
    assert bench_agents.pick_tasks(tasks, None) == tasks and len(bench_agents.pick_tasks(tasks, 7)) == 7


def test_rag_tier2_report():
    def scores(contains):
        return {"contains": contains, "exact": contains, "contains_ci": list(bootstrap_ci(contains)),
                "exact_ci": list(bootstrap_ci(contains))}

    models = {}
    for label, closed, open_book in zip(bench_rag.TIER2_MODELS, ([0.0, 0.0], [0.0, 1.0]), ([1.0, 0.0], [1.0, 1.0])):
        models[label] = {"no retrieval": scores(closed), "hybrid (RRF)": scores(open_book), "seconds": 2.0,
                         "rag_gain": list(paired_bootstrap(closed, open_book))}
    res = {"n": 2, "top": 3, "models": models, "contexts": ["hybrid (RRF)", "no retrieval"],
           "tier_gain_hybrid": list(paired_bootstrap([1.0, 0.0], [1.0, 1.0])),
           "tier_gain": {"no retrieval": list(paired_bootstrap([0.0, 0.0], [0.0, 1.0]))}}
    md = bench_rag.format_tier2(res, "header")
    assert "| Qwen2.5-Coder-0.5B-Instruct | hybrid (RRF) | 100.0% [100.0%, 100.0%] |" in md
    assert "- SmolLM2-135M-Instruct: hybrid RAG minus no retrieval (contains): +50.0 [" in md
    assert "- Qwen minus SmolLM2 with hybrid RAG (contains): +50.0 [" in md
    assert "- Qwen minus SmolLM2, no retrieval (contains): +50.0 [" in md and "2 questions × 2 contexts" in md


def test_rag_injection_tier2_report_names_every_defense_with_its_rates():
    res = {"n": 2, "model": "qwen", "injection": {
        "none": {"followed": [1.0, 1.0], "contains": [0.0, 0.0]},
        "prompt": {"followed": [1.0, 0.0], "contains": [0.0, 1.0]},
        "prompt+filter": {"followed": [0.0, 0.0], "contains": [1.0, 1.0]}}}
    md = bench_rag.format_injection_tier2(res, "header")
    assert "2 test questions" in md and "header" in md
    assert "| none | 1.00 [1.00, 1.00] | 0.00 [0.00, 0.00] |" in md
    assert "| prompt+filter | 0.00 [0.00, 0.00] | 1.00 [1.00, 1.00] |" in md and "| prompt | 0.50" in md
