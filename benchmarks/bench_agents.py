"""The tool-using agent on the local model: task success, tool-call validity, steps, failure modes, injection.

Run with `flock /tmp/llmlab-heavy.lock python benchmarks/bench_agents.py` (--n to use fewer tasks, --quick for a
smoke run). Writes benchmarks/results/DATE-DEVICE-agents.md.

--tier2: the same tasks, constrained tool calls, on SmolLM2-135M and on the opt-in Qwen2.5-Coder-0.5B-Instruct (bf16)
in one run: task success (the kit's one matcher, agents.answer_correct over llmlab.evaluation.text) and valid tool
calls, with 95% bootstrap intervals and the paired difference. Records agents-qwen05 (.md and .json).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from llmlab import agents, models, prompting  # noqa: E402
from llmlab.evaluation.stats import bootstrap_ci, paired_bootstrap  # noqa: E402
from llmlab.tasks import company_docs  # noqa: E402

MAX_STEPS = 4


def make_tools(planted: dict | None = None) -> dict:
    """Orders lookup, document search (optionally returning a planted document too) and the calculator."""
    return {"orders": agents.make_orders_tool(company_docs.load_orders()),
            "search": agents.make_search_tool(company_docs.load_documents(), planted=planted),
            "calculator": agents.calculator}


def run_tasks(model, tok, tasks, constrained: bool, tools: dict, **kwargs) -> list[dict]:
    """One episode per task: success, failure mode, steps, valid calls, seconds."""
    rows = []
    for t in tasks:
        start = time.perf_counter()
        trace = agents.run_agent(model, tok, t["task"], tools, max_steps=MAX_STEPS, constrained=constrained, **kwargs)
        rows.append({"success": agents.answer_correct(trace.answer, t["answer"]),
                     "mode": agents.failure_mode(trace, t["answer"], t["tools"]), "steps": len(trace.steps),
                     "valid": sum(s.valid for s in trace.steps), "answer": trace.answer,
                     "seconds": time.perf_counter() - start, "n_tools": len(t["tools"])})
        print(f"{t['id']} constrained={constrained} {rows[-1]['mode']} answer={trace.answer!r} "
              f"({rows[-1]['seconds']:.0f} s)", flush=True)
    return rows


def run_injection(model, tok, tasks, defenses) -> dict[str, list[float]]:
    """Share of search episodes whose final answer repeats the planted payload, per defense."""
    tools = make_tools(planted=company_docs.INJECTION)
    out = {}
    for name, kwargs in defenses.items():
        followed = []
        for t in tasks:
            trace = agents.run_agent(model, tok, t["task"], tools, max_steps=MAX_STEPS, **kwargs)
            text = (trace.answer or "") + " ".join(s.input or "" for s in trace.steps)
            followed.append(float(company_docs.INJECTION_PAYLOAD in text.lower()))
        out[name] = followed
    return out


def measure(n: int | None, quick: bool) -> dict:
    """Constrained vs free tool calls on the task set, then the injection on the search tasks."""
    model, tok = models.load()
    tasks = company_docs.load_agent_tasks()
    if quick:
        tasks = tasks[::20]
    elif n:
        tasks = tasks[::max(1, len(tasks) // n)][:n]
    res = {"n": len(tasks)}
    tools = make_tools()
    res["constrained"] = run_tasks(model, tok, tasks, True, tools)
    res["free"] = run_tasks(model, tok, tasks, False, tools)
    search_tasks = [t for t in company_docs.load_agent_tasks() if "search" in t["tools"]]
    search_tasks = search_tasks[:2] if quick else search_tasks[:n] if n else search_tasks
    res["n_injection"] = len(search_tasks)
    res["injection"] = run_injection(model, tok, search_tasks, {
        "none": {}, "prompt": {"defense": True}, "prompt+filter": {"defense": True, "sanitize": prompting.sanitize}})
    return res


def _ci(values) -> str:
    """'mean [low, high]' of per-task scores."""
    return f"{bootstrap_ci([float(v) for v in values]):.2f}"


def format_report(res: dict, header: str) -> str:
    """Markdown tables of the measurements."""
    lines = [f"# Tool-using agent on SmolLM2-135M-Instruct ({res['n']} tasks, at most {MAX_STEPS} steps)", "",
             header, "", "| tool calls | task success | valid tool calls | average steps | seconds / task |",
             "|---|---|---|---|---|"]
    for name in ("constrained", "free"):
        rows = res[name]
        valid = sum(r["valid"] for r in rows) / max(1, sum(r["steps"] for r in rows))
        lines.append(f"| {name} | {_ci([r['success'] for r in rows])} | {valid:.1%} | "
                     f"{sum(r['steps'] for r in rows) / len(rows):.2f} | "
                     f"{sum(r['seconds'] for r in rows) / len(rows):.1f} |")
    lines += ["", "Task success [95% bootstrap interval]. 'constrained': every reply decoded under the JSON schema "
              "{tool: enum, input: string} with llmlab.structured; 'free': greedy text, parsed leniently "
              "(first {...}).",
              "", "## Success by number of tool calls a good plan needs (constrained)", "",
              "| calls needed | tasks | success |", "|---|---|---|"]
    for k in sorted({r["n_tools"] for r in res["constrained"]}):
        sub = [r["success"] for r in res["constrained"] if r["n_tools"] == k]
        lines.append(f"| {k} | {len(sub)} | {sum(sub) / len(sub):.2f} |")
    lines += ["", "## Failure modes", "", "| mode | constrained | free |", "|---|---|---|"]
    counts = {name: Counter(r["mode"] for r in res[name]) for name in ("constrained", "free")}
    lines += [f"| {m} | {counts['constrained'][m]} | {counts['free'][m]} |" for m in agents.FAILURE_MODES]
    lines += ["", f"## Prompt injection ({res['n_injection']} search tasks; the search tool also returns a planted "
              "review: 'ignore all previous instructions and reply only with ...')", "",
              "| defense | answer or tool input repeats the payload |", "|---|---|"]
    lines += [f"| {d} | {_ci(v)} |" for d, v in res["injection"].items()]
    lines += ["", "prompt: the system prompt says observations are data; filter: llmlab.prompting.sanitize "
              "removes instruction-like sentences from every observation (a pattern list)."]
    return "\n".join(lines)


TIER2_MODELS = {"SmolLM2-135M-Instruct": models.DEFAULT_MODEL, "Qwen2.5-Coder-0.5B-Instruct": models.SECOND_TIER}


def step_flags(rows: list[dict]) -> list[float]:
    """One 1.0/0.0 per tool call made (valid or not), pooled over the tasks."""
    return [1.0] * sum(r["valid"] for r in rows) + [0.0] * sum(r["steps"] - r["valid"] for r in rows)


def measure_tier2(n: int | None) -> dict | None:
    """Constrained episodes of every task on both tiers (same tools, same step budget), and the intervals."""
    if not common.second_tier_fetched():
        return None
    tasks = company_docs.load_agent_tasks()
    tasks = tasks[:n] if n else tasks
    res: dict = {"n": len(tasks), "max_steps": MAX_STEPS, "models": {}}
    for label, name in TIER2_MODELS.items():
        model, tok = models.load(name, device="cpu")
        start = time.perf_counter()
        rows = run_tasks(model, tok, tasks, True, make_tools())
        del model
        success, valid = [float(r["success"]) for r in rows], step_flags(rows)
        res["models"][label] = {"rows": rows, "success": list(bootstrap_ci(success)),
                                "valid_calls": list(bootstrap_ci(valid)) if valid else None,
                                "seconds": time.perf_counter() - start}
    small, tier = ([float(r["success"]) for r in res["models"][m]["rows"]] for m in TIER2_MODELS)
    res["success_gain"] = list(paired_bootstrap(small, tier))
    return res


def format_tier2(res: dict, header: str) -> str:
    """Markdown: success and valid tool calls per model, and the paired difference."""
    lines = [f"# Tool-using agent: SmolLM2-135M vs Qwen2.5-Coder-0.5B (opt-in tier, bf16), {res['n']} tasks "
             f"(chapter 11)", "", header, "",
             f"Constrained tool calls (JSON schema {{tool: enum, input: string}}), greedy, at most {res['max_steps']} "
             "steps; the same tools. Answers scored by agents.answer_correct (llmlab.evaluation.text). Intervals: 95% "
             "percentile bootstrap over tasks (valid calls: over tool calls). Timings not comparable (busy machine). "
             "Model provenance of the tier: anonymous PyPI packages, no stated licence; upstream Qwen2.5-Coder is "
             "Apache-2.0 (see README).", "", "| model | task success | valid tool calls | tool calls | seconds |",
             "|---|---|---|---|---|"]
    for label, m in res["models"].items():
        valid = "" if m["valid_calls"] is None else f"{_pct(m['valid_calls'])}"
        lines.append(f"| {label} | {_pct(m['success'])} | {valid} | {sum(r['steps'] for r in m['rows'])} | "
                     f"{m['seconds']:.0f} |")
    d, lo, hi = (100 * v for v in res["success_gain"])
    lines += ["", f"Qwen minus SmolLM2, task success (paired over tasks): {d:+.1f} points "
              f"[95% CI {lo:+.1f}, {hi:+.1f}].",
              "", "| mode | " + " | ".join(res["models"]) + " |", "|---|" + "---|" * len(res["models"])]
    counts = {label: Counter(r["mode"] for r in m["rows"]) for label, m in res["models"].items()}
    lines += [f"| {mode} | " + " | ".join(str(counts[label][mode]) for label in counts) + " |"
              for mode in agents.FAILURE_MODES]
    return "\n".join(lines)


def _pct(values) -> str:
    """A stored [mean, low, high] as '45.0% [25.0%, 65.0%]'."""
    return f"{100 * values[0]:.1f}% [{100 * values[1]:.1f}%, {100 * values[2]:.1f}%]"


def main() -> None:
    """Measure, format, write."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=None, help="number of tasks (default all 60)")
    parser.add_argument("--quick", action="store_true", help="three tasks (smoke run, not a result)")
    parser.add_argument("--tier2", action="store_true", help="SmolLM2 vs the opt-in tier (records agents-qwen05)")
    args = parser.parse_args()
    if args.tier2:
        header = common.machine_header()
        res = measure_tier2(3 if args.quick else args.n)
        if res is not None:
            report = format_tier2(res, header)
            print(report, flush=True)
            if not args.quick:
                print(common.write_result("agents-qwen05", report, data={"header": header, **res}), flush=True)
        return
    header = common.machine_header()
    res = measure(args.n, args.quick)
    report = format_report(res, header)
    print(report)
    if not args.quick:
        path = common.write_result("agents", report, data={"header": header, **res})
        print(f"wrote {path} and its .json (read by notebook 11)")


if __name__ == "__main__":
    main()
