"""What "lossless" means when the target runs in bf16, measured: pass-shape rounding error and near-tie divergences.

In exact arithmetic greedy speculative decoding returns the target's greedy tokens. In floating point a pass over
k new tokens and k one-token passes sum in different orders, so their logits differ by a rounding error ε. In
float32/float64 ε is far below any margin between the top two logits, and the outputs are identical. In bf16
(8 significant bits) ε is large enough that, where the top two logits are within 2ε (a *near-tie*), the two pass
shapes can pick different tokens. The kit's definition, tested in tests/test_speculative_lossless.py:

    lossless = identical greedy output in float32 and float64, and in bf16 every divergence from the target's own
    plain decoding starts at a near-tie: top-2 margin (plain token minus the speculative token) <= 2 ε.

The same batch-shape non-determinism hits production servers: a request's logits depend on how many tokens
share its pass (continuous batching, chunked prefill), so bf16 greedy output can change with server load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass, replace

import torch

from llmlab import validate
from llmlab.attention import LlamaWeights, forward
from llmlab.kv_cache import KVCache


def cast_weights(w: LlamaWeights, dtype: torch.dtype) -> LlamaWeights:
    """The same model with every floating tensor in `dtype` (the head's two layouts stay one pair)."""
    if not isinstance(w, LlamaWeights):
        raise TypeError(f"w must be llmlab.attention.LlamaWeights, got {type(w).__name__}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype (torch.float32, torch.bfloat16, ...), got {dtype!r}")

    def cast(value):
        if isinstance(value, torch.Tensor):
            return value.to(dtype) if value.is_floating_point() else value
        if isinstance(value, list):
            return [cast(v) for v in value]
        if is_dataclass(value):
            return replace(value, **{f.name: cast(getattr(value, f.name)) for f in fields(value)})
        return value

    out = replace(w, **{f.name: cast(getattr(w, f.name)) for f in fields(w) if f.name != "head_rows"})
    if w.head_rows is None or w.head_rows[0] is not w.lm_head:
        return replace(out, head_rows=None)
    return replace(out, head_rows=(out.lm_head, cast(w.head_rows[1])))


@torch.inference_mode()
def pass_shape_error(w: LlamaWeights, ids: torch.Tensor, k: int) -> float:
    """Largest |logit difference| over the last k positions of ids (1, seq): one k-token pass vs k one-token passes."""
    validate.token_ids("ids", ids)
    validate.integer("k", k, low=1, high=ids.shape[1] - 1)
    prefix = ids.shape[1] - k
    cache = KVCache.for_weights(w, 1, ids.shape[1])
    forward(w, ids[:, :prefix], cache)
    wide = forward(w, ids[:, prefix:], cache)[0].float()
    cache.truncate(prefix)
    narrow = torch.cat([forward(w, ids[:, i:i + 1], cache)[0] for i in range(prefix, ids.shape[1])]).float()
    return float((wide - narrow).abs().max())


def first_divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    """First index where two token lists differ (a shorter list differs where it ends); None if equal."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


@dataclass(frozen=True)
class Divergence:
    """Where a speculative output first left the plain one, and the plain pass's margin between the two tokens."""

    position: int
    plain_token: int
    spec_token: int
    margin: float
    tolerance: float

    @property
    def near_tie(self) -> bool:
        """Whether the two tokens were within rounding error of each other (margin <= tolerance)."""
        return self.margin <= self.tolerance


@torch.inference_mode()
def divergence(w: LlamaWeights, prompt: torch.Tensor, plain: Sequence[int], spec: Sequence[int],
               tolerance: float) -> Divergence | None:
    """The first divergence of spec from plain (new tokens after prompt (1, seq)) and plain's logit margin there."""
    validate.token_ids("prompt", prompt)
    validate.number("tolerance", tolerance, low=0)
    at = first_divergence(plain, spec)
    if at is None or at >= min(len(plain), len(spec)):
        return None
    cache = KVCache.for_weights(w, 1, prompt.shape[1] + at + 1)
    logits = forward(w, prompt.to(w.embed.device), cache)[0, -1]  # the plain loop's prefill, then one token a pass
    for token in plain[:at]:
        logits = forward(w, torch.tensor([[token]], device=w.embed.device), cache)[0, -1]
    logits = logits.float()
    a, b = int(plain[at]), int(spec[at])
    return Divergence(at, a, b, float(logits[a] - logits[b]), tolerance)
