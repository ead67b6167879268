"""Checks for chapter 05 (finetuning with LoRA and QLoRA) exercises."""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

from llmlab import lora, tokens
from llmlab.checks import Check

SHAPES = [(1, 4, 3, 1, 2.0), (5, 8, 6, 2, 16.0), (3, 16, 12, 4, 4.0), (2, 6, 5, 3, 8.0)]  # batch, d_in, d_out, r, alpha
# the last has alpha / r = 8 / 3: alpha // r (or int(alpha / r)) no longer agrees


def _lora_tensors(batch: int, d_in: int, d_out: int, r: int, seed: int):
    """A random input, weight and non-zero A, B for one case."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, d_in, generator=gen), torch.randn(d_out, d_in, generator=gen),
            torch.randn(r, d_in, generator=gen), torch.randn(d_out, r, generator=gen))


class _WatchProducts(TorchFunctionMode):
    """Notes whether a matrix product of the given output shapes is computed (B A or its transpose)."""

    PRODUCTS = {"matmul", "mm", "__matmul__", "__rmatmul__", "einsum", "addmm", "bmm", "outer", "tensordot"}

    def __init__(self, shapes: set[tuple[int, int]]):
        super().__init__()
        self.shapes, self.seen = shapes, False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if (getattr(func, "__name__", "") in self.PRODUCTS and isinstance(out, torch.Tensor)
                and tuple(out.shape[-2:]) in self.shapes):
            self.seen = True
        return out


def check_lora_forward(lora_forward) -> None:
    """Exercise 05.1: lora_forward(x, W, A, B, alpha) = x W^T + (alpha / r) x A^T B^T with r = A.shape[0]."""
    with Check("Exercise 05.1 lora_forward") as c:
        for i, (batch, d_in, d_out, r, alpha) in enumerate(SHAPES):
            x, w, a, b = _lora_tensors(batch, d_in, d_out, r, seed=i)
            case = f"x {tuple(x.shape)}, W {tuple(w.shape)}, r={r}, alpha={alpha}"
            with _WatchProducts({(d_out, d_in), (d_in, d_out)}) as watch:
                got = c.call(lora_forward, x.clone(), w.clone(), a.clone(), b.clone(), alpha, case=case)
            c.that(not watch.seen, case, f"you built the full {d_out} x {d_in} update B A: multiply x by Aᵀ first "
                                         "(batch x r), then by Bᵀ, so the update is never materialised")
            c.close(got, x @ w.T + (alpha / r) * (x @ a.T @ b.T), case=case)
        x, w, a, _ = _lora_tensors(2, 4, 3, 2, seed=9)
        got = c.call(lora_forward, x, w, a, torch.zeros(3, 2), 8.0, case="B = 0 (start of training)")
        c.close(got, x @ w.T, case="B = 0 (start of training)")


def check_lora_param_count(lora_param_count) -> None:
    """Exercise 05.2: lora_param_count(d_in, d_out, r, n_matrices) = n_matrices * r * (d_in + d_out)."""
    cases = [(4096, 4096, 8, 1), (12288, 12288, 2, 4 * 96), (576, 192, 8, 30), (1536, 576, 16, 2)]
    with Check("Exercise 05.2 lora_param_count") as c:
        for d_in, d_out, r, n in cases:
            case = f"d_in={d_in}, d_out={d_out}, r={r}, n_matrices={n}"
            got = c.call(lora_param_count, d_in, d_out, r, n, case=case)
            c.that(isinstance(got, int), case, f"expected an int, got {type(got).__name__}")
            c.equal(got, lora.lora_param_count(d_in, d_out, r, n), case=case)


def check_merge_lora_weight(merge_lora_weight) -> None:
    """Exercise 05.3: merge_lora_weight(W, A, B, alpha) = W + (alpha / r) B A, a new tensor giving the same output."""
    with Check("Exercise 05.3 merge_lora_weight") as c:
        for i, (batch, d_in, d_out, r, alpha) in enumerate(SHAPES):
            x, w, a, b = _lora_tensors(batch, d_in, d_out, r, seed=10 + i)
            case = f"W {tuple(w.shape)}, r={r}, alpha={alpha}"
            original = w.clone()
            got = c.call(merge_lora_weight, w, a, b, alpha, case=case)
            c.that(torch.equal(w, original), case, "W was changed in place; return a new tensor instead")
            c.close(got, original + (alpha / r) * (b @ a), case=case)
            c.close(x @ got.T, x @ original.T + (alpha / r) * (x @ a.T @ b.T), case=case + ", same output as unmerged")


def check_training_memory_gb(training_memory_gb) -> None:
    """Exercise 05.4: training_memory_gb(params_billion, bits) for full Adam finetuning, before activations."""
    cases = [(7, 16, 56.0), (13, 16, 104.0), (1, 32, 16.0), (0.135, 16, 1.08), (2, 4, 4.0), (3, 12, 18.0)]
    with Check("Exercise 05.4 training_memory_gb") as c:
        for params, bits, expected in cases:
            case = f"{params}B parameters at {bits} bits"
            got = c.call(training_memory_gb, params, bits, case=case)
            c.that(isinstance(got, (int, float)) and not isinstance(got, bool), case,
                   f"return a Python float (GB), got {type(got).__name__}")
            c.close(got, expected, case=case, atol=1e-9, rtol=1e-6)


def check_ties_merge(ties_merge) -> None:
    """Exercise 05.5: ties_merge(task_vectors, density) trims, elects the sign by mass, averages agreeing entries."""
    t1 = torch.tensor([0.5, -0.1, 0.9, 0.0, -0.4, 0.3])
    t2 = torch.tensor([0.3, 0.2, -0.8, 0.05, -0.6, 0.2])
    t3 = torch.tensor([-0.2, 0.1, -0.3, 0.0, 0.02, -0.9])
    gen = torch.Generator().manual_seed(5)
    rand = [torch.randn(40, generator=gen) for _ in range(4)]
    cases = [("three hand-made vectors, density 0.5", [t1, t2, t3], 0.5),
             ("three hand-made vectors, density 1 (no trimming)", [t1, t2, t3], 1.0),
             ("four random vectors, density 0.2", rand, 0.2),
             ("equal mass of both signs at entry 0 (the sum is 0: its sign is 0, so nothing agrees)",
              [torch.tensor([0.5, 0.2, -0.3]), torch.tensor([-0.5, 0.1, 0.4])], 1.0)]
    with Check("Exercise 05.5 ties_merge") as c:
        for case, vectors, density in cases:
            got = c.call(ties_merge, [v.clone() for v in vectors], density, case=case)
            c.close(got, lora.ties_merge(vectors, density), case=case)


def _trainable(module: torch.nn.Module) -> dict[str, tuple]:
    """Names and shapes of the parameters that require grad."""
    return {n: tuple(p.shape) for n, p in module.named_parameters() if p.requires_grad}


def check_lora_linear(LoRALinear) -> None:
    """Exercise 05.6: LoRALinear(base, r, alpha): frozen base, lora_A (r, in), lora_B (out, r), scale alpha / r."""
    with Check("Exercise 05.6 LoRALinear") as c:
        for d_in, d_out, r, alpha in [(6, 4, 2, 4.0), (8, 8, 4, 16.0), (5, 3, 1, 1.0), (7, 5, 3, 8.0)]:
            torch.manual_seed(d_in)
            base = torch.nn.Linear(d_in, d_out)
            w, b = base.weight.detach().clone(), base.bias.detach().clone()
            case = f"base Linear({d_in}, {d_out}) with bias, r={r}, alpha={alpha}"
            layer = c.call(LoRALinear, base, r, alpha, case=case)
            c.that(isinstance(layer, torch.nn.Module), case, f"expected an nn.Module, got {type(layer).__name__}")
            trainable = _trainable(layer)
            want = {"lora_A": (r, d_in), "lora_B": (d_out, r)}
            c.that(trainable == want, case,
                   f"the trainable parameters must be exactly lora_A {want['lora_A']} and lora_B {want['lora_B']} "
                   f"(freeze the base with requires_grad_(False)); got {trainable}")
            x = torch.randn(3, d_in, generator=torch.Generator().manual_seed(r))
            with torch.no_grad():
                expected_base = x @ w.T + b
                c.that(bool(layer.lora_A.abs().sum() > 0), case,
                       "lora_A is all zero: with A = 0 and B = 0 no gradient ever reaches either; initialise A "
                       "randomly and B with zeros")
                got = c.call(layer, x, case=case + ", at initialisation")
                c.close(got, expected_base, case=case + ", at initialisation the output must equal the base's "
                                                       "(B starts at zero, bias included)")
                gen = torch.Generator().manual_seed(7)
                layer.lora_A.copy_(torch.randn(r, d_in, generator=gen))
                layer.lora_B.copy_(torch.randn(d_out, r, generator=gen))
                want_out = expected_base + (alpha / r) * (x @ layer.lora_A.T @ layer.lora_B.T)
                c.close(c.call(layer, x, case=case), want_out,
                        case=case + ", with non-zero A and B: base(x) + (alpha / r) * x A^T B^T")
                x3 = torch.randn(2, 5, d_in, generator=gen)
                want3 = x3 @ w.T + b + (alpha / r) * (x3 @ layer.lora_A.T @ layer.lora_B.T)
                c.close(c.call(layer, x3, case=case + ", input (batch, seq, d_in)"), want3,
                        case=case + ", input (batch, seq, d_in)")
            out = c.call(layer, x, case=case + ", backward")
            out.sum().backward()
            c.that(layer.lora_A.grad is not None and layer.lora_B.grad is not None, case + ", backward",
                   "lora_A and lora_B must get gradients (are they nn.Parameters?)")
            c.that(base.weight.grad is None, case + ", backward", "the base weight got a gradient: freeze it")


def toy_regression(seed: int = 0):
    """A base layer, and data whose target is that layer plus a rank-2 change: y = x (W + ΔW)ᵀ + b."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.nn.Linear(8, 6)
    with torch.no_grad():
        base.weight.copy_(torch.randn(6, 8, generator=gen) * 0.3)
        base.bias.copy_(torch.randn(6, generator=gen) * 0.1)
    delta = torch.randn(6, 2, generator=gen) @ torch.randn(2, 8, generator=gen) * 0.5
    x = torch.randn(64, 8, generator=gen)
    y = (x @ (base.weight + delta).T + base.bias).detach()
    layer = lora.LoRALinear(base, r=2, alpha=2)
    with torch.no_grad():
        layer.lora_A.copy_(torch.randn(2, 8, generator=gen) * 0.3)
    return layer, x, y


