"""Chapter 04 views: format explorer rows, error histograms, memory vs perplexity."""

import math

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from llmlab import quantization as Q  # noqa: E402
from llmlab.viz import quantization as V  # noqa: E402


def test_rounding_rows_cover_every_format_and_fp16_overflow():
    rows = {r["format"]: r for r in V.rounding_rows(123456.789)}
    assert set(rows) == set(Q.FORMATS)
    assert math.isinf(rows["fp16"]["stored"]) and math.isinf(rows["fp16"]["rel_error"])
    assert rows["bf16"]["stored"] == 123392.0 and rows["bf16"]["bits"].count("|") == 2
    assert rows["int8"]["stored"] == 127.0 and rows["nf4"]["stored"] == 1.0
    assert rows["fp32"]["rel_error"] < 1e-7


def test_rounding_text_and_explorer_render():
    text = V.rounding_text(1234.56789, "truncate", formats=("fp16", "tf32"))
    assert "tf32" in text and "1234" in text and "truncate" in text
    w = V.format_explorer(0.1)
    assert w.children[0].value == 0.1 and w.children[1].value == "nearest"
    with pytest.raises(ValueError, match="value must be a real number"):
        V.rounding_rows(float("nan"))


def test_error_histograms_and_outlier_effect():
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(1024, generator=gen)
    spiked = g.clone()
    spiked[0] = 50.0
    errors = V.quantization_errors({"gaussian": g, "one outlier": spiked}, bits=4)
    rms = {k: float((v ** 2).mean() ** 0.5) for k, v in errors.items()}
    assert rms["one outlier"] > 3 * rms["gaussian"]
    fig = V.plot_error_histograms({"gaussian": g, "one outlier": spiked}, bits=4)
    assert len(fig.axes) == 2 and "RMS error" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="tensors must map at least one name"):
        V.quantization_errors({})


def test_memory_vs_perplexity_plot():
    rows = [Q.Row("fp32", 538e6, 10.0, 20.0, "a"), Q.Row("nf4", 166e6, 11.0, 9.0, "b"),
            Q.Row("skipped", None, None, None, None, "skipped: x")]
    fig = V.plot_memory_vs_perplexity(rows)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["fp32", "nf4"]
    with pytest.raises(ValueError, match="at least one measured row"):
        V.plot_memory_vs_perplexity(rows[2:])


def test_memory_vs_fidelity_plot_puts_fp32_on_the_log_axis_floor():
    rows = [Q.Fidelity("fp32", 17_700_000, 0.0, 1.0), Q.Fidelity("int8 (own)", 4_450_000, 0.0026, 0.97),
            Q.Fidelity("int4 g32 (own)", 2_500_000, 0.33, 0.66)]
    ax = V.plot_memory_vs_fidelity(rows).axes[0]
    assert [t.get_text() for t in ax.texts] == ["fp32 (100%)", "int8 (own) (97%)", "int4 g32 (own) (66%)"]
    assert ax.get_yscale() == "log" and 0 < ax.texts[0].xy[1] < 0.0026
    with pytest.raises(ValueError, match="at least one Fidelity row"):
        V.plot_memory_vs_fidelity([])
