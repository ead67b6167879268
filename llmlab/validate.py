"""Argument checks shared by every public function: TypeError for a wrong type, ValueError for a wrong value.

Each message names the parameter, the allowed range and the value received, e.g.
``top_p must be in (0, 1], got 1.5``. Check once, at the public boundary, never inside a per-token loop.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import torch


def _type_name(value: Any) -> str:
    """A short description of a value's type for error messages."""
    return type(value).__name__


def integer(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """An int (not a bool) in [low, high] (either bound may be None); returns it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {_type_name(value)} {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf)" if high is None else f"{high}]"
        raise ValueError(f"{name} must be an int in [{lo}, {hi}, got {value!r}")
    return value


def positive_int(name: str, value: Any) -> int:
    """An int >= 1; returns it."""
    return integer(name, value, low=1)


def number(name: str, value: Any, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number (int or float, not bool) in the interval given; returns it as float.

    Bounds are closed unless low_open/high_open; a None bound is unbounded. NaN is always rejected.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {_type_name(value)} {value!r}")
    x = float(value)
    too_low = low is not None and (x <= low if low_open else x < low)
    too_high = high is not None and (x >= high if high_open else x > high)
    unbounded_inf = math.isinf(x) and (low is None or high is None) and not (too_low or too_high)
    if math.isnan(x) or too_low or too_high or unbounded_inf:
        left = "(" if (low is None or low_open) else "["
        right = ")" if (high is None or high_open) else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(f"{name} must be in {left}{lo}, {hi}{right}, got {value!r}")
    return x


def probability(name: str, value: Any, open_low: bool = False, open_high: bool = False) -> float:
    """A number in [0, 1] (ends open when asked); returns it as float."""
    return number(name, value, 0.0, 1.0, low_open=open_low, high_open=open_high)


def one_of(name: str, value: Any, options: Iterable[Any]) -> Any:
    """A value that is one of `options`; returns it."""
    allowed = list(options)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def text(name: str, value: Any, allow_empty: bool = False) -> str:
    """A str, non-empty (after stripping whitespace) unless allow_empty; returns it."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {_type_name(value)} {value!r:.60}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{name} must be a non-empty str, got {value!r}")
    return value


def non_empty(name: str, value: Any) -> Sequence:
    """A list/tuple (or other sized sequence, not a str) with at least one item; returns it."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or not hasattr(value, "__getitem__"):
        raise TypeError(f"{name} must be a list or tuple, got {_type_name(value)}")
    if len(value) == 0:
        raise ValueError(f"{name} must have at least one item, got an empty {_type_name(value)}")
    return value


def same_length(names: tuple[str, str], a: Sequence, b: Sequence) -> None:
    """Raise ValueError unless two sequences have the same length."""
    if len(a) != len(b):
        raise ValueError(f"{names[0]} and {names[1]} must have the same length, got {len(a)} and {len(b)}")


def tensor(name: str, value: Any, dims: int | Sequence[int] | None = None, floating: bool = False,
           allow_empty: bool = False) -> torch.Tensor:
    """A torch.Tensor, optionally floating-point, with `dims` dimensions (an int or allowed ints); returns it."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {_type_name(value)}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if dims is not None:
        allowed = (dims,) if isinstance(dims, int) else tuple(dims)
        if value.dim() not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must be a {want}-d tensor, got shape {tuple(value.shape)}")
    if not allow_empty and value.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(value.shape)}")
    return value


def float_tensor(name: str, value: Any, dims: int | Sequence[int] | None = None) -> torch.Tensor:
    """A non-empty floating-point torch.Tensor (with `dims` dimensions if given); returns it."""
    return tensor(name, value, dims=dims, floating=True)


def token_ids(name: str, value: Any) -> torch.Tensor:
    """A (batch, seq) integer tensor of token ids with seq >= 1; returns it."""
    t = tensor(name, value, dims=2)
    if t.is_floating_point() or t.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor of token ids, got dtype {t.dtype}")
    return t


def finite(name: str, value: torch.Tensor, allow_neg_inf: bool = False) -> torch.Tensor:
    """A tensor with no NaN or +inf, and no -inf unless allow_neg_inf; returns it.

    allow_neg_inf is for logits, where -inf is the mask of a removed token: NaN and +inf are still rejected, and
    every row along the last axis must keep one finite value (an all -inf row has no distribution). One reduction
    on the fast path, so a per-call check stays cheap.
    """
    tensor(name, value, allow_empty=True)
    if value.numel() == 0 or not value.is_floating_point():
        return value
    head = value.amax(dim=-1) if allow_neg_inf and value.dim() else value  # amax propagates NaN and +inf
    if bool(torch.isfinite(head).all()):
        return value
    n_nan, n_pos = int(value.isnan().sum()), int(value.isposinf().sum())
    n_neg = 0 if allow_neg_inf else int(value.isneginf().sum())
    if n_nan or n_pos or n_neg:
        allowed = "finite values or -inf (a mask)" if allow_neg_inf else "finite values"
        found = ", ".join(f"{n} {what}" for n, what in ((n_nan, "NaN"), (n_pos, "+inf"), (n_neg, "-inf")) if n)
        raise ValueError(f"{name} must hold only {allowed}, got {found} among {value.numel()} values")
    rows = [tuple(r) for r in (~torch.isfinite(head)).nonzero().tolist()]
    where = "only -inf values" if head.dim() == 0 else f"{len(rows)} row(s) of only -inf, the first at {rows[0]}"
    raise ValueError(f"{name} must keep at least one finite value in each row along the last axis, got {where}")
