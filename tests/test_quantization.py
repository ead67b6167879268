"""Number formats, quantizers, NF4, LLM.int8(), model-level quantization and the measured table."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from llmlab import evaluation
from llmlab import quantization as Q

# --- number formats -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16), ("fp32", torch.float32),
                                       ("fp8_e5m2", torch.float8_e5m2), ("fp8_e4m3", torch.float8_e4m3fn)])
def test_round_to_nearest_matches_torch_casts(fmt, dtype):
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(5000, generator=gen) * torch.logspace(-8, 5, 5000)).float()
    x = torch.cat([x, torch.tensor([0.0, -0.0, 65504.0, 65520.0, 1e6, 448.0, 500.0, 2.0 ** -24, 2.0 ** -25])])
    expected = x.to(dtype).double().numpy()
    got = Q.round_to_format(x.double().numpy(), fmt)
    np.testing.assert_array_equal(got, expected)


def test_book_table_fp16_overflows_and_tf32_truncation():
    nearest = {r["value"]: r for r in Q.book_table(mode="nearest")}
    truncated = {r["value"]: r for r in Q.book_table(mode="truncate")}
    assert nearest[1234.56789]["fp16"] == 1235.0
    assert nearest[1234.56789]["bf16"] == 1232.0
    assert math.isinf(nearest[123456.789]["fp16"]) and math.isinf(nearest[1234567.89]["fp16"])
    assert nearest[12345.6789]["fp16"] == 12344.0
    assert truncated[1234.56789]["tf32"] == 1234.0
    assert truncated[1234567.89]["tf32"] == 1233920.0
    assert nearest[1234567.89]["tf32"] == 1234944.0
    assert truncated[123456.789]["fp16"] == 65504.0  # IEEE round-toward-zero saturates


def test_format_info_ranges():
    assert Q.format_info("fp16")["max"] == 65504.0
    assert Q.format_info("bf16")["max"] == pytest.approx(3.3895e38, rel=1e-4)
    assert Q.format_info("fp8_e4m3")["max"] == 448.0 and Q.format_info("fp8_e5m2")["max"] == 57344.0
    assert Q.format_info("tf32")["bits"] == 19 and Q.format_info("fp16")["min_subnormal"] == 2.0 ** -24
    assert Q.format_info("int4")["max"] == 7.0 and Q.format_info("int8")["levels"] == 256
    assert Q.format_info("nf4")["levels"] == 16


def test_bit_fields_and_int_nf4_rounding():
    assert Q.bit_fields(1.0, "fp16") == ("0", "01111", "0000000000")
    assert Q.bit_fields(-2.5, "bf16") == ("1", "10000000", "0100000")
    assert Q.bit_fields(1e6, "fp16") == ("0", "11111", "0000000000")
    assert Q.bit_fields(2.0 ** -24, "fp16") == ("0", "00000", "0000000001")
    assert Q.round_to_format(200.4, "int8") == 127.0 and Q.round_to_format(-3.6, "int4") == -4.0
    assert Q.round_to_format(0.55, "nf4") == pytest.approx(0.5626170039176941)
    assert Q.round_to_format(0.55, "nf4", mode="truncate") == pytest.approx(0.44070982933044434)


@pytest.mark.parametrize("call,error", [
    (lambda: Q.round_to_format(1.0, "fp12"), "fmt must be one of"),
    (lambda: Q.round_to_format(1.0, "fp16", mode="up"), "mode must be one of"),
    (lambda: Q.bit_fields(1.0, "int8"), "fmt must be one of the float formats"),
])
def test_format_bad_input(call, error):
    with pytest.raises(ValueError, match=error):
        call()


# --- tensor quantizers --------------------------------------------------------------------------------------------

def test_absmax_per_tensor_known_values():
    x = torch.tensor([[0.5, -1.27, 0.0, 1.0]])
    q, scale = Q.absmax_quantize(x, 8)
    assert q.dtype == torch.int8 and scale.shape == ()
    assert q.tolist() == [[50, -127, 0, 100]]
    assert scale.item() == pytest.approx(0.01)
    torch.testing.assert_close(Q.dequantize(q, scale), x)


@pytest.mark.parametrize("granularity,group_size,scale_shape", [("tensor", None, ()), ("channel", None, (4, 1)),
                                                                 ("group", 8, (4, 4))])
def test_absmax_granularities_and_error_shrinks(granularity, group_size, scale_shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 32, generator=gen)
    q, scale = Q.absmax_quantize(x, 4, granularity, group_size)
    assert tuple(scale.shape) == scale_shape and q.abs().max() <= 7
    err = (Q.dequantize(q, scale) - x).abs()
    assert err.max() <= scale.max() / 2 + 1e-6


def test_finer_groups_reduce_error_with_an_outlier():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 64, generator=gen)
    x[0, 3] = 40.0
    errors = [(Q.quantize_dequantize(x, "absmax", 4, g, s) - x).pow(2).mean().item()
              for g, s in [("tensor", None), ("channel", None), ("group", 16)]]
    assert errors[0] > errors[1] > errors[2]


def test_zeropoint_round_trip_and_exact_zero():
    x = torch.tensor([[0.0, 1.0, 2.0, 3.0, 0.5]])
    q, scale, zp = Q.zeropoint_quantize(x, 8)
    assert q.dtype == torch.uint8 and zp.dtype == torch.int32
    assert int(q.min()) == 0 and int(q.max()) == 255 and int(zp) == 0
    back = Q.dequantize(q, scale, zp)
    assert back[0, 0].item() == 0.0
    assert (back - x).abs().max() <= scale / 2 + 1e-6


def test_zeropoint_beats_absmax_on_skewed_data():
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(16, 32, generator=gen) + 0.1  # all positive: absmax wastes the negative half
    e_abs = (Q.quantize_dequantize(x, "absmax", 4, "channel") - x).pow(2).mean()
    e_zp = (Q.quantize_dequantize(x, "zeropoint", 4, "channel") - x).pow(2).mean()
    assert e_zp < e_abs / 2


def test_int4_pack_round_trip():
    q = torch.arange(-8, 8, dtype=torch.int8).repeat(3, 2)
    packed = Q.pack_int4(q)
    assert packed.dtype == torch.uint8 and packed.shape == (3, 16)
    assert torch.equal(Q.unpack_int4(packed), q)


@pytest.mark.parametrize("call,exc,error", [
    (lambda: Q.absmax_quantize(torch.ones(4), bits=16), ValueError,
     r"bits must be one of \[2, 3, 4, 5, 6, 7, 8\], got 16"),
    (lambda: Q.absmax_quantize(torch.ones(4), bits=1), ValueError, "bits must be one of"),
    (lambda: Q.zeropoint_quantize(torch.ones(4), bits=4.0), TypeError, "bits must be an int, got float 4.0"),
    (lambda: Q.absmax_quantize(torch.ones(4), bits=True), TypeError, "bits must be an int, got bool True"),
    (lambda: Q.QuantizedLinear(nn.Linear(4, 4), bits="8"), TypeError, "bits must be an int, got str"),
    (lambda: Q.absmax_quantize(torch.ones(2, 10), 8, "group", 3), ValueError,
     r"group_size must divide the last dimension \(10\), got 3"),
    (lambda: Q.absmax_quantize(torch.ones(2, 10), 8, "group", None), ValueError, "group_size must be a positive int"),
    (lambda: Q.absmax_quantize(torch.ones(2, 10), 8, "group", 0), ValueError, "group_size must be a positive int"),
    (lambda: Q.absmax_quantize(torch.ones(2, 10), 8, "group", 2.5), TypeError, "group_size must be an int, got float"),
    (lambda: Q.dequantize(torch.ones(2, 4, dtype=torch.uint8), torch.ones(2, 1), [0, 0]), TypeError,
     "zero_point must be a torch.Tensor, got list"),
    (lambda: Q.dequantize(torch.ones(2, 4, dtype=torch.uint8), torch.ones(2, 1), torch.zeros(2)), ValueError,
     "zero_point must be a tensor shaped like scale"),
    (lambda: Q.absmax_quantize(torch.ones(2, 10), 8, "row"), ValueError, "granularity must be one of"),
    (lambda: Q.absmax_quantize(torch.ones(4, dtype=torch.int64)), TypeError,
     "x must be a floating-point tensor, got dtype torch.int64"),
    (lambda: Q.zeropoint_quantize([1.0, 2.0]), TypeError, "x must be a torch.Tensor, got list"),
    (lambda: Q.dequantize(torch.ones(4), torch.tensor(1.0)), TypeError, "q must be an integer torch.Tensor"),
    (lambda: Q.dequantize(torch.ones(2, 6, dtype=torch.int8), torch.ones(2, 4)), ValueError, "scale must have shape"),
    (lambda: Q.nf4_quantize(torch.ones(100), 64), ValueError, r"block_size must divide the number of values \(100\)"),
    (lambda: Q.nf4_nearest(torch.ones(3, dtype=torch.int8)), TypeError, "floating-point"),
    (lambda: Q.pack_int4(torch.ones(3, dtype=torch.int8)), ValueError, "must be even"),
    (lambda: Q.pack_int4(torch.full((2,), 9, dtype=torch.int8)), ValueError, r"in \[-8, 7\]"),
    (lambda: Q.quantize_dequantize(torch.ones(4), "gptq"), ValueError, "method must be one of"),
    (lambda: Q.llm_int8_matmul(torch.ones(2, 3), torch.ones(4, 5)), ValueError, "same in"),
    (lambda: Q.llm_int8_matmul(torch.ones(2, 3), torch.ones(4, 3), threshold=0), ValueError, "threshold must be"),
    (lambda: Q.nf4_codebook(0.3), ValueError, "offset must be in"),
])
def test_quantizer_bad_input(call, exc, error):
    with pytest.raises(exc, match=error):
        call()



@pytest.mark.parametrize("quantize", [Q.absmax_quantize, Q.zeropoint_quantize, Q.minmax_quantize,
                                      lambda x: Q.nf4_quantize(x, 4)])
@pytest.mark.parametrize("bad,found", [(math.nan, "1 NaN"), (math.inf, r"1 \+inf"), (-math.inf, "1 -inf")])
def test_quantizers_reject_non_finite_input(quantize, bad, found):
    x = torch.tensor([0.5, -1.0, bad, 2.0])
    with pytest.raises(ValueError, match=f"x must hold only finite values, got {found} among 4 values"):
        quantize(x)


def test_absmax_scale_stays_finite_on_finite_input():
    q, scale = Q.absmax_quantize(torch.tensor([[0.0, 0.0], [1.0, -127.0]]), granularity="channel")
    assert torch.isfinite(scale).all() and scale.flatten().tolist() == [1.0, 1.0]  # an all-zero row gets scale 1
    assert q[1].tolist() == [1, -127]

# --- NF4, double quantization, LLM.int8() -------------------------------------------------------------------------

def test_nf4_codebook_built_from_normal_quantiles_matches_qlora_table():
    torch.testing.assert_close(Q.nf4_codebook(), Q.NF4_CODEBOOK, atol=1e-6, rtol=0)
    assert Q.NF4_CODEBOOK[7] == 0 and Q.NF4_CODEBOOK[0] == -1 and Q.NF4_CODEBOOK[-1] == 1


def test_nf4_nearest_and_round_trip():
    x = torch.tensor([-1.0, -0.62, 0.0, 0.03, 0.55, 0.99])
    assert Q.nf4_nearest(x).tolist() == [0, 1, 7, 7, 13, 15]
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(4, 128, generator=gen)
    codes, absmax = Q.nf4_quantize(w, 64)
    assert codes.dtype == torch.uint8 and absmax.shape == (8,)
    back = Q.nf4_dequantize(codes, absmax)
    assert (back - w).abs().max() < 0.25 * absmax.max()


def test_nf4_matches_bitsandbytes_when_available():
    bnbf = pytest.importorskip("bitsandbytes.functional")
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(64, 128, generator=gen)
    packed, state = bnbf.quantize_4bit(w, blocksize=64, quant_type="nf4")
    theirs = bnbf.dequantize_4bit(packed, state)
    torch.testing.assert_close(Q.nf4_dequantize(*Q.nf4_quantize(w, 64)), theirs, atol=0, rtol=0)


def test_double_quantization_small_error_and_bits():
    gen = torch.Generator().manual_seed(0)
    _, absmax = Q.nf4_quantize(torch.randn(300 * 64, generator=gen), 64)
    q, scales, offset = Q.double_quantize(absmax, 256)
    assert q.dtype == torch.int8 and q.shape == absmax.shape and scales.numel() == 2
    back = Q.double_dequantize(q, scales, offset, 256)
    assert ((back - absmax).abs() / absmax).max() < 0.02


def test_llm_int8_outlier_split_fixes_the_error():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 64, generator=gen)
    x[:, 5] = 60.0
    w = torch.randn(32, 64, generator=gen) * 0.1
    exact = x @ w.T
    plain = (Q.int8_matmul(x, w) - exact).abs().max()
    split, mask = Q.llm_int8_matmul(x, w, threshold=6.0)
    assert mask.sum() == 1 and bool(mask[5])
    assert (split - exact).abs().max() < plain / 5


# --- model level --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits,group_size", [(8, None), (4, None), (4, 32), (4, 48)])
def test_quantized_linear_close_to_linear(bits, group_size):
    torch.manual_seed(0)
    linear = nn.Linear(64, 16)
    ql = Q.QuantizedLinear(linear, bits, group_size)
    x = torch.randn(3, 64)
    tol = 0.02 if bits == 8 else 0.3
    torch.testing.assert_close(ql(x), linear(x), atol=tol, rtol=0)
    assert ql.dequantized_weight().shape == (16, 64)


def test_quantize_model_tiny_memory_and_logits(tiny):
    model, tok = tiny
    ids = tok("hello world", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        ref = model(ids).logits
    before = Q.memory_footprint(model)
    for bits, group, tol in [(8, None, 0.05), (4, 32, 0.5)]:
        qm = Q.quantize_model(copy.deepcopy(model), bits, group)
        assert not any(isinstance(m, nn.Linear) for n, m in qm.named_modules() if n.endswith("proj"))
        assert isinstance(qm.lm_head, nn.Linear)
        assert Q.memory_footprint(qm) < before
        with torch.no_grad():
            assert (qm(ids).logits - ref).abs().max() < tol
    with pytest.raises(ValueError, match=r"bits must be one of \[4, 8\], got 2"):
        Q.quantize_model(copy.deepcopy(model), 2)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        Q.quantize_model("model")


def test_memory_footprint_counts_tied_weights_once(tiny):
    model, _ = tiny
    unique = {p.data_ptr(): p.numel() * p.element_size() for p in [*model.parameters(), *model.buffers()]}
    assert Q.memory_footprint(model) == sum(unique.values())


def test_perplexity_on_tiny(tiny):
    model, tok = tiny
    text = Q.eval_text()[:400]
    ppl = evaluation.perplexity(model, tok, text, window=64, max_tokens=200)
    assert 50 < ppl < 1000  # a random model over 259 byte tokens: near-uniform guesses
    with pytest.raises(ValueError, match=r"window must be an int in \[2, inf\), got 1"):
        evaluation.perplexity(model, tok, text, window=1)
    with pytest.raises(ValueError, match="text must be a non-empty str"):
        evaluation.perplexity(model, tok, "  ")


def test_eval_text_has_5000_tokens_and_int8_keeps_perplexity(real):
    model, tok = real
    text = Q.eval_text()
    assert len(tok(text, add_special_tokens=False)["input_ids"]) >= 5000
    fp32 = evaluation.perplexity(model, tok, text, window=256, max_tokens=256)
    int8 = evaluation.perplexity(Q.quantize_model(copy.deepcopy(model), 8), tok, text, window=256, max_tokens=256)
    assert 5 < fp32 < 100
    assert abs(int8 / fp32 - 1) < 0.02


def test_measure_table_rejects_unknown_rows():
    with pytest.raises(ValueError, match="rows must be a non-empty subset"):
        Q.measure_table(rows=["fp64"])


def test_measure_row_reports_a_failing_variant_as_skipped(tiny):
    model, tok = tiny
    row = Q.measure_row("q4_1 (gguf)", model, tok, "some text here", gguf_path=None)
    assert row.perplexity is None and row.note.startswith("skipped: ValueError: gguf_path must be given")


def test_measure_table_on_tiny_model(tiny):
    model, tok = tiny
    rows = Q.measure_table(rows=["fp32", "int8 (own)", "int4 g32 (own)"], text=Q.eval_text()[:300], window=64,
                           new_tokens=2, base=(model, tok))
    assert [r.name for r in rows] == ["fp32", "int8 (own)", "int4 g32 (own)"]
    assert rows[0].memory_bytes > rows[1].memory_bytes > rows[2].memory_bytes
    assert all(r.perplexity > 1 and r.tokens_per_second > 0 for r in rows)
    assert abs(rows[1].perplexity / rows[0].perplexity - 1) < 0.01


def test_fidelity_table_on_tiny_model(tiny):
    model, tok = tiny
    rows = Q.fidelity_table(model, tok, rows=["fp32", "int8 (own)", "int4 g128 (own)"], text=Q.eval_text()[:400],
                            max_tokens=64)
    fp32, int8, int4 = rows
    assert fp32.kl == pytest.approx(0.0, abs=1e-9) and fp32.top1_agreement == 1.0
    assert 0 < int8.kl < int4.kl and int4.top1_agreement <= int8.top1_agreement <= 1.0
    assert fp32.layer_bytes > int8.layer_bytes > int4.layer_bytes
    with pytest.raises(ValueError, match="rows must be a non-empty subset"):
        Q.fidelity_table(model, tok, rows=["nf4 (bitsandbytes)"])


@pytest.mark.parametrize("bits,group_size", [(8, None), (4, 32), (4, 48)])
def test_affine_quantized_linear_close_to_linear_and_better_than_absmax_on_skewed_weights(bits, group_size):
    torch.manual_seed(0)
    linear = nn.Linear(64, 16)
    with torch.no_grad():
        linear.weight.copy_(torch.rand(16, 64))  # all positive: absmax wastes the negative half of its levels
    affine = Q.QuantizedLinear(linear, bits, group_size, scheme="affine")
    absmax = Q.QuantizedLinear(linear, bits, group_size)
    err_affine = (affine.dequantized_weight() - linear.weight).abs().max()
    err_absmax = (absmax.dequantized_weight() - linear.weight).abs().max()
    assert err_affine < err_absmax / 1.5
    x = torch.randn(3, 64)
    assert (affine(x) - linear(x)).abs().max() < (absmax(x) - linear(x)).abs().max()


def test_affine_int4_g32_reproduces_q4_1_style_weights_exactly():
    # GGUF Q4_1: every block of 32 weights is d·q + m with q in 0..15 and fp16 d, m (llama.cpp puts q = 0 at the
    # block's min and q = 15 at its max). The affine scheme with groups of 32 finds the same grid.
    gen = torch.Generator().manual_seed(0)
    d = (torch.rand(8, 4, 1, generator=gen) * 0.01 + 1e-3).half().float()
    m = (torch.randn(8, 4, 1, generator=gen) * 0.05).half().float()
    q = torch.randint(0, 16, (8, 4, 32), generator=gen).float()
    q[..., 0], q[..., 1] = 0, 15
    linear = nn.Linear(128, 8, bias=False)
    with torch.no_grad():
        linear.weight.copy_((d * q + m).reshape(8, 128))
    affine = Q.QuantizedLinear(linear, 4, 32, scheme="affine")
    torch.testing.assert_close(affine.dequantized_weight(), linear.weight, atol=1e-6, rtol=0)
    assert (Q.QuantizedLinear(linear, 4, 32).dequantized_weight() - linear.weight).abs().max() > 1e-3


def test_quantized_linear_rejects_unknown_scheme():
    with pytest.raises(ValueError, match=r"scheme must be one of \['absmax', 'affine'\], got 'nf4'"):
        Q.QuantizedLinear(nn.Linear(8, 4), 4, scheme="nf4")


@pytest.mark.parametrize("bits,group", [(4, 32), (8, 16), (4, 64)])
def test_quantized_linear_dequantizes_with_the_taught_dequantize(bits, group):
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 6)
    for scheme in ("absmax", "affine"):
        layer = Q.QuantizedLinear(linear, bits, group, scheme)
        w = linear.weight.detach().float()
        if scheme == "absmax":
            q, scale = Q.absmax_quantize(w, bits, "group", group)
            expected = Q.dequantize(q, scale.half())
        else:
            q, scale, low = Q.minmax_quantize(w, bits, "group", group)
            expected = Q.dequantize(q, scale.half(), low=low.half())
        assert torch.equal(layer.dequantized_weight(), expected), (bits, group, scheme)


def test_dequantize_min_scale_codes_and_its_errors():
    q = torch.tensor([[0, 15, 7, 8]], dtype=torch.uint8)
    out = Q.dequantize(q, torch.tensor([[0.5, 0.25]]), low=torch.tensor([[-1.0, 2.0]]))
    assert out.tolist() == [[-1.0, 6.5, 3.75, 4.0]]
    with pytest.raises(ValueError, match="not both"):
        Q.dequantize(q, torch.tensor([[0.5, 0.25]]), zero_point=torch.tensor([[1, 1]]), low=torch.tensor([[0.0, 0.0]]))
    with pytest.raises(ValueError, match="low must be a tensor shaped like scale"):
        Q.dequantize(q, torch.tensor([[0.5, 0.25]]), low=torch.tensor([0.0]))
    with pytest.raises(TypeError, match="low"):
        Q.dequantize(q, torch.tensor([[0.5, 0.25]]), low=[0.0, 0.0])
