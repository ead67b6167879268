"""Chapter 07 views: step statuses, the HTML stepper, the timeline schedule and the speedup grid."""

import matplotlib
import pytest

from llmlab.kit import fixtures
from llmlab.speculative import Step, predicted_speedup
from llmlab.viz import speculative as VS

matplotlib.use("Agg")

STEPS = [Step([65, 66, 67], 1, 70), Step([71, 72], 2, 73)]


def test_step_tokens_marks_accepted_rejected_resampled_and_bonus():
    rows = VS.step_tokens(STEPS)
    assert rows[0] == [(65, "accepted"), (66, "rejected"), (67, "rejected"), (70, "resampled")]
    assert rows[1] == [(71, "accepted"), (72, "accepted"), (73, "bonus")]
    with pytest.raises(TypeError, match="steps must hold"):
        VS.step_tokens([(1, 2)])


def test_step_html_hides_earlier_rejections_and_colours_the_current_step():
    tok = fixtures.tiny_tokenizer()
    first = VS.step_html(STEPS, tok, 1)
    assert "line-through" in first and VS.COLOURS["resampled"] in first
    both = VS.step_html(STEPS, tok, 2)
    assert both.count("line-through") == 0 and VS.COLOURS["bonus"] in both
    with pytest.raises(ValueError, match="upto must be an int in"):
        VS.step_html(STEPS, tok, 3)
    VS.step_widget(STEPS, tok)


def test_schedule_counts_draft_and_verify_time():
    bars = VS.schedule(STEPS, c=0.1, verify_cost=1.5)
    draft = [b for b in bars if b[0] == "draft"]
    verify = [b for b in bars if b[0] == "target (speculative)"]
    plain = [b for b in bars if b[0] == "target (plain)"]
    assert len(draft) == 5 and [b[3] for b in verify] == ["+2", "+3"] and len(plain) == 5
    assert verify[-1][1] + verify[-1][2] == pytest.approx(5 * 0.1 + 2 * 1.5)
    VS.plot_timeline(STEPS, 0.1, 1.5)


def test_speedup_grid_matches_the_model():
    grid = VS.speedup_grid([0.5, 0.9], [1, 4], 0.05, {1: 1.1, 4: 1.4})
    assert grid[1][1] == pytest.approx(predicted_speedup(0.9, 4, 0.05, 1.4))
    VS.plot_speedup_model(0.05, {g: 1.0 + 0.1 * g for g in range(1, 11)}, [(4, 0.7, 1.6, "measured")])
