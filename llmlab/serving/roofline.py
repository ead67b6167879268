"""The roofline: attainable FLOP/s = min(peak, bandwidth × arithmetic intensity), on book and measured hardware."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from llmlab import models, validate
from llmlab.serving.timing import time_calls


@dataclass(frozen=True)
class Hardware:
    """A chip's peak compute per number format (FLOP/s, dense) and its memory bandwidth (bytes/s)."""

    name: str
    bandwidth: float
    peak_flops: dict[str, float] = field(default_factory=dict)
    source: str = ""

    def ridge_point(self, dtype: str) -> float:
        """Arithmetic intensity (FLOP/byte) where the memory roof meets the compute roof for `dtype`."""
        return ridge_point(self.peak(dtype), self.bandwidth)

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s for a number format."""
        return self.peak_flops[validate.one_of("dtype", dtype, self.peak_flops)]


# AI Engineering (Huyen), chapter 9, reproduces NVIDIA's H100 SXM sheet. Its TF32/BF16/FP16/FP8 tensor-core
# figures (989, 1,979, 1,979, 3,958 TFLOPS) are *with 2:4 sparsity*; dense throughput is half of each.
H100_SXM_SHEET_TFLOPS = {"fp64": 34, "fp64 tensor": 67, "fp32": 67, "tf32 (sparse)": 989, "bf16 (sparse)": 1979,
                         "fp16 (sparse)": 1979, "fp8 (sparse)": 3958}
H100_SXM = Hardware(
    name="H100 SXM",
    bandwidth=3.35e12,
    peak_flops={"fp64": 34e12, "fp32": 67e12, "tf32": 989e12 / 2, "bf16": 1979e12 / 2, "fp16": 1979e12 / 2,
                "fp8": 3958e12 / 2},
    source="AI Engineering ch. 9 (NVIDIA H100 SXM sheet); tensor-core figures halved: the sheet's are with sparsity",
)
A100_80GB = Hardware(
    name="A100 80GB", bandwidth=2e12, peak_flops={"fp32": 19.5e12, "tf32": 156e12, "bf16": 312e12, "fp16": 312e12},
    source="NVIDIA A100 sheet (dense); the 2 TB/s bandwidth is the figure AI Engineering ch. 9 uses for MBU",
)


def ridge_point(peak_flops: float, bandwidth: float) -> float:
    """Intensity (FLOP/byte) at which a kernel stops being memory-bound: peak FLOP/s ÷ bytes/s.

    >>> ridge_point(peak_flops=100e9, bandwidth=25e9)
    4.0
    """
    validate.number("peak_flops", peak_flops, 0, low_open=True)
    validate.number("bandwidth", bandwidth, 0, low_open=True)
    return peak_flops / bandwidth


def attainable_flops(intensity: float, peak_flops: float, bandwidth: float) -> float:
    """The roofline: min(peak FLOP/s, bandwidth (bytes/s) × arithmetic intensity (FLOP/byte)).

    >>> [attainable_flops(i, peak_flops=100e9, bandwidth=25e9) / 1e9 for i in (1.0, 10.0)]
    [25.0, 100.0]
    """
    validate.number("intensity", intensity, 0, low_open=True)
    validate.number("peak_flops", peak_flops, 0, low_open=True)
    validate.number("bandwidth", bandwidth, 0, low_open=True)
    return min(peak_flops, bandwidth * intensity)


def matmul_flops(m: int, n: int, k: int) -> int:
    """FLOPs of an (m, k) @ (k, n) matmul: 2 per multiply-accumulate, m × n × k of them.

    >>> matmul_flops(2, 3, 4)
    48
    """
    for name, value in (("m", m), ("n", n), ("k", k)):
        validate.positive_int(name, value)
    return 2 * m * n * k


def matmul_bytes(m: int, n: int, k: int, bytes_per_value: float) -> float:
    """Bytes an (m, k) @ (k, n) matmul must move at least: read both inputs, write the (m, n) output."""
    validate.number("bytes_per_value", bytes_per_value, 0, low_open=True)
    return (m * k + k * n + m * n) * bytes_per_value


def matmul_intensity(m: int, n: int, k: int, bytes_per_value: float) -> float:
    """Arithmetic intensity (FLOP/byte) of an (m, k) @ (k, n) matmul: 2mnk ÷ ((mk + kn + mn) × bytes)."""
    return matmul_flops(m, n, k) / matmul_bytes(m, n, k, bytes_per_value)


def forward_intensity(params: int, tokens: int, bytes_per_param: float, kv_bytes: float = 0.0) -> float:
    """FLOP/byte of one forward pass over `tokens` tokens: 2 × params × tokens ÷ (weights + KV cache read).

    A decode step of batch B has tokens = B; a prefill of a prompt of length s has tokens = s. Activations are
    left out (small next to the weights at these sizes).
    """
    validate.positive_int("params", params)
    validate.positive_int("tokens", tokens)
    validate.number("bytes_per_param", bytes_per_param, 0, low_open=True)
    validate.number("kv_bytes", kv_bytes, 0)
    return 2 * params * tokens / (params * bytes_per_param + kv_bytes)


@torch.inference_mode()
def measure_bandwidth(megabytes: int = 256, repeats: int = 5, device: str | torch.device = "cpu") -> float:
    """Bytes/s reading an fp32 matrix of `megabytes` MB in a matrix-vector product (a decode step's access pattern)."""
    validate.positive_int("megabytes", megabytes)
    validate.positive_int("repeats", repeats)
    cols = 2048
    rows = megabytes * 10**6 // (4 * cols)
    weight = torch.randn(rows, cols, device=device).t().contiguous().t()  # input-major, as llmlab.attention stores
    x = torch.randn(1, cols, device=device)
    sync = models.synchronizer(device)

    def run():
        F.linear(x, weight)
        sync()
    return weight.numel() * 4 / time_calls(run, repeats, warmup=1).best


@torch.inference_mode()
def measure_matmul_flops(n: int = 1024, repeats: int = 5, dtype: torch.dtype = torch.float32,
                         device: str | torch.device = "cpu") -> float:
    """FLOP/s of an (n, n) @ (n, n) matmul in `dtype` (the compute roof this machine reaches in practice)."""
    validate.positive_int("n", n)
    validate.positive_int("repeats", repeats)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = models.synchronizer(device)

    def run():
        a @ b
        sync()
    return matmul_flops(n, n, n) / time_calls(run, repeats, warmup=1).best


def measure_machine(device: str | torch.device = "cpu", megabytes: int = 256, n: int = 1024) -> Hardware:
    """This machine's roofline, measured now with two short microbenchmarks (fp32 matmul, matrix-vector read)."""
    name = "this machine (" + str(torch.device(device)) + f", {torch.get_num_threads()} threads)"
    return Hardware(name=name, bandwidth=measure_bandwidth(megabytes, device=device),
                    peak_flops={"fp32": measure_matmul_flops(n, device=device)},
                    source="measured in this run: fp32 matmul FLOP/s and matrix-vector read bandwidth")
