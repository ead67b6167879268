"""LoRA from scratch: the LoRALinear layer, injecting it into a model, merging it, and parameter counts."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from llmlab import validate as V


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts of a module; shared (tied) tensors are counted once."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    seen: set[int] = set()
    trainable = total = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def validate_lora_args(r: int, alpha: float, dropout: float) -> None:
    """Raise a clear error unless r >= 1, alpha > 0 and dropout in [0, 1) (TypeError for a wrong type)."""
    V.positive_int("r", r)
    V.number("alpha", alpha, 0, low_open=True)
    V.number("dropout", dropout, 0, 1, high_open=True)


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update: y = base(x) + (alpha / r) * B(A(dropout(x)))."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be a torch.nn.Linear, got {type(base).__name__}")
        validate_lora_args(r, alpha, dropout)
        self.base = base
        self.base.requires_grad_(False)
        self.r, self.alpha, self.scale = r, alpha, alpha / r
        weight = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=weight.dtype, device=weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=weight.dtype, device=weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # the same initialisation as peft
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """The update the adapter adds to the base weight: (alpha / r) * B @ A, shaped like the weight."""
        return self.scale * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Base output plus the scaled low-rank path (skipped once merged into the weight)."""
        out = self.base(x)
        if self.merged:
            return out
        return out + self.scale * (self.dropout(x) @ self.lora_A.T @ self.lora_B.T)

    @torch.no_grad()
    def merge(self) -> None:
        """Add the update into the base weight, so inference costs one matmul again."""
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract the update from the base weight, restoring the separate adapter."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False


def linear_module_names(model: nn.Module) -> list[str]:
    """Sorted distinct last-name parts of every nn.Linear in a model (what target_modules may name)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear)})


def inject_lora(model: nn.Module, target_modules: Sequence[str], r: int = 8, alpha: float = 16,
                dropout: float = 0.0, seed: int = 0) -> list[str]:
    """Freeze the model and wrap every nn.Linear whose last name part is in target_modules; returns the full names."""
    validate_lora_args(r, alpha, dropout)
    if isinstance(target_modules, str) or not target_modules:
        raise ValueError(f"target_modules must be a non-empty list of module names, got {target_modules!r}")
    available = linear_module_names(model)
    unknown = sorted(set(target_modules) - set(available))
    if unknown:
        raise ValueError(f"target_modules must name linear layers of the model; {unknown} not found. "
                         f"Available: {available}")
    model.requires_grad_(False)
    torch.manual_seed(seed)
    wrapped = []
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in target_modules:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, LoRALinear(module, r=r, alpha=alpha, dropout=dropout))
            wrapped.append(name)
    return wrapped


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Every LoRALinear in a model by its full name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def merge_lora(model: nn.Module) -> int:
    """Merge every LoRALinear of a model into its base weight; returns how many were merged."""
    layers = lora_layers(model)
    for layer in layers.values():
        layer.merge()
    return len(layers)


def unmerge_lora(model: nn.Module) -> int:
    """Undo merge_lora; returns how many layers were unmerged."""
    layers = lora_layers(model)
    for layer in layers.values():
        layer.unmerge()
    return len(layers)


@torch.no_grad()
def copy_lora_into_peft(model: nn.Module, peft_model: nn.Module, adapter: str = "default") -> int:
    """Copy A and B of every from-scratch LoRALinear into the matching peft LoRA layer; returns the count."""
    peft_layers = {name.replace("base_model.model.", "", 1): m for name, m in peft_model.named_modules()
                   if hasattr(m, "lora_A") and isinstance(getattr(m, "lora_A"), nn.ModuleDict)}
    copied = 0
    for name, layer in lora_layers(model).items():
        if name not in peft_layers:
            raise ValueError(f"peft_model must have a LoRA layer named {name!r}; it has {sorted(peft_layers)}")
        target = peft_layers[name]
        target.lora_A[adapter].weight.copy_(layer.lora_A)
        target.lora_B[adapter].weight.copy_(layer.lora_B)
        copied += 1
    return copied


def lora_param_count(d_in: int, d_out: int, r: int, n_matrices: int = 1) -> int:
    """Trainable LoRA parameters for n_matrices weight matrices of shape (d_out, d_in): n * r * (d_in + d_out).

    >>> lora_param_count(4096, 4096, r=8)
    65536
    """
    for pname, value in [("d_in", d_in), ("d_out", d_out), ("r", r), ("n_matrices", n_matrices)]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{pname} must be an int >= 1, got {value!r}")
    return n_matrices * r * (d_in + d_out)


def multi_tenant_params(d_in: int, d_out: int, r: int, customers: int) -> tuple[int, int]:
    """(merged, adapters): parameters to keep one merged copy per customer vs one base plus one adapter each."""
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 1:
        raise ValueError(f"customers must be an int >= 1, got {customers!r}")
    per_adapter = lora_param_count(d_in, d_out, r)
    return customers * d_in * d_out, d_in * d_out + customers * per_adapter
