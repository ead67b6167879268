"""Tests for llmlab.viz.lora: the pure functions behind the chapter 05 widgets, and that plots render."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from llmlab.viz import lora as vl  # noqa: E402


def test_memory_by_method_orders_full_lora_qlora():
    table = vl.memory_by_method(7, bits=16, lora_share=0.005)
    assert list(table) == ["full", "lora", "qlora"]
    assert table["full"]["total"] == pytest.approx(56.0)
    assert table["full"]["total"] > table["lora"]["total"] > table["qlora"]["total"]
    assert table["lora"]["gradients"] == pytest.approx(7 * 0.005 * 2)
    with pytest.raises(ValueError, match=r"lora_share must be in \(0, 1\], got 0"):
        vl.memory_by_method(7, lora_share=0)


def test_rank_summary_counts_and_error():
    gen = torch.Generator().manual_seed(0)
    delta = torch.randn(32, 2, generator=gen) @ torch.randn(2, 16, generator=gen)
    info = vl.rank_summary(delta, 2)
    assert info["lora_params"] == 2 * (16 + 32) and info["full_params"] == 512
    assert info["share"] == pytest.approx(96 / 512) and info["relative_error"] < 1e-6
    assert vl.rank_summary(delta, 1)["relative_error"] > 0.1


def test_plots_render_and_widgets_build():
    gen = torch.Generator().manual_seed(0)
    delta = torch.randn(24, 16, generator=gen)
    figures = [vl.plot_memory(7), vl.plot_rank(delta, 4, max_rank=16), vl.plot_loss([3.0, 2.0, 1.5, 1.0], smooth=2),
               vl.plot_slerp_vs_lerp(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])),
               vl.plot_task_vector_merge([torch.ones(4), -torch.ones(4)], {"mean": torch.zeros(4)})]
    assert all(len(f.axes) >= 1 for f in figures)
    for fig in figures:
        plt.close(fig)
    assert vl.memory_widget().children and vl.rank_widget(delta, max_rank=16).children
    plt.close("all")


def test_plot_functions_reject_bad_input():
    with pytest.raises(ValueError, match="losses must contain at least one value"):
        vl.plot_loss([])
    with pytest.raises(ValueError, match=r"max_rank must be an int in \[1, 4\], got 8"):
        vl.plot_rank(torch.zeros(4, 6), 2, max_rank=8)
    with pytest.raises(ValueError, match="v0 and v1 must be 2-d vectors"):
        vl.plot_slerp_vs_lerp(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="task_vectors must be a non-empty list of 1-d tensors"):
        vl.plot_task_vector_merge([], {})
