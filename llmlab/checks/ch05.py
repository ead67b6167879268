"""Checks for chapter 05 (finetuning with LoRA and QLoRA) exercises."""

from __future__ import annotations

import torch

from llmlab import lora
from llmlab.checks import Check

SHAPES = [(1, 4, 3, 1, 2.0), (5, 8, 6, 2, 16.0), (3, 16, 12, 4, 4.0)]  # batch, d_in, d_out, r, alpha


def _lora_tensors(batch: int, d_in: int, d_out: int, r: int, seed: int):
    """A random input, weight and non-zero A, B for one case."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, d_in, generator=gen), torch.randn(d_out, d_in, generator=gen),
            torch.randn(r, d_in, generator=gen), torch.randn(d_out, r, generator=gen))


def check_lora_forward(lora_forward) -> None:
    """Exercise 05.1: lora_forward(x, W, A, B, alpha) = x W^T + (alpha / r) x A^T B^T with r = A.shape[0]."""
    with Check("Exercise 05.1 lora_forward") as c:
        for i, (batch, d_in, d_out, r, alpha) in enumerate(SHAPES):
            x, w, a, b = _lora_tensors(batch, d_in, d_out, r, seed=i)
            case = f"x {tuple(x.shape)}, W {tuple(w.shape)}, r={r}, alpha={alpha}"
            got = c.call(lora_forward, x.clone(), w.clone(), a.clone(), b.clone(), alpha, case=case)
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
    cases = [(7, 16, 56.0), (13, 16, 104.0), (1, 32, 16.0), (0.135, 16, 1.08)]
    with Check("Exercise 05.4 training_memory_gb") as c:
        for params, bits, expected in cases:
            case = f"{params}B parameters at {bits} bits"
            got = c.call(training_memory_gb, params, bits, case=case)
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
             ("four random vectors, density 0.2", rand, 0.2)]
    with Check("Exercise 05.5 ties_merge") as c:
        for case, vectors, density in cases:
            got = c.call(ties_merge, [v.clone() for v in vectors], density, case=case)
            c.close(got, lora.ties_merge(vectors, density), case=case)
