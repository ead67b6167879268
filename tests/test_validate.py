"""The shared argument checks: right exception type, message naming parameter, range and value."""

from __future__ import annotations

import math

import pytest
import torch

from llmlab import validate as V


def test_integer_accepts_in_range_and_names_the_range():
    assert V.integer("n", 3, low=1, high=5) == 3
    with pytest.raises(ValueError, match=r"n must be an int in \[1, 5\], got 7"):
        V.integer("n", 7, low=1, high=5)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, inf\), got 0"):
        V.positive_int("k", 0)


@pytest.mark.parametrize("bad", [True, 2.0, "3", None])
def test_integer_rejects_non_ints_with_type_error(bad):
    with pytest.raises(TypeError, match="n must be an int"):
        V.integer("n", bad)


def test_number_bounds_open_and_closed():
    assert V.number("top_p", 1, 0, 1, low_open=True) == 1.0
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\], got 1.5"):
        V.number("top_p", 1.5, 0, 1, low_open=True)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\], got 0"):
        V.number("top_p", 0, 0, 1, low_open=True)
    with pytest.raises(ValueError, match=r"t must be in \[0, inf\)"):
        V.number("t", math.inf, low=0)
    with pytest.raises(ValueError, match="nan"):
        V.number("t", math.nan, low=0)
    with pytest.raises(TypeError, match="t must be a number, got bool"):
        V.number("t", True)
    assert V.probability("p", 0.0) == 0.0


def test_one_of_text_non_empty_same_length():
    assert V.one_of("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"mode must be one of \['a', 'b'\], got 'c'"):
        V.one_of("mode", "c", ("a", "b"))
    with pytest.raises(ValueError, match="prompt must be a non-empty str"):
        V.text("prompt", "   ")
    with pytest.raises(TypeError, match="prompt must be a str, got int"):
        V.text("prompt", 3)
    with pytest.raises(ValueError, match="items must have at least one item"):
        V.non_empty("items", [])
    with pytest.raises(TypeError, match="items must be a list or tuple, got str"):
        V.non_empty("items", "abc")
    with pytest.raises(ValueError, match="a and b must have the same length, got 1 and 2"):
        V.same_length(("a", "b"), [1], [1, 2])


def test_tensor_checks():
    x = torch.zeros(2, 3)
    assert V.float_tensor("x", x, dims=2) is x
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        V.float_tensor("x", [1.0])
    with pytest.raises(TypeError, match="x must be a floating-point tensor, got dtype torch.int64"):
        V.float_tensor("x", torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="x must be a 3-d tensor, got shape"):
        V.float_tensor("x", x, dims=3)
    with pytest.raises(ValueError, match="x must not be empty"):
        V.float_tensor("x", torch.zeros(0))
    with pytest.raises(TypeError, match="ids must be an integer tensor"):
        V.token_ids("ids", x)
    assert V.token_ids("ids", torch.ones(1, 4, dtype=torch.long)).shape == (1, 4)


def test_finite_rejects_nan_and_inf_and_allows_minus_inf_masks_only_when_asked():
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert V.finite("x", x) is x
    assert V.finite("ids", torch.tensor([1, 2])).tolist() == [1, 2]  # integers are always finite
    with pytest.raises(ValueError, match=r"x must hold only finite values, got 1 NaN, 1 \+inf among 4 values"):
        V.finite("x", torch.tensor([0.0, math.nan, math.inf, 1.0]))
    with pytest.raises(ValueError, match="x must hold only finite values, got 1 -inf among 2 values"):
        V.finite("x", torch.tensor([0.0, -math.inf]))
    masked = torch.tensor([[0.0, -math.inf], [-math.inf, 3.0]])
    assert V.finite("logits", masked, allow_neg_inf=True) is masked
    with pytest.raises(ValueError, match=r"logits must hold only finite values or -inf \(a mask\), got 1 NaN"):
        V.finite("logits", torch.tensor([[0.0, math.nan]]), allow_neg_inf=True)
    with pytest.raises(ValueError, match=r"got 1 row\(s\) of only -inf, the first at \(1,\)"):
        V.finite("logits", torch.tensor([[0.0, 1.0], [-math.inf, -math.inf]]), allow_neg_inf=True)
    with pytest.raises(ValueError, match="got only -inf values"):
        V.finite("logits", torch.tensor([-math.inf, -math.inf]), allow_neg_inf=True)
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        V.finite("x", [1.0])
