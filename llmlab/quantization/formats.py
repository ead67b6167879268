"""Number formats: float/int/NF4 layouts, IEEE rounding, bit fields, the FP16/BF16/TF32 table (AI Engineering ch. 7)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from llmlab import validate as V
from llmlab.quantization.nf4 import NF4_CODEBOOK


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format: 1 sign bit, `exponent` bits, `mantissa` stored fraction bits."""

    name: str
    exponent: int
    mantissa: int
    has_inf: bool = True
    max_override: float | None = None

    @property
    def bits(self) -> int:
        """Total bits: sign + exponent + mantissa."""
        return 1 + self.exponent + self.mantissa

    @property
    def bias(self) -> int:
        """Exponent bias: 2**(exponent-1) - 1."""
        return 2 ** (self.exponent - 1) - 1

    @property
    def emin(self) -> int:
        """Smallest normal exponent."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Largest exponent of a finite value."""
        return 2 ** self.exponent - 2 - self.bias if self.has_inf else 2 ** self.exponent - 1 - self.bias

    @property
    def max(self) -> float:
        """Largest finite value."""
        if self.max_override is not None:
            return self.max_override
        return (2 - 2.0 ** -self.mantissa) * 2.0 ** self.emax


FLOAT_FORMATS: dict[str, FloatFormat] = {
    "fp32": FloatFormat("fp32", 8, 23),
    "tf32": FloatFormat("tf32", 8, 10),
    "fp16": FloatFormat("fp16", 5, 10),
    "bf16": FloatFormat("bf16", 8, 7),
    "fp8_e5m2": FloatFormat("fp8_e5m2", 5, 2),
    "fp8_e4m3": FloatFormat("fp8_e4m3", 4, 3, has_inf=False, max_override=448.0),
}
INT_FORMATS: dict[str, tuple[int, int]] = {"int8": (-128, 127), "int4": (-8, 7)}

FORMATS: tuple[str, ...] = (*FLOAT_FORMATS, *INT_FORMATS, "nf4")
ROUNDING_MODES = ("nearest", "truncate")
BOOK_VALUES = (1234.56789, 12345.6789, 123456.789, 1234567.89)


def _validate_format(fmt: str) -> None:
    """Reject unknown format names."""
    V.one_of("fmt", fmt, FORMATS)


def _validate_mode(mode: str) -> None:
    """Reject unknown rounding modes."""
    V.one_of("mode", mode, ROUNDING_MODES)


def format_info(fmt: str) -> dict:
    """Bit layout and range of a format: bits, sign/exponent/mantissa bits, max, smallest normal/subnormal."""
    _validate_format(fmt)
    if fmt in FLOAT_FORMATS:
        f = FLOAT_FORMATS[fmt]
        return {"name": fmt, "bits": f.bits, "sign": 1, "exponent": f.exponent, "mantissa": f.mantissa,
                "max": f.max, "min_normal": 2.0 ** f.emin, "min_subnormal": 2.0 ** (f.emin - f.mantissa),
                "epsilon": 2.0 ** -f.mantissa, "levels": None}
    if fmt in INT_FORMATS:
        lo, hi = INT_FORMATS[fmt]
        return {"name": fmt, "bits": int(math.log2(hi - lo + 1)), "sign": 1, "exponent": 0, "mantissa": None,
                "max": float(hi), "min_normal": None, "min_subnormal": None, "epsilon": 1.0, "levels": hi - lo + 1}
    return {"name": fmt, "bits": 4, "sign": None, "exponent": None, "mantissa": None, "max": 1.0,
            "min_normal": None, "min_subnormal": None, "epsilon": None, "levels": 16}


def _round_float(a: np.ndarray, f: FloatFormat, mode: str) -> np.ndarray:
    """Round non-negative finite magnitudes to format f (IEEE semantics, subnormals included)."""
    _, k = np.frexp(a)
    e = np.maximum(k.astype(np.int64) - 1, f.emin)
    step = np.ldexp(1.0, e - f.mantissa)
    units = a / step
    out = (np.round(units) if mode == "nearest" else np.floor(units)) * step
    overflow = np.inf if (mode == "nearest" and f.has_inf) else f.max
    return np.where(out > f.max, overflow, out)


def round_to_format(x, fmt: str, mode: str = "nearest"):
    """The value(s) nearest to x representable in fmt ('nearest': ties to even; 'truncate': toward zero).

    Floats follow IEEE 754: round-to-nearest overflows to inf, rounding toward zero saturates at the largest
    finite value; fp8_e4m3 has no inf and saturates at ±448 (as torch's float8_e4m3fn cast does). int8/int4 round
    to the nearest integer and clamp; nf4 returns the nearest of its 16 levels in [-1, 1].
    """
    _validate_format(fmt)
    _validate_mode(mode)
    arr = np.asarray(x, dtype=np.float64)
    if fmt in INT_FORMATS:
        lo, hi = INT_FORMATS[fmt]
        out = np.clip(np.round(arr) if mode == "nearest" else np.trunc(arr), lo, hi)
    elif fmt == "nf4":
        book = NF4_CODEBOOK.double().numpy()
        clipped = np.clip(arr, -1.0, 1.0)
        idx = np.abs(clipped[..., None] - book).argmin(-1)
        if mode == "truncate":
            idx = np.where(book[idx] * np.sign(clipped) > np.abs(clipped), idx - np.sign(clipped).astype(int), idx)
        out = book[idx]
    else:
        f = FLOAT_FORMATS[fmt]
        mag = np.abs(arr)
        finite = np.isfinite(mag)
        rounded = _round_float(np.where(finite, mag, 0.0), f, mode)
        big = np.inf if f.has_inf else np.nan
        out = np.copysign(np.where(finite, rounded, np.where(np.isnan(mag), np.nan, big)), arr)
    return float(out) if out.ndim == 0 else out


def bit_fields(x: float, fmt: str, mode: str = "nearest") -> tuple[str, str, str]:
    """Sign, exponent and mantissa bit strings of x after rounding it to a float format."""
    if fmt not in FLOAT_FORMATS:
        raise ValueError(f"fmt must be one of the float formats {list(FLOAT_FORMATS)}, got {fmt!r}")
    f = FLOAT_FORMATS[fmt]
    v = round_to_format(float(x), fmt, mode)
    sign = "1" if math.copysign(1.0, v) < 0 else "0"
    a = abs(v)
    ones = "1" * f.exponent
    if math.isnan(v):
        return sign, ones, "1" * f.mantissa
    if math.isinf(v):
        return sign, ones, "0" * f.mantissa
    if a == 0:
        return sign, "0" * f.exponent, "0" * f.mantissa
    e = math.frexp(a)[1] - 1
    if e < f.emin:
        return sign, "0" * f.exponent, format(round(a / 2.0 ** (f.emin - f.mantissa)), f"0{f.mantissa}b")
    frac = round((a / 2.0 ** e - 1) * 2 ** f.mantissa)
    return sign, format(e + f.bias, f"0{f.exponent}b"), format(frac, f"0{f.mantissa}b")


def book_table(values: Sequence[float] = BOOK_VALUES, formats: Sequence[str] = ("fp16", "bf16", "tf32"),
               mode: str = "nearest") -> list[dict]:
    """Rows {'value': v, fmt: v rounded to fmt, ...}: the book's FP16/BF16/TF32 table."""
    _validate_mode(mode)
    for fmt in formats:
        _validate_format(fmt)
    return [{"value": float(v), **{fmt: round_to_format(float(v), fmt, mode) for fmt in formats}} for v in values]
