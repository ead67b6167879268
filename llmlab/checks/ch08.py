"""Checks for chapter 08 (interpretability) exercises."""

from __future__ import annotations

import torch

from llmlab import interpret
from llmlab.checks import Check
from llmlab.kit import fixtures


def _tiny_with_scaled_norm():
    """The tiny model with a non-trivial final norm weight (a lens without the norm's weight must differ)."""
    model = fixtures.tiny_model(seed=8)
    gen = torch.Generator().manual_seed(8)
    with torch.no_grad():
        model.model.norm.weight.copy_(0.5 + 1.5 * torch.rand(model.config.hidden_size, generator=gen))
    return model


def check_lens_logits(lens_logits) -> None:
    """Exercise 08.1: lens_logits(model, stream, layer) = lm_head(final_norm(stream[layer])), stream[0] = embeddings."""
    model = _tiny_with_scaled_norm()
    ids = torch.tensor([[5, 40, 77, 3, 120, 9], [8, 2, 60, 33, 7, 101]])          # a batch of two rows
    with torch.no_grad():
        stream = interpret.residual_stream(model, ids)
        final = model(ids).logits
        lens = [interpret.lens_logits(model, h) for h in stream]
        raw = [model.lm_head(h) for h in stream]
    layers = model.config.num_hidden_layers
    with Check("Exercise 08.1 lens_logits") as c:
        for layer in range(layers + 1):
            case = f"layer={layer} of a {layers}-layer model (stream[0] is the embeddings)"
            with torch.no_grad():
                got = c.call(lens_logits, model, stream, layer, case=case)
            c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor of logits, got {type(got).__name__}")
            c.that(tuple(got.shape) == tuple(lens[layer].shape), case,
                   f"expected logits of shape {tuple(lens[layer].shape)} (batch, seq, vocab), got {tuple(got.shape)}")
            got = got.detach()
            if not torch.allclose(got, lens[layer], atol=1e-4):
                if torch.allclose(got, raw[layer], atol=1e-4):
                    c.fail(case, "these are lm_head(stream[layer]) without the final norm: apply model.model.norm "
                                 "first, as the model does before its head")
                for other in (layer - 1, layer + 1):
                    if 0 <= other <= layers and torch.allclose(got, lens[other], atol=1e-4):
                        c.fail(case, f"these are the lens logits of stream[{other}], not stream[{layer}]: "
                                     f"stream[0] is the embeddings, stream[i] the output of layer i")
            if layer == layers:
                c.close(got, final, case=case + ": must reproduce the model's own logits", atol=1e-4)
            c.close(got, lens[layer], case=case, atol=1e-4)


def _bumpy(batch: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """A non-linear score (n,) of a batch (n, seq, hidden): its gradient changes along any path."""
    return torch.tanh(batch @ w).sum((-1, -2)) + 0.3 * (batch ** 2).sum((-1, -2))


def check_gradient_x_input(gradient_x_input) -> None:
    """Exercise 08.2: gradient_x_input(fn, x) = (d fn / d x) * x elementwise, the shape of x."""
    gen = torch.Generator().manual_seed(2)
    w = torch.randn(4, 3, generator=gen)
    x = torch.randn(5, 4, generator=gen)

    def fn(batch):
        return _bumpy(batch, w)

    x_ref = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x_ref[None]).sum(), x_ref)
    expected = grad * x
    with Check("Exercise 08.2 gradient_x_input") as c:
        case = "x of shape (5, 4) under a non-linear score"
        got = c.call(gradient_x_input, fn, x.clone(), case=case)
        c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
        c.that(tuple(got.shape) == tuple(x.shape), case,
               f"expected one attribution per input element, shape {tuple(x.shape)}, got {tuple(got.shape)}")
        got = got.detach()
        c.that(not torch.allclose(got, grad, atol=1e-5), case, "that is the gradient alone: multiply it by x")
        c.close(got, expected, case=case, atol=1e-5)
        c.close(got.sum(-1), expected.sum(-1), case="per-token sums (what the heatmap shows)", atol=1e-5)


def check_ablate_head(ablate_head) -> None:
    """Exercise 08.3: ablate_head(o_proj_input, head, head_dim) zeros that head's slice of the last axis, a copy."""
    gen = torch.Generator().manual_seed(3)
    with Check("Exercise 08.3 ablate_head") as c:
        for heads, head_dim, head in [(4, 3, 0), (4, 3, 2), (3, 5, 2)]:
            x = torch.randn(2, 6, heads * head_dim, generator=gen)
            original = x.clone()
            case = f"{heads} heads of size {head_dim}, head={head}"
            got = c.call(ablate_head, x, head, head_dim, case=case)
            expected = original.clone()
            expected[..., head * head_dim:(head + 1) * head_dim] = 0
            c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
            c.that(torch.equal(x, original), case, "the input was modified in place: return a modified copy")
            c.close(got, expected, case=case, atol=0, rtol=0)
        model, tok = fixtures.tiny_model(), fixtures.tiny_tokenizer()
        ids = tok("The cat sat", return_tensors="pt")["input_ids"]
        d = model.config.hidden_size // model.config.num_attention_heads
        o_proj = model.model.layers[1].self_attn.o_proj
        hook = o_proj.register_forward_pre_hook(lambda m, args: (ablate_head(args[0], 2, d),))
        try:
            with torch.no_grad():
                got = model(ids).logits
        finally:
            hook.remove()
        with interpret.ablate_heads(model, [(1, 2)]), torch.no_grad():
            expected = model(ids).logits
        c.close(got, expected, case="as a hook on the tiny model's layer 1, head 2", atol=1e-5)


