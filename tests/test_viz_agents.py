"""Chapter 11 agent trace view: rows, HTML up to a step, and the step-through widget."""

import pytest

from llmlab import agents
from llmlab.viz import agents as viz


def _trace(answer="21"):
    steps = [agents.Step('{"tool": "orders", "input": "Q-1"}', True, "orders", "Q-1", "order Q-1: quantity 2", 0.1),
             agents.Step("I will compute", False, None, None, "error: invalid tool call (no JSON)", 0.1)]
    if answer:
        steps.append(agents.Step('{"tool": "final_answer", "input": "21"}', True, "final_answer", "21", None, 0.1))
    return agents.Trace("task", steps, answer, "final answer" if answer else "step budget")


def test_trace_rows_mark_failures():
    rows = viz.trace_rows(_trace())
    assert [r["note"] for r in rows] == ["", "invalid tool call: the loop answered with an error", "final answer"]
    rows = viz.trace_rows(_trace(answer=None))
    assert rows[-1]["note"].startswith("stopped: step budget")
    with pytest.raises(TypeError, match="trace"):
        viz.trace_rows("trace")


def test_trace_html_steps():
    html = viz.trace_html(_trace(), 1)
    assert "step 1" in html and "step 2" not in html and "answer:" not in html
    full = viz.trace_html(_trace(), 3)
    assert "color:red" in full and "<b>answer:</b> 21" in full
    with pytest.raises(ValueError, match="upto"):
        viz.trace_html(_trace(), 4)


def test_trace_widget_steps_through():
    box = viz.trace_widget(_trace())
    slider, out = box.children
    slider.value = 3
    assert "answer:" in out.value
