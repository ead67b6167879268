"""Chapter 11 agent view: a step-through trace of one episode (replies, tool calls, observations, failures)."""

from __future__ import annotations

import html

from llmlab import validate
from llmlab.agents import Trace


def trace_rows(trace: Trace) -> list[dict]:
    """One dict per step: step, reply, valid, tool, input, observation, note (what went wrong, if anything)."""
    if not isinstance(trace, Trace):
        raise TypeError(f"trace must be an llmlab.agents.Trace, got {type(trace).__name__}")
    rows = []
    for i, s in enumerate(trace.steps, start=1):
        note = ""
        if not s.valid:
            note = "invalid tool call: the loop answered with an error"
        elif s.observation and s.observation.startswith("error"):
            note = "the tool failed"
        elif s.tool == "final_answer":
            note = "final answer"
        rows.append({"step": i, "reply": s.reply, "valid": s.valid, "tool": s.tool, "input": s.input,
                     "observation": s.observation, "note": note})
    if trace.answer is None:
        rows.append({"step": len(trace.steps) + 1, "reply": "", "valid": True, "tool": None, "input": None,
                     "observation": None, "note": f"stopped: {trace.stop} reached without a final answer"})
    return rows


def trace_html(trace: Trace, upto: int) -> str:
    """HTML of the task and the first `upto` rows of the trace (invalid steps and failures in red)."""
    rows = trace_rows(trace)
    validate.integer("upto", upto, 0, len(rows))
    parts = [f"<p><b>task:</b> {html.escape(trace.task)}</p>"]
    for r in rows[:upto]:
        color = "red" if (not r["valid"] or r["note"].startswith(("stopped", "the tool", "invalid"))) else "black"
        parts.append(f"<p style='color:{color}'><b>step {r['step']}</b> {html.escape(r['note'])}<br>"
                     f"<code>{html.escape(r['reply'])}</code><br>"
                     f"{'→ ' + html.escape(r['observation']) if r['observation'] else ''}</p>")
    if upto == len(rows):
        parts.append(f"<p><b>answer:</b> {html.escape(str(trace.answer))}</p>")
    return "".join(parts)


def trace_widget(trace: Trace):
    """An ipywidgets step-through of a trace: a slider over steps and the trace up to that step."""
    import ipywidgets as widgets

    n = len(trace_rows(trace))
    step = widgets.IntSlider(value=min(1, n), min=0, max=n, description="steps shown")
    out = widgets.HTML(trace_html(trace, step.value))
    step.observe(lambda change: setattr(out, "value", trace_html(trace, change["new"])), names="value")
    return widgets.VBox([step, out])
