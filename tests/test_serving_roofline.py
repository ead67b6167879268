"""llmlab.serving.roofline: the roofline formula, matmul intensity, book hardware, short microbenchmarks."""

import pytest

from llmlab.serving import roofline as R


def test_attainable_is_the_lower_roof():
    assert R.attainable_flops(1.0, peak_flops=100.0, bandwidth=10.0) == 10.0
    assert R.attainable_flops(50.0, peak_flops=100.0, bandwidth=10.0) == 100.0
    assert R.ridge_point(100.0, 10.0) == 10.0
    assert R.attainable_flops(R.ridge_point(100.0, 10.0), 100.0, 10.0) == 100.0


def test_matmul_intensity_counts_two_flops_per_mac_and_the_output_write():
    assert R.matmul_flops(2, 3, 4) == 48
    assert R.matmul_bytes(2, 3, 4, 2) == (8 + 12 + 6) * 2
    assert R.matmul_intensity(1024, 1024, 1024, 4) == pytest.approx(2 * 1024 / (3 * 4))
    # a matrix-vector product (decode at batch 1) is about 1 FLOP per 2 bytes in fp16, whatever the size
    assert R.matmul_intensity(1, 8192, 8192, 2) == pytest.approx(1.0, rel=1e-3)


def test_forward_intensity_grows_with_tokens():
    one, sixteen = R.forward_intensity(1000, 1, 4), R.forward_intensity(1000, 16, 4)
    assert one == pytest.approx(0.5) and sixteen == pytest.approx(8.0)
    assert R.forward_intensity(1000, 1, 4, kv_bytes=4000) == pytest.approx(0.25)


def test_h100_dense_is_half_the_sparse_sheet_and_ridge_points():
    assert R.H100_SXM.peak("bf16") == pytest.approx(R.H100_SXM_SHEET_TFLOPS["bf16 (sparse)"] * 1e12 / 2)
    assert R.H100_SXM.peak("fp8") == pytest.approx(1979e12)
    assert R.H100_SXM.ridge_point("bf16") == pytest.approx(989.5e12 / 3.35e12)
    with pytest.raises(ValueError, match="dtype must be one of"):
        R.H100_SXM.peak("int3")


def test_microbenchmarks_return_plausible_rates():
    hw = R.measure_machine(megabytes=8, n=128)
    assert 1e8 < hw.bandwidth < 1e13 and 1e7 < hw.peak("fp32") < 1e15


@pytest.mark.parametrize("call, match", [
    (lambda: R.attainable_flops(0, 1, 1), "intensity"),
    (lambda: R.ridge_point(1, -2), "bandwidth"),
    (lambda: R.matmul_intensity(0, 1, 1, 2), "m must be"),
    (lambda: R.matmul_intensity(1, 1, 1, 0), "bytes_per_value"),
    (lambda: R.measure_bandwidth(0), "megabytes"),
])
def test_bad_input_names_the_parameter(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
