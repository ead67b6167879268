"""Weight-only quantized nn.Linear (int8 / packed int4, absmax or affine groups), model conversion, memory."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from llmlab.quantization.tensor import absmax_quantize, dequantize, minmax_quantize, pack_int4, unpack_int4, valid_bits

SCHEMES = ("absmax", "affine")


class QuantizedLinear(nn.Module):
    """A weight-only quantized nn.Linear: int8 or packed int4 codes with fp16 scales per row or per group.

    scheme 'absmax' is symmetric, w ≈ q·scale with q in [-(2^(b-1)-1), 2^(b-1)-1]; 'affine' uses all 2^b levels
    between each group's min and max, w ≈ q·scale + min with an fp16 min per group (GGUF's Q4_1 when b = 4 and the
    group is 32). The weight is dequantized on every forward (no fused kernel), so it saves memory, not time. Input
    widths that group_size does not divide are zero-padded to a multiple of it (counted in the footprint).
    """

    def __init__(self, linear: nn.Linear, bits: int = 8, group_size: int | None = None, scheme: str = "absmax"):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
        valid_bits(bits, (4, 8))
        if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
            raise ValueError(f"group_size must be None (per row) or a positive int, got {group_size!r}")
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {list(SCHEMES)}, got {scheme!r}")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.bits, self.scheme = bits, scheme
        self.group_size = group_size or self.in_features
        pad = (-self.in_features) % self.group_size
        if bits == 4 and (self.in_features + pad) % 2:
            raise ValueError(f"int4 packing needs an even padded input width, got {self.in_features + pad}")
        padded = F.pad(linear.weight.detach().float(), (0, pad))
        if scheme == "absmax":
            q, scale = absmax_quantize(padded, bits, "group", self.group_size)
            low = None
        else:  # codes 0..2^b-1 are stored shifted into the signed int8 range
            codes, scale, low = minmax_quantize(padded, bits, "group", self.group_size)
            q, low = (codes.to(torch.int16) - 2 ** (bits - 1)).to(torch.int8), low.to(torch.float16)
        self.register_buffer("qweight", pack_int4(q) if bits == 4 else q)
        self.register_buffer("scale", scale.to(torch.float16))
        self.register_buffer("low", low)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 weight (out_features, in_features) these codes represent."""
        q = (unpack_int4(self.qweight) if self.bits == 4 else self.qweight).view(self.out_features, -1)
        if self.low is None:
            w = dequantize(q, self.scale)
        else:  # stored shifted into int8: shift back to the codes 0..2^b-1 of minmax_quantize
            w = dequantize(q.to(torch.int16) + 2 ** (self.bits - 1), self.scale, low=self.low)
        return w[:, : self.in_features]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x @ W.T + b with W dequantized to x's dtype."""
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.dequantized_weight().to(x.dtype), bias)

    def extra_repr(self) -> str:
        """Shape, bits and group size for print(model)."""
        return (f"in={self.in_features}, out={self.out_features}, bits={self.bits}, group_size={self.group_size}, "
                f"scheme={self.scheme}")


def quantize_model(model: nn.Module, bits: int = 8, group_size: int | None = None,
                   skip: Sequence[str] = ("lm_head",), scheme: str = "absmax") -> nn.Module:
    """Replace every nn.Linear (except names ending in `skip`) by a QuantizedLinear, in place; returns model."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    valid_bits(bits, (4, 8))
    targets = [(name, m) for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and not any(name.endswith(s) for s in skip)]
    for name, linear in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, QuantizedLinear(linear, bits, group_size, scheme))
    return model


def memory_footprint(model: nn.Module) -> int:
    """Bytes held by a model's parameters and buffers (shared tensors once), including bitsandbytes' scales."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    seen: set[int] = set()
    total = 0

    def add(t) -> None:
        nonlocal total
        if isinstance(t, torch.Tensor) and t.numel() and t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()

    for p in [*model.parameters(), *model.buffers()]:
        add(p)
        add(getattr(p, "SCB", None))
        state = getattr(p, "quant_state", None)
        if state is not None:
            add(getattr(state, "absmax", None))
            add(getattr(state, "code", None))
            nested = getattr(state, "state2", None)
            if nested is not None:
                add(nested.absmax)
                add(nested.code)
    return total
