"""Tests for llmlab.viz.interpret: the pure helpers and that every plot draws."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from llmlab import interpret  # noqa: E402
from llmlab.viz import interpret as viz  # noqa: E402


def test_saliency_rows_scale_each_method_to_unit_max():
    a = interpret.Saliency(tokens=["a", "b", "c"], target_mask=torch.tensor([0, 0, 1]).bool(),
                           scores=torch.tensor([2.0, -4.0, 0.0]), method="grad_x_input", value=0.0)
    b = interpret.Saliency(tokens=["a", "b", "c"], target_mask=a.target_mask, scores=torch.zeros(3),
                           method="grad_norm", value=0.0)
    rows = viz.saliency_rows([a, b])
    assert torch.allclose(rows, torch.tensor([[0.5, -1.0, 0.0], [0.0, 0.0, 0.0]]))
    c = interpret.Saliency(tokens=["a"], target_mask=torch.tensor([True]), scores=torch.ones(1), method="x", value=0)
    with pytest.raises(ValueError, match="same tokens"):
        viz.saliency_rows([a, c])
    with pytest.raises(ValueError, match="at least one item"):
        viz.saliency_rows([])
    plt.close(viz.plot_saliency([a, b]))


def test_lens_labels_and_plots(tiny):
    model, tok = tiny
    lens = interpret.logit_lens(model, tok, "Hi there")
    labels = viz.lens_cell_labels(lens.top_ids, tok)
    assert len(labels) == 3 and len(labels[0]) == len(lens.tokens)
    assert labels[1][0] == repr(tok.decode([int(lens.top_ids[1, 0])]))[1:-1]
    plt.close(viz.plot_logit_lens(lens, tok, every=2))
    plt.close(viz.plot_by_layer({"a": [0.1, 0.2, 0.3]}, "p", reference=0.25))
    plt.close(viz.plot_head_effects(torch.randn(2, 4)))
    with pytest.raises(ValueError, match="series must contain"):
        viz.plot_by_layer({}, "p")
    with pytest.raises(ValueError, match="every must be an int"):
        viz.plot_logit_lens(lens, tok, every=0)