def check_integrated_gradients(integrated_gradients) -> None:
    """Exercise 08.4: (x - baseline) * mean of the gradients at alpha = (k + 0.5) / steps, k = 0 .. steps - 1."""
    gen = torch.Generator().manual_seed(4)
    w = torch.randn(4, 3, generator=gen)
    x = torch.randn(3, 4, generator=gen)
    baseline = 0.5 * torch.randn(3, 4, generator=gen)

    def fn(batch):
        return _bumpy(batch, w)

    with Check("Exercise 08.4 integrated_gradients") as c:
        for steps, base, label in [(4, baseline, "a random baseline"), (1, torch.zeros_like(x), "zero baseline"),
                                   (7, baseline, "a random baseline")]:
            case = f"steps={steps}, {label}"
            got = c.call(integrated_gradients, fn, x.clone(), base.clone(), steps, case=case)
            expected = interpret.integrated_gradients(fn, x, base, steps=steps)
            c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
            c.that(tuple(got.shape) == tuple(x.shape), case,
                   f"expected attributions of x's shape {tuple(x.shape)}, got {tuple(got.shape)}")
            c.close(got.detach(), expected, case=case + " (midpoints (k + 0.5) / steps, times x - baseline)",
                    atol=1e-4)
        got = integrated_gradients(fn, x, baseline, 200).detach()
        with torch.no_grad():
            want = float(fn(x[None])[0] - fn(baseline[None])[0])
        c.close(float(got.sum()), want, case="completeness: 200 steps sum to f(x) - f(baseline)", atol=1e-3, rtol=1e-3)


def _probe_data(flip_test: bool, seed: int, outliers: int = 0) -> tuple[torch.Tensor, list[int], list[int], list[int]]:
    """Separable features split at random (train rows are not the first ones); with flip_test the test rows' labels
    contradict the signal; `outliers` test rows sit 100x further out on the signal axis (correctly labelled)."""
    gen = torch.Generator().manual_seed(seed)
    n, dim = 60, 16
    labels = (torch.arange(n) % 2).tolist()
    x = torch.randn(n, dim, generator=gen)
    x[:, 0] += torch.tensor([4.0 if y else -4.0 for y in labels])
    order = torch.randperm(n, generator=gen).tolist()
    train, test = order[:40], order[40:]
    if flip_test:
        for i in test:
            labels[i] = 1 - labels[i]
    for i in test[:outliers]:
        x[i, 0] = 400.0 if labels[i] else -400.0
    return x, labels, train, test


def check_probe_accuracy(probe_accuracy) -> None:
    """Exercise 08.5: probe_accuracy(features, labels, train, test) trains on train rows only, scores test rows."""
    with Check("Exercise 08.5 probe_accuracy") as c:
        for seed, outliers, case in ((5, 0, "a linearly separable property, rows split at random"),
                                     (7, 4, "the same with 4 far-out test rows (they leave the training rows' "
                                            "signal intact only if mean and std come from the training rows)")):
            x, labels, train, test = _probe_data(flip_test=False, seed=seed, outliers=outliers)
            got = c.call(probe_accuracy, x.clone(), list(labels), list(train), list(test), case=case)
            c.that(isinstance(got, float), case,
                   f"expected a float (a fraction of test rows), got {type(got).__name__}")
            c.that(0.0 <= got <= 1.0, case, f"accuracy must be a fraction in [0, 1], got {got!r}")
            c.that(got >= 0.9, case, f"a linear probe should reach at least 0.9 here, got {got:.2f}: are the "
                                     f"features indexed with the `train`/`test` rows (not the first rows), and are "
                                     f"the mean and std for standardising taken from the training rows only?")
        x, labels, train, test = _probe_data(flip_test=True, seed=6)
        case = "test labels that contradict the training rows (rows split at random)"
        got = c.call(probe_accuracy, x.clone(), list(labels), list(train), list(test), case=case)
        c.that(isinstance(got, float), case, f"expected a float, got {type(got).__name__}")
        c.that(got <= 0.2, case, f"a probe fitted on the training rows only must fail these test rows, got "
                                 f"accuracy {got:.2f}: did the test rows leak into training, is this the "
                                 f"training accuracy, or did you take the first len(train) rows as the training rows?")