def reference_train(layer, x, y, steps: int, lr: float) -> list[float]:
    """The loop the exercise describes: Adam on the trainable parameters, full-batch MSE, loss before each step."""
    opt = torch.optim.Adam([p for p in layer.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(layer(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def check_train_lora(train_lora) -> None:
    """Exercise 05.7: train_lora(layer, x, y, steps, lr) -> the loss before each of `steps` Adam steps (floats)."""
    import copy

    with Check("Exercise 05.7 training a LoRA layer") as c:
        for steps, lr in [(3, 0.05), (40, 0.05)]:
            layer, x, y = toy_regression()
            ref_layer = copy.deepcopy(layer)
            base_before = layer.base.weight.detach().clone()
            want = reference_train(ref_layer, x, y, steps, lr)
            case = f"{steps} steps at lr={lr}"
            got = c.call(train_lora, layer, x, y, steps, lr, case=case)
            c.that(isinstance(got, list) and all(isinstance(v, float) for v in got), case,
                   "return a list of Python floats (loss.item()), got "
                   + (f"a list of {type(got[0]).__name__}" if isinstance(got, list) and got else type(got).__name__))
            c.that(len(got) == steps, case, f"expected {steps} losses (one per step), got {len(got)}")
            c.that(torch.equal(layer.base.weight, base_before), case, "the frozen base weight changed")
            c.that(not (steps > 1 and abs(got[0] - want[1]) < 1e-6), case,
                   "your first loss is the loss AFTER the first step: record loss.item() of the loss you backpropagate")
            c.close(got[0], want[0], case=case + ", the first loss (MSE of the untrained layer, mean over all values)",
                    rtol=1e-4)
            for i, (g, w) in enumerate(zip(got, want)):
                if abs(g - w) > 1e-4 * max(1.0, abs(w)):
                    c.fail(case, f"step {i}: expected loss {w:.6g}, got {g:.6g}. Each step: zero the gradients, "
                                 "compute the loss, backward, optimizer step (Adam on lora_A and lora_B only)")
            c.that(steps < 40 or got[-1] < 0.2 * got[0], case,
                   f"the loss must fall: first {got[0]:.4f}, last {got[-1]:.4f}")


def check_mask_prompt_labels(mask_prompt_labels) -> None:
    """Exercise 05.8: mask_prompt_labels(prompt_ids, answer_ids) -> (input_ids, labels) with -100 on the prompt."""
    cases = [("prompt [5, 6, 7], answer [8, 9]", [5, 6, 7], [8, 9]), ("one-token prompt", [1], [4, 4, 2]),
             ("one-token answer", [3, 1, 4, 1, 5], [9]), ("answer repeats a prompt token", [7, 8], [8, 7, 2])]
    with Check("Exercise 05.8 masking the prompt in the labels") as c:
        for case, prompt, answer in cases:
            got = c.call(mask_prompt_labels, list(prompt), list(answer), case=case)
            c.that(isinstance(got, tuple) and len(got) == 2, case,
                   f"return a tuple (input_ids, labels), got {type(got).__name__}")
            ids, labels = got
            c.that(isinstance(ids, list) and isinstance(labels, list), case,
                   f"input_ids and labels must be lists of int, got {type(ids).__name__} and {type(labels).__name__}")
            c.equal(ids, prompt + answer, case=case + " (input_ids = prompt + answer)")
            want = tokens.mask_prompt_labels(prompt, answer)[1]
            c.that(len(labels) == len(ids), case,
                   f"labels must have the same length as input_ids ({len(ids)}), got {len(labels)}: do not shift "
                   "them yourself, the model compares logits[t] with labels[t + 1] internally")
            c.that(labels != ids[1:] + [-100], case, "do not shift the labels: the model shifts them itself")
            c.that(labels[len(prompt):] == answer, case,
                   f"the answer's labels must be the answer's ids {answer}, got {labels[len(prompt):]}")
            c.that(all(v == -100 for v in labels[:len(prompt)]), case,
                   f"every prompt position must be -100 (ignored by the loss; 0 is a real token id), got "
                   f"{labels[:len(prompt)]}")
            c.equal(labels, want, case=case)
