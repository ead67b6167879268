"""Checks for chapter 03 (attention and the KV cache) exercises."""

from __future__ import annotations

import math

import torch

from llmlab.checks import Check


def check_causal_mask(causal_mask) -> None:
    """Exercise 03.1: causal_mask(seq_len) is a bool (seq_len, seq_len) tensor, True where key j <= query i."""
    with Check("Exercise 03.1 causal_mask") as c:
        for n in [1, 2, 5]:
            case = f"seq_len={n}"
            got = c.call(causal_mask, n, case=case)
            c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
            c.that(tuple(got.shape) == (n, n), case, f"expected shape {(n, n)}, got {tuple(got.shape)}")
            c.that(got.dtype == torch.bool, case, f"expected dtype torch.bool (True = may attend), got {got.dtype}")
            want = torch.ones(n, n).tril().bool()
            c.that(not (n > 1 and torch.equal(got, want.T)), case,
                   "your mask is transposed: row i is query i, and it may see keys j <= i (lower triangle)")
            c.that(not (n > 1 and torch.equal(got, ~want)), case,
                   "your mask is inverted: True must mean 'may attend' (the past and the token itself)")
            wrong = (got != want).nonzero().tolist()
            c.that(not wrong, case, f"wrong at (query, key) {wrong[:4]}: expected\n{want.int().tolist()}, got\n"
                                    f"{got.int().tolist()}")
        got = c.call(causal_mask, 4, case="seq_len=4")
        c.that(isinstance(got, torch.Tensor) and tuple(got.shape) == (4, 4), "seq_len=4",
               f"expected a (4, 4) tensor, got {tuple(getattr(got, 'shape', ())) or type(got).__name__}")
        c.that(bool(got.bool().diagonal().all()), "diagonal",
               "every token must attend to itself (the diagonal is True)")
        c.that(not bool(got.bool()[0, 1:].any()), "first row",
               "the first token must not see any later token (row = query, column = key)")


def check_attention_weights(attention_weights) -> None:
    """Exercise 03.2: attention_weights(q, k, mask) = softmax(q·kᵀ/√d) over keys; mask False -> weight 0."""
    gen = torch.Generator().manual_seed(3)
    causal = lambda n: torch.ones(n, n).tril().bool()  # noqa: E731
    padding = torch.ones(5, 5, dtype=torch.bool)
    padding[:, 3:] = False  # the last two keys are padding, for every query
    window = causal(6) & ~torch.ones(6, 6).tril(-3).bool()  # sliding window of 3
    full = torch.ones(4, 4, dtype=torch.bool)
    cases = [((1, 3, 4), causal(3), "a causal mask"), ((2, 5, 8), causal(5), "a causal mask"),
             ((2, 5, 8), padding, "a padding mask (keys 3 and 4 hidden from every query)"),
             ((1, 6, 4), window, "a sliding-window mask (each query sees itself and the 2 previous keys)"),
             ((2, 4, 16), full, "no masking (all True, as in an encoder)"),
             ((2, 3, 5, 8), causal(5), "a causal mask, with a heads axis (batch, heads, seq, d)"),
             ((4, 8), causal(4), "a causal mask, one sequence without a batch axis (seq, d)")]
    with Check("Exercise 03.2 attention_weights") as c:
        for shape, mask, label in cases:
            q, k = torch.randn(*shape, generator=gen) * 2, torch.randn(*shape, generator=gen) * 2
            d = shape[-1]
            scores = (q @ k.transpose(-2, -1) / math.sqrt(d)).masked_fill(~mask, float("-inf"))
            expected = torch.softmax(scores, dim=-1)
            case = f"q, k of shape {shape} with {label}"
            got = c.call(attention_weights, q.clone(), k.clone(), mask.clone(), case=case)
            c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
            c.that(tuple(got.shape) == tuple(expected.shape), case,
                   f"expected shape {tuple(expected.shape)} (..., queries, keys), got {tuple(got.shape)}")
            c.that(torch.allclose(got.sum(-1), torch.ones(shape[:-1]), atol=1e-4), case,
                   "each row must sum to 1 (softmax over the keys, the last dimension, after masking)")
            c.that(bool((got.masked_fill(mask, 0) == 0).all()), case,
                   "positions where mask is False must get weight exactly 0: use the mask you are given (it is not "
                   "always causal) and fill those scores with -inf before softmax")
            unscaled = torch.softmax((q @ k.transpose(-2, -1)).masked_fill(~mask, float("-inf")), -1)
            c.that(not torch.allclose(got, unscaled, atol=1e-5), case,
                   "divide the scores by sqrt(d) (d = q.shape[-1]) before softmax")
            c.close(got, expected, case=case, atol=1e-5)


