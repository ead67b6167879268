"""Weights prepacked for the CPU kernel library: the matrix products a decode step runs, with no per-call reorder.

A bf16 `F.linear` on CPU hands its weight to oneDNN, which first copies it into the blocked layout its AMX
kernels read, on every call. Prepacking does that copy once (what `torch.compile`'s freezing pass does for CPU
linears). On this kit's CPU a batch-1 bf16 product gets 1.5-1.9x faster (bf16 decode +20% tokens/s), with results
bit-identical to F.linear for up to `MAX_ROWS` rows (tests/test_prepack.py); longer inputs (a prefill) take the
plain path, whose blocking differs. Only bf16 on a CPU with AMX tiles is packed: the configuration measured
(benchmarks/bench_decode.py); elsewhere `linear` is `F.linear`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.weak import WeakIdKeyDictionary

# rows (tokens x batch) up to which the packed product equals F.linear bit for bit on the measured CPU (33+ differ)
MAX_ROWS = 16
_PACKED: WeakIdKeyDictionary = WeakIdKeyDictionary()  # weight -> (its version when packed, packed copy)


def supported(weight: torch.Tensor) -> bool:
    """Whether `pack` would prepack this weight: a 2-D bf16 CPU matrix, on a CPU with AMX and oneDNN bf16."""
    return (isinstance(weight, torch.Tensor) and weight.dim() == 2 and weight.dtype == torch.bfloat16
            and weight.device.type == "cpu" and torch.backends.mkldnn.is_available()
            and torch.cpu._is_amx_tile_supported() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _version(weight: torch.Tensor) -> int | None:
    """The tensor's in-place edit counter (None for inference tensors, which keep none)."""
    return None if weight.is_inference() else weight._version


def pack(weight: torch.Tensor) -> torch.Tensor:
    """The (out, in) weight itself, with a prepacked copy registered for `linear` where `supported`.

    >>> w = torch.randn(8, 4)
    >>> pack(w) is w
    True
    """
    if supported(weight):
        _PACKED[weight] = (_version(weight), torch.ops.mkldnn._reorder_linear_weight(weight.detach(), 1))
    return weight


def _packed_copy(weight: torch.Tensor) -> torch.Tensor | None:
    """The weight's prepacked copy if one was registered and the weight was not edited since, else None."""
    entry = _PACKED.get(weight)
    return entry[1] if entry is not None and entry[0] == _version(weight) else None


def is_packed(weight: torch.Tensor) -> bool:
    """Whether `linear` will read a prepacked copy of this weight (registered and not edited since)."""
    return _packed_copy(weight) is not None


def linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x @ weight.T, like F.linear(x, weight): through the prepacked copy for a packed weight and <= MAX_ROWS rows.

    >>> x, w = torch.randn(2, 4), torch.randn(3, 4)
    >>> torch.equal(linear(x, w), F.linear(x, w))
    True
    """
    packed = _packed_copy(weight) if x.dtype == weight.dtype and x.numel() <= MAX_ROWS * x.shape[-1] else None
    if packed is None:
        return F.linear(x, weight)
    return torch.ops.mkldnn._linear_pointwise(x.contiguous(), packed, None, "none", [None], "")
