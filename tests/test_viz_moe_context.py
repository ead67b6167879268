"""Tests for chapter 14's plots (llmlab.viz.moe, llmlab.viz.context)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from llmlab import longcontext as lc  # noqa: E402
from llmlab.viz import context as vctx  # noqa: E402
from llmlab.viz import moe as vmoe  # noqa: E402


def test_smooth_is_a_trailing_mean():
    assert np.allclose(vmoe.smooth([1.0, 3.0, 5.0, 7.0], span=2), [1.0, 2.0, 4.0, 6.0])
    with pytest.raises(ValueError, match="span"):
        vmoe.smooth([1.0], span=0)


def test_mask_text_draws_rows():
    assert vctx.mask_text(lc.sliding_window_mask(3, 2)) == "■··\n■■·\n·■■"
    with pytest.raises(ValueError, match="mask"):
        vctx.mask_text(torch.ones(2, 2))


def test_plots_return_figures():
    figs = [vmoe.plot_loss_curves({"a": [3.0, 2.0, 1.0]}, span=1),
            vmoe.plot_expert_usage({"x": [[0.5, 0.5], [0.9, 0.1]]}),
            vctx.plot_loss_by_position({"full": [3.0, 2.5]}, bucket=64, marks={"window": 64}),
            vctx.plot_inv_freq({"default": lc.default_inv_freq(8)}),
            vctx.plot_needle([[1, 0], [0, 1]], [256, 512], [0.0, 1.0]),
            vctx.plot_prefill([64, 128, 256], [0.1, 0.2, 0.5], 0.05, 1e-3, 1e-6)]
    assert all(isinstance(f, plt.Figure) for f in figs)
    assert len(figs[1].axes) == 1 and len(figs[1].axes[0].patches) == 4
    plt.close("all")