def check_repeat_kv(repeat_kv) -> None:
    """Exercise 03.3: repeat_kv(x, n_rep) repeats each KV head n_rep times in place: (b, h, s, d) -> (b, h·n, s, d)."""
    with Check("Exercise 03.3 repeat_kv") as c:
        x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
        for n_rep in [1, 3]:
            case = f"x of shape (2, 3, 2, 2), n_rep={n_rep}"
            got = c.call(repeat_kv, x.clone(), n_rep, case=case)
            expected = x.repeat_interleave(n_rep, dim=1)
            c.close(got, expected, case=case, atol=0, rtol=0)
        got = c.call(repeat_kv, x.clone(), 3, case="query head 1")
        c.that(isinstance(got, torch.Tensor) and tuple(got.shape) == (2, 9, 2, 2), "query head 1",
               f"expected shape (2, 9, 2, 2), got {tuple(getattr(got, 'shape', ())) or type(got).__name__}")
        c.that(torch.equal(got[:, 1], x[:, 0]), "query head 1",
               "query heads 0, 1, 2 share KV head 0 (AABBCC), not KV heads 0, 1, 2 (ABCABC)")
        y = torch.randn(1, 2, 3, 4)
        case = "x of shape (1, 2, 3, 4), n_rep=2 (seq != head_dim)"
        c.close(c.call(repeat_kv, y.clone(), 2, case=case), y.repeat_interleave(2, dim=1), case=case, atol=0, rtol=0)


def check_cache_append(cache_append) -> None:
    """Exercise 03.4: cache_append(buffer, length, new) writes new at buffer[:, :, length:], returns the new length."""
    gen = torch.Generator().manual_seed(4)
    with Check("Exercise 03.4 cache_append") as c:
        buffer = torch.zeros(1, 2, 6, 3)
        expected = torch.zeros(1, 2, 6, 3)
        length = 0
        for s in [3, 1, 2]:
            new = torch.randn(1, 2, s, 3, generator=gen)
            case = f"appending {s} position(s) at length {length}"
            got = c.call(cache_append, buffer, length, new, case=case)
            expected[:, :, length:length + s] = new
            c.that(isinstance(got, int) and not isinstance(got, bool), case + " (returned length)",
                   f"return the new length as an int, got {type(got).__name__}")
            c.equal(got, length + s, case=case + " (returned length)")
            c.close(buffer, expected, case=case + " (buffer contents, written in place)", atol=0, rtol=0)
            length += s
        overflow = [("past capacity", buffer, length, 1, "appending to a full buffer"),
                    ("past capacity by one", torch.zeros(1, 2, 6, 3), 5, 2,
                     "appending 2 positions at length 5 of a 6-position buffer (length < capacity, but it does not "
                     "fit: compare length + new positions with the capacity)")]
        for case, buf, at, s, what in overflow:
            try:
                cache_append(buf, at, torch.ones(1, 2, s, 3))
            except ValueError:
                c.that(True, case, "")
            except Exception as exc:  # noqa: BLE001 - reported as a failed case
                c.fail(case, f"{what} must raise ValueError, got {type(exc).__name__}: {exc}")
            else:
                c.fail(case, f"{what} must raise ValueError, it returned normally")


def check_kv_cache_bytes(kv_cache_bytes) -> None:
    """Exercise 03.5: kv_cache_bytes(batch, seq_len, layers, kv_heads, head_dim, bytes_per_value)."""
    cases = [
        ((32, 2048, 40, 40, 128, 2), 53_687_091_200, "AI Engineering's (ch. 9) Llama 2 13B example"),
        ((1, 8192, 32, 8, 128, 2), 1_073_741_824, "Llama 3 8B (GQA, 8 KV heads), 8K tokens"),
        ((4, 100, 30, 3, 64, 4), 18_432_000, "SmolLM2-135M fp32, batch 4"),
        ((1, 1, 1, 1, 1, 1), 2, "one value each for K and V"),
    ]
    with Check("Exercise 03.5 kv_cache_bytes") as c:
        for args, expected, case in cases:
            got = c.call(kv_cache_bytes, *args, case=case)
            c.that(isinstance(got, (int, float)) and not isinstance(got, bool), case,
                   f"return a number of bytes, got {type(got).__name__}")
            c.that(not math.isclose(got, expected / 2), case,
                   f"expected {expected:,} bytes, got {got:,}: you counted only K or only V (store both)")
            c.that(not math.isclose(got, expected / 1e9), case, "return bytes, not GB")
            c.close(got, expected, case=case, atol=0.5, rtol=0)


