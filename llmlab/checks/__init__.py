"""Learner-callable exercise checks (one module per chapter) and the helper they are written with.

A check runs in well under a second on small inputs, explains a failure (which case, shape, dtype,
NaN, expected vs got) and prints one pass line. Use it as:

    with Check("Exercise 02.3 top_p_filter") as c:
        got = c.call(fn, logits, 0.9, case="top_p=0.9")
        c.close(got, expected, case="top_p=0.9")
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch

from llmlab.kit.exercises import NOT_STARTED, STUB_ERROR


class CheckFailed(AssertionError):
    """An exercise check failed; the message says which case and why."""

    def _render_traceback_(self) -> list[str]:
        """Show only the message in Jupyter, not a traceback into llmlab."""
        return [f"\x1b[31m✘ {self}\x1b[0m"]


def device_hint() -> str:
    """A note added to a failure when the learner opted into Apple's MPS (the checks are proven on CPU)."""
    from llmlab.models import device

    try:
        opted_in = device().type == "mps"
    except ValueError:
        return ""
    return (" [note: you set LLMLAB_DEVICE=mps, and this check was proven on CPU: before you change your answer, "
            "run %env LLMLAB_DEVICE=cpu, then the notebook again from the top]") if opted_in else ""


def _is_scalar_array(value: Any) -> bool:
    """Whether value is a one-element tensor or numpy array/scalar."""
    if isinstance(value, torch.Tensor):
        return value.numel() == 1
    return isinstance(value, (np.ndarray, np.generic)) and value.size == 1


class Check:
    """Collects the cases of one exercise check; prints a pass line when all pass."""

    def __init__(self, title: str):
        self.title = title
        self.cases: list[str] = []

    def __enter__(self) -> "Check":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            print(f"✔ {self.title}: passed ({len(set(self.cases))} cases)")
        return False

    def fail(self, case: str, message: str) -> None:
        """Raise CheckFailed for one case."""
        raise CheckFailed(f"{self.title} — case {case}: {message}{device_hint()}")

    def call(self, fn: Callable, *args, case: str, **kwargs) -> Any:
        """Call the learner's function, turning a stub or a crash into a clear failure."""
        if not callable(fn):
            self.fail(case, f"expected a function, got {type(fn).__name__}")
        try:
            return fn(*args, **kwargs)
        except STUB_ERROR:
            self.fail(case, NOT_STARTED)
        except CheckFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - any learner error is reported as a failed case
            self.fail(case, f"your function raised {type(exc).__name__}: {exc}")

    def that(self, condition: bool, case: str, message: str) -> None:
        """Fail with `message` unless condition holds."""
        self.cases.append(case)
        if not condition:
            self.fail(case, message)

    def equal(self, got: Any, expected: Any, case: str) -> None:
        """Exact equality for ints, strings, lists and other plain values."""
        self.cases.append(case)
        if type(expected) in (int, float) and _is_scalar_array(got):
            got = got.item()
        if got != expected:
            self.fail(case, f"expected {expected!r}, got {got!r}")

    def close(self, got: Any, expected: Any, case: str, atol: float = 1e-5, rtol: float = 1e-4,
              check_dtype: bool = False) -> None:
        """Numeric closeness for scalars, numpy arrays and tensors, with shape/dtype/NaN diagnostics."""
        self.cases.append(case)
        if isinstance(expected, (int, float)):
            if not isinstance(got, (int, float, np.number)) and not _is_scalar_array(got):
                self.fail(case, f"expected a number, got {type(got).__name__}")
            value = float(got.item() if hasattr(got, "item") else got)
            if math.isnan(value):
                self.fail(case, f"expected {expected!r}, got NaN")
            if not math.isclose(value, expected, rel_tol=rtol, abs_tol=atol):
                self.fail(case, f"expected {expected!r}, got {value!r} (difference {abs(value - expected):.3g})")
            return
        want_type = torch.Tensor if isinstance(expected, torch.Tensor) else np.ndarray
        if not isinstance(got, want_type):
            self.fail(case, f"expected a {want_type.__module__}.{want_type.__name__}, got {type(got).__name__}")
        if tuple(got.shape) != tuple(expected.shape):
            self.fail(case, f"shape: expected {tuple(expected.shape)}, got {tuple(got.shape)}")
        if check_dtype and got.dtype != expected.dtype:
            self.fail(case, f"dtype: expected {expected.dtype}, got {got.dtype}")
        g = np.asarray(got.detach().cpu().double() if isinstance(got, torch.Tensor) else got, dtype=np.float64)
        e = np.asarray(expected.detach().cpu().double() if isinstance(expected, torch.Tensor) else expected,
                       dtype=np.float64)
        if np.isnan(g).any() and not np.isnan(e).any():
            idx = tuple(int(i) for i in np.argwhere(np.isnan(g))[0])
            self.fail(case, f"got NaN at index {idx}")
        ok = np.isclose(g, e, atol=atol, rtol=rtol, equal_nan=True)
        if not ok.all():
            idx = tuple(int(i) for i in np.argwhere(~ok)[0])
            diff = np.where(ok, 0.0, np.abs(np.nan_to_num(g - e, nan=np.inf, posinf=np.inf, neginf=np.inf)))
            self.fail(case, f"{int((~ok).sum())} of {ok.size} values differ; first at index {idx}: "
                            f"expected {e[idx]:.6g}, got {g[idx]:.6g} (max abs difference {diff.max():.3g})")


class _Forbidden:
    """Stand-in for a library function the exercise asks the learner to write; calling it fails the case."""

    def __init__(self, check: "Check", case: str, name: str, hint: str):
        self.check, self.case, self.name, self.hint = check, case, name, hint

    def __call__(self, *args, **kwargs):
        self.check.fail(self.case, f"your function calls {self.name}, which this exercise asks you to write "
                                   f"yourself ({self.hint})")


def _resolve(path: str) -> tuple[Any, str]:
    """The object owning a dotted attribute ('torch.Tensor.softmax' -> (torch.Tensor, 'softmax'))."""
    import importlib

    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:-1]:
            owner = getattr(owner, attr)
        return owner, parts[-1]
    raise ValueError(f"cannot resolve {path!r}")


def call_forbidding(check: "Check", fn: Callable, *args, case: str, forbidden: Sequence[str], hint: str,
                    **kwargs) -> Any:
    """check.call(fn, ...) while the dotted library functions in `forbidden` fail the case when called."""
    saved = []
    try:
        for path in forbidden:
            owner, attr = _resolve(path)
            saved.append((owner, attr, getattr(owner, attr)))
            setattr(owner, attr, _Forbidden(check, case, path, hint))
        return check.call(fn, *args, case=case, **kwargs)
    finally:
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)
