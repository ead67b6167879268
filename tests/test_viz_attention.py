"""Chapter 03 plots and widgets render and their pure functions compute the right numbers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from llmlab.viz import attention as va  # noqa: E402


def test_attention_map_selects_layer_and_head():
    maps = torch.rand(2, 3, 4, 4)
    assert torch.equal(va.attention_map(maps, 1, 2), maps[1, 2])
    with pytest.raises(ValueError, match=r"head must be an int in \[0, 2\], got 3"):
        va.attention_map(maps, 0, 3)
    with pytest.raises(ValueError, match="maps must be a"):
        va.attention_map(torch.rand(3, 4, 4), 0, 0)


def test_plots_and_widgets_render():
    maps = torch.softmax(torch.rand(2, 3, 4, 4), -1)
    fig = va.plot_attention_map(maps, ["a", "b", "c", "d"], 1, 1)
    assert fig.axes[0].get_title() == "layer 1, head 1"
    with pytest.raises(ValueError, match="tokens must have one label per position"):
        va.plot_attention_map(maps, ["a"], 0, 0)
    assert va.attention_map_widget(maps, list("abcd")).children
    assert va.plot_prefill_decode([1, 2], [0.1, 0.2], [0.01, 0.01]).axes
    assert va.plot_cache_curves([1, 2], [0.1, 0.2], [0.1, 0.4]).axes
    with pytest.raises(ValueError, match="must be non-empty and of equal length"):
        va.plot_cache_curves([1, 2], [0.1], [0.1, 0.4])
    assert va.kv_calculator_widget().children


def test_kv_memory_rows_reproduce_the_books_example():
    rows = dict(va.kv_memory_rows("Llama 2 13B", 32, 2048))
    assert rows["MHA (every head its own KV)"] == pytest.approx(53.687091200)
    with pytest.raises(ValueError, match="preset must be one of"):
        va.kv_memory_rows("GPT-9", 1, 1)
    with pytest.raises(ValueError, match="dtype must be one of"):
        va.kv_memory_rows("Llama 2 13B", 1, 1, "fp64")