def check_apply_rope(apply_rope) -> None:
    """Exercise 03.6: apply_rope(x, cos, sin) = x·cos + rotate_half(x)·sin with Llama's half-split layout."""
    gen = torch.Generator().manual_seed(6)
    with Check("Exercise 03.6 apply_rope") as c:
        for shape in [(1, 2, 5, 8), (2, 3, 4, 16)]:
            d, n = shape[3], shape[2]
            inv = 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d))
            angles = torch.arange(n).float()[:, None] * inv
            emb = torch.cat([angles, angles], -1)
            cos, sin = emb.cos(), emb.sin()
            x = torch.randn(*shape, generator=gen)
            half = d // 2
            expected = x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin
            case = f"x of shape {shape}"
            got = c.call(apply_rope, x.clone(), cos, sin, case=case)
            c.that(isinstance(got, torch.Tensor) and tuple(got.shape) == shape, case,
                   f"expected a tensor of shape {shape}, got {tuple(getattr(got, 'shape', ())) or type(got).__name__}")
            c.close(got[..., 0, :], x[..., 0, :], case=case + ": position 0 is not rotated (angle 0)", atol=1e-5)
            c.close(got.norm(dim=-1), x.norm(dim=-1), case=case + ": a rotation keeps each vector's length",
                    atol=1e-4)
            inverse = x * cos - torch.cat([-x[..., half:], x[..., :half]], -1) * sin
            c.that(not torch.allclose(got, inverse, atol=1e-5), case,
                   "you rotate the wrong way: rotate_half(x) is (-x2, x1), added with + sin")
            c.close(got, expected, case=case + " (Llama pairs dimension i with i + d/2, not neighbours 2i, 2i+1)",
                    atol=1e-5)


def _layer_io(model, ids: torch.Tensor, index: int):
    """The input and output hidden states of decoder layer `index` and its RoPE tables for ids (1 or more rows)."""
    layer = model.model.layers[index]
    seen = {}

    def hook(module, args, kwargs, output):
        seen["x"] = (args[0] if args else kwargs["hidden_states"]).detach().clone()
        seen["y"] = (output[0] if isinstance(output, tuple) else output).detach().clone()

    handle = layer.register_forward_hook(hook, with_kwargs=True)
    try:
        with torch.inference_mode():
            model(ids)
    finally:
        handle.remove()
    positions = torch.arange(ids.shape[1]).unsqueeze(0)
    with torch.inference_mode():
        cos, sin = model.model.rotary_emb(seen["x"], positions)
    return seen["x"], seen["y"], cos[0].clone(), sin[0].clone()


def check_decoder_block(decoder_block, model, tokenizer) -> None:
    """Exercise 03.7: decoder_block(x, layer, cos, sin, config) reproduces one real decoder layer's output."""
    config = model.config
    text = "The cat sat on the mat because it was warm."
    ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :12].to(model.device)
    layers = sorted({0, len(model.model.layers) // 2})
    with Check("Exercise 03.7 a transformer block") as c:
        for index in layers:
            layer = model.model.layers[index]
            for n, label in [(1, "a single token (attention just returns its value)"),
                             (ids.shape[1], f"{ids.shape[1]} tokens")]:
                x, want, cos, sin = _layer_io(model, ids[:, :n], index)
                case = f"layer {index}, {label}"
                with torch.inference_mode():
                    got = c.call(decoder_block, x.clone(), layer, cos, sin, config, case=case)
                c.that(isinstance(got, torch.Tensor) and got.shape == want.shape, case,
                       f"expected a tensor of shape {tuple(want.shape)} (batch, seq, hidden), got "
                       f"{tuple(getattr(got, 'shape', ())) or type(got).__name__}")
                scale = float(want.abs().max())
                hint = ("the error is in the norms, the q/k/v/o projections, SwiGLU or the residual additions "
                        "(with one token, mask, RoPE and scaling change nothing)") if n == 1 else \
                    ("one token works but longer inputs do not: check RoPE on q and k (not v), the 1/sqrt(head_dim) "
                     "scaling, the causal mask and repeat_kv for the key/value heads")
                err = float((got.float() - want.float()).abs().max())
                c.that(err <= 1e-4 * max(scale, 1.0), case,
                       f"max difference from the real layer {err:.3g} (outputs reach {scale:.3g}): {hint}")
        x, _, cos, sin = _layer_io(model, ids, layers[0])
        changed = x.clone()
        changed[:, -1] += 1.0
        with torch.inference_mode():
            a = c.call(decoder_block, x.clone(), model.model.layers[layers[0]], cos, sin, config, case="causality")
            b = c.call(decoder_block, changed, model.model.layers[layers[0]], cos, sin, config, case="causality")
        c.that(torch.allclose(a[:, :-1], b[:, :-1], atol=1e-5), "causality",
               "changing the last token changed earlier positions: apply the causal mask")
