"""The tool-using agent on the local model: task success, tool-call validity, steps, failure modes, injection.

Run with `flock /tmp/llmlab-heavy.lock python benchmarks/bench_agents.py` (--n to use fewer tasks, --quick for a
smoke run). Writes benchmarks/results/DATE-DEVICE-agents.md.
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
from llmlab.evaluation.stats import bootstrap_ci  # noqa: E402
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


def main() -> None:
    """Measure, format, write."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=None, help="number of tasks (default all 60)")
    parser.add_argument("--quick", action="store_true", help="three tasks (smoke run, not a result)")
    args = parser.parse_args()
    header = common.machine_header()
    res = measure(args.n, args.quick)
    report = format_report(res, header)
    print(report)
    if not args.quick:
        path = common.write_result("agents", report, data={"header": header, **res})
        print(f"wrote {path} and its .json (read by notebook 11)")


if __name__ == "__main__":
    main()
