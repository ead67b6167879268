"""LoRA from scratch, peft helpers, finetuning memory arithmetic, adapter merging and the chapter 05 task."""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from llmlab.tokens import pad_token_id

# ---------------------------------------------------------------- the chapter 05 task: order text -> JSON

SYSTEM_PROMPT = "Reply with JSON: item, qty (int), color, city, shipping (standard or express)."
ORDER_SPLITS = ("train", "test")


def load_orders(split: str = "train") -> list[dict]:
    """The shipped order-to-JSON examples of one split: dicts with 'text' and 'target'."""
    if split not in ORDER_SPLITS:
        raise ValueError(f"split must be one of {list(ORDER_SPLITS)}, got {split!r}")
    path = resources.files("llmlab.data") / f"ch05_orders_{split}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def target_json(target: dict) -> str:
    """The canonical JSON string the model is trained to write for a target dict."""
    if not isinstance(target, dict):
        raise TypeError(f"target must be a dict, got {type(target).__name__}")
    return json.dumps(target)


def order_messages(text: str) -> list[dict]:
    """Chat messages asking the model to turn one order description into JSON."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty str, got {text!r}")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}]


def parse_json_object(reply: str) -> dict | None:
    """The first {...} JSON object in a reply, or None when there is none that parses."""
    if not isinstance(reply, str):
        raise TypeError(f"reply must be a str, got {type(reply).__name__}")
    match = re.search(r"\{.*?\}", reply, flags=re.DOTALL)
    if match is None:
        return None
    try:
        value = json.loads(match.group(0))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def exact_match(replies: Sequence[str], targets: Sequence[dict]) -> float:
    """Share of replies whose first JSON object equals its target dict exactly (keys, values, types)."""
    if len(replies) != len(targets) or not replies:
        raise ValueError(f"replies and targets must be non-empty and of equal length, got {len(replies)} "
                         f"and {len(targets)}")
    return sum(parse_json_object(r) == t for r, t in zip(replies, targets)) / len(replies)


def encode_training_example(tokenizer, text: str, target: dict) -> dict[str, list[int]]:
    """input_ids and labels for one example; the prompt's labels are -100 so only the answer is learned."""
    prompt = tokenizer.apply_chat_template(order_messages(text), add_generation_prompt=True, tokenize=False)
    answer = target_json(target) + "<|im_end|>"
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    return {"input_ids": prompt_ids + answer_ids, "labels": [-100] * len(prompt_ids) + answer_ids}


def collate(batch: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad encoded examples into input_ids, attention_mask and labels tensors."""
    if not batch:
        raise ValueError("batch must contain at least one example, got []")
    width = max(len(b["input_ids"]) for b in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, b in enumerate(batch):
        n = len(b["input_ids"])
        ids[i, :n] = torch.tensor(b["input_ids"])
        labels[i, :n] = torch.tensor(b["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def answer_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Next-token cross-entropy on the labelled (answer) positions only; the vocabulary head runs only there."""
    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = causal.get_decoder()
    hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    labels = batch["labels"][:, 1:]
    keep = labels != -100
    logits = causal.get_output_embeddings()(hidden[:, :-1][keep])
    return nn.functional.cross_entropy(logits.float(), labels[keep])


@dataclass(frozen=True)
class TrainLog:
    """What a training run produced: the loss at every step, the wall time and the process CPU time (all threads)."""

    losses: list[float]
    seconds: float
    cpu_seconds: float


def train_adapter(model, tokenizer, examples: Sequence[dict], steps: int, batch_size: int = 8,
                  lr: float = 2e-3, seed: int = 0, log_every: int = 0, max_cpu_seconds: float = math.inf) -> TrainLog:
    """Train the model's trainable parameters (its LoRA adapter) with AdamW on order examples.

    Stops early, after the step in progress, once the process has used `max_cpu_seconds` of CPU time (summed
    over threads: 2 cores for 10 minutes = 1200), a budget that does not shrink when others share the CPU.
    """
    for pname, value in [("steps", steps), ("batch_size", batch_size)]:
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{pname} must be an int >= 1, got {value!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not max_cpu_seconds > 0:
        raise ValueError(f"max_cpu_seconds must be > 0, got {max_cpu_seconds!r}")
    if not examples:
        raise ValueError("examples must contain at least one example, got []")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters: add a LoRA adapter first")
    encoded = [encode_training_example(tokenizer, e["text"], e["target"]) for e in examples]
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 10) * (1 - s / steps))
    pad_id = pad_token_id(tokenizer)
    model.train()
    losses: list[float] = []
    order = torch.randperm(len(encoded), generator=gen).tolist()
    start, cpu_start = time.perf_counter(), time.process_time()
    for step in range(steps):
        if len(order) < batch_size:
            order += torch.randperm(len(encoded), generator=gen).tolist()
        picked, order = order[:batch_size], order[batch_size:]
        batch = {k: v.to(model.device) for k, v in collate([encoded[i] for i in picked], pad_id).items()}
        loss = answer_loss(model, batch)
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps}  loss {loss.item():.4f}  wall {time.perf_counter() - start:.0f}s  "
                  f"cpu {time.process_time() - cpu_start:.0f}s", flush=True)
        if time.process_time() - cpu_start > max_cpu_seconds:
            break
    model.eval()
    return TrainLog(losses=losses, seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu_start)


@torch.inference_mode()
def generate_replies(model, tokenizer, texts: Sequence[str], max_new_tokens: int = 48,
                     batch_size: int = 16) -> list[str]:
    """Greedy replies to order descriptions, generated in left-padded batches."""
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    prompts = [tokenizer.apply_chat_template(order_messages(t), add_generation_prompt=True, tokenize=False)
               for t in texts]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    pad_id = pad_token_id(tokenizer)
    replies: list[str] = []
    try:
        for i in range(0, len(prompts), batch_size):
            inputs = tokenizer(prompts[i:i + batch_size], return_tensors="pt", padding=True,
                               add_special_tokens=False).to(model.device)
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id)
            replies += tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return [r.strip() for r in replies]


ORDER_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def order_lora_config(r: int = 8, alpha: int = 16, dropout: float = 0.05, last_layers: int = 10,
                      num_layers: int = 30):
    """The peft LoraConfig of the chapter 05 finetune: every linear layer of the last `last_layers` blocks.

    Adapting only the top blocks means backpropagation stops there, which keeps CPU training affordable.
    """
    from peft import LoraConfig

    check_lora_args(r, alpha, dropout)
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be an int >= 1, got {num_layers!r}")
    if not isinstance(last_layers, int) or not 1 <= last_layers <= num_layers:
        raise ValueError(f"last_layers must be an int in [1, {num_layers}], got {last_layers!r}")
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(ORDER_TARGET_MODULES),
                      layers_to_transform=list(range(num_layers - last_layers, num_layers)),
                      bias="none", task_type="CAUSAL_LM")


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


def check_lora_args(r: int, alpha: float, dropout: float) -> None:
    """Raise a clear error unless r >= 1, alpha > 0 and dropout in [0, 1)."""
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"r must be an int >= 1, got {r!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"alpha must be a number > 0, got {alpha!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")


# ---------------------------------------------------------------- LoRA from scratch


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update: y = base(x) + (alpha / r) * B(A(dropout(x)))."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be a torch.nn.Linear, got {type(base).__name__}")
        check_lora_args(r, alpha, dropout)
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
    check_lora_args(r, alpha, dropout)
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


def low_rank_approximation(delta: torch.Tensor, r: int) -> torch.Tensor:
    """The best rank-r approximation of a matrix (truncated SVD, Eckart-Young)."""
    if not isinstance(delta, torch.Tensor) or delta.dim() != 2:
        raise ValueError(f"delta must be a 2-d tensor, got {getattr(delta, 'shape', type(delta).__name__)}")
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= min(delta.shape):
        raise ValueError(f"r must be an int in [1, {min(delta.shape)}], got {r!r}")
    u, s, vh = torch.linalg.svd(delta.double(), full_matrices=False)
    return ((u[:, :r] * s[:r]) @ vh[:r]).to(delta.dtype)


def relative_reconstruction_error(delta: torch.Tensor, ranks: Sequence[int]) -> list[float]:
    """||delta - rank-r approximation||_F / ||delta||_F for each r, from one SVD."""
    if not isinstance(delta, torch.Tensor) or delta.dim() != 2:
        raise ValueError(f"delta must be a 2-d tensor, got {getattr(delta, 'shape', type(delta).__name__)}")
    s = torch.linalg.svdvals(delta.double())
    energy = (s ** 2).flip(0).cumsum(0).flip(0)  # energy[k] = sum of s_i^2 for i >= k
    total = energy[0].item()
    out = []
    for r in ranks:
        if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r <= len(s):
            raise ValueError(f"ranks must be ints in [0, {len(s)}], got {r!r}")
        out.append(math.sqrt(energy[r].item() / total) if r < len(s) else 0.0)
    return out


def one_matrix_update(model, tokenizer, examples: Sequence[dict], module: str, steps: int = 8,
                      batch_size: int = 4, lr: float = 1e-4, seed: int = 0) -> torch.Tensor:
    """The update W_after - W_before that full finetuning (AdamW) makes to one named weight matrix."""
    names = dict(model.named_modules())
    if module not in names or not isinstance(names[module], nn.Linear):
        linear = [n for n, m in names.items() if isinstance(m, nn.Linear)]
        raise ValueError(f"module must name an nn.Linear of the model, got {module!r}; e.g. {linear[-4:]}")
    weight = names[module].weight
    before = weight.detach().clone()
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    model.requires_grad_(False)
    weight.requires_grad_(True)
    try:
        train_adapter(model, tokenizer, examples, steps=steps, batch_size=batch_size, lr=lr, seed=seed)
        delta = weight.detach() - before
    finally:
        with torch.no_grad():
            weight.copy_(before)
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])
    return delta


# ---------------------------------------------------------------- memory arithmetic

GB = 1e9
METHODS = ("full", "lora", "qlora")


def _positive(name: str, value: float) -> None:
    """Raise unless value is a number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")


def weights_gb(params_billion: float, bits: float = 16) -> float:
    """Memory of the weights alone: parameters x bits / 8, in GB (1e9 bytes)."""
    _positive("params_billion", params_billion)
    _positive("bits", bits)
    return params_billion * bits / 8


def inference_memory_gb(params_billion: float, bits: float = 16, overhead: float = 1.2) -> float:
    """Rule-of-thumb serving memory: weights x overhead (20% for KV cache, activations, buffers)."""
    if isinstance(overhead, bool) or not isinstance(overhead, (int, float)) or overhead < 1:
        raise ValueError(f"overhead must be a number >= 1, got {overhead!r}")
    return weights_gb(params_billion, bits) * overhead


def activation_memory_gb(num_layers: int, hidden: int, num_heads: int, seq_len: int, batch: int = 1) -> float:
    """Stored activations of a transformer for backprop at 16 bits, no recomputation: L*s*b*h*(34 + 5*a*s/h) bytes.

    Formula from Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models".
    """
    for pname, value in [("num_layers", num_layers), ("hidden", hidden), ("num_heads", num_heads),
                         ("seq_len", seq_len), ("batch", batch)]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{pname} must be an int >= 1, got {value!r}")
    return num_layers * seq_len * batch * hidden * (34 + 5 * num_heads * seq_len / hidden) / GB


def training_memory_gb(params_billion: float, method: str = "full", bits: float = 16,
                       trainable_billion: float = 0.0, optimizer_states: int = 2,
                       activations_gb: float = 0.0) -> dict[str, float]:
    """Training memory by part (weights, gradients, optimizer, activations, total) in GB.

    full: every parameter has a gradient and `optimizer_states` Adam states, all at `bits`.
    lora / qlora: the base is frozen (no gradient, no state; 4-bit NF4 base for qlora) and only
    `trainable_billion` adapter parameters get a 16-bit gradient and fp32 Adam states.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    _positive("params_billion", params_billion)
    _positive("bits", bits)
    if isinstance(optimizer_states, bool) or not isinstance(optimizer_states, int) or optimizer_states < 0:
        raise ValueError(f"optimizer_states must be an int >= 0, got {optimizer_states!r}")
    for pname, value in [("trainable_billion", trainable_billion), ("activations_gb", activations_gb)]:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{pname} must be a number >= 0, got {value!r}")
    if method == "full":
        parts = {"weights": weights_gb(params_billion, bits), "gradients": weights_gb(params_billion, bits),
                 "optimizer": optimizer_states * weights_gb(params_billion, bits)}
    else:
        base_bits = nf4_bits_per_param() if method == "qlora" else bits
        adapter = trainable_billion
        parts = {"weights": params_billion * base_bits / 8 + adapter * 2,
                 "gradients": adapter * 2, "optimizer": optimizer_states * adapter * 4}
    parts["activations"] = float(activations_gb)
    parts["total"] = sum(parts.values())
    return parts


def nf4_bits_per_param(block: int = 64, double_quant: bool = True, block2: int = 256) -> float:
    """Bits per weight of bitsandbytes NF4: 4 bits + the per-block absmax (fp32, or 8-bit + fp32 per block2 blocks)."""
    for pname, value in [("block", block), ("block2", block2)]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{pname} must be an int >= 1, got {value!r}")
    if double_quant:
        return 4 + 8 / block + 32 / (block * block2)
    return 4 + 32 / block


def lora_param_count(d_in: int, d_out: int, r: int, n_matrices: int = 1) -> int:
    """Trainable LoRA parameters for n_matrices weight matrices of shape (d_out, d_in): n * r * (d_in + d_out)."""
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


# ---------------------------------------------------------------- merging adapters and models


def _check_same_shapes(name: str, tensors: Sequence[torch.Tensor]) -> None:
    """Raise unless tensors is a non-empty sequence of tensors of one shape."""
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise ValueError(f"{name} must be a non-empty list of tensors, got {tensors!r}")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"{name} must all have the same shape, got {sorted(shapes)}")


def task_arithmetic(base: torch.Tensor, task_vectors: Sequence[torch.Tensor],
                    weights: Sequence[float] | None = None) -> torch.Tensor:
    """base + sum_i w_i * tau_i, where tau_i = finetuned_i - base (a linear merge of task vectors)."""
    _check_same_shapes("task_vectors", [base, *task_vectors])
    weights = [1.0] * len(task_vectors) if weights is None else list(weights)
    if len(weights) != len(task_vectors):
        raise ValueError(f"weights must have one entry per task vector ({len(task_vectors)}), got {len(weights)}")
    return base + sum(w * t for w, t in zip(weights, task_vectors))


def concat_lora(adapters: Sequence[tuple[torch.Tensor, torch.Tensor]],
                weights: Sequence[float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One adapter (A, B) of rank sum(r_i) whose B @ A equals sum_i w_i * B_i @ A_i exactly."""
    if not adapters:
        raise ValueError("adapters must be a non-empty list of (A, B) pairs, got []")
    weights = [1.0] * len(adapters) if weights is None else list(weights)
    if len(weights) != len(adapters):
        raise ValueError(f"weights must have one entry per adapter ({len(adapters)}), got {len(weights)}")
    for i, (a, b) in enumerate(adapters):
        if a.dim() != 2 or b.dim() != 2 or b.shape[1] != a.shape[0]:
            raise ValueError(f"adapters[{i}] must be (A of shape (r, d_in), B of shape (d_out, r)), got "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
    return (torch.cat([a for a, _ in adapters], dim=0),
            torch.cat([w * b for (_, b), w in zip(adapters, weights)], dim=1))


def slerp(v0: torch.Tensor, v1: torch.Tensor, t: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation between two weight tensors (treated as flat vectors); lerp when nearly parallel."""
    _check_same_shapes("v0 and v1", [v0, v1])
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 1:
        raise ValueError(f"t must be in [0, 1], got {t!r}")
    a, b = v0.flatten().double(), v1.flatten().double()
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(eps)
    theta = torch.arccos(cos.clamp(-1.0, 1.0))
    if theta.abs() < 1e-4:
        out = (1 - t) * a + t * b
    else:
        out = (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / torch.sin(theta)
    return out.reshape(v0.shape).to(v0.dtype)


def trim_top_k(tau: torch.Tensor, density: float) -> torch.Tensor:
    """TIES step 1: keep the `density` share of entries with the largest magnitude, zero the rest."""
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    k = max(1, math.ceil(density * tau.numel()))
    threshold = tau.abs().flatten().kthvalue(tau.numel() - k + 1).values
    return torch.where(tau.abs() >= threshold, tau, torch.zeros_like(tau))


def elect_sign(trimmed: Sequence[torch.Tensor]) -> torch.Tensor:
    """TIES step 2: per entry, the sign (+1/-1, 0 if none) of the summed trimmed task vectors (the larger mass)."""
    _check_same_shapes("trimmed", trimmed)
    return torch.sign(torch.stack(list(trimmed)).sum(0))


def ties_merge(task_vectors: Sequence[torch.Tensor], density: float = 0.2) -> torch.Tensor:
    """TIES-merging (Yadav et al. 2023): trim, elect sign, then average only the entries agreeing with the sign."""
    _check_same_shapes("task_vectors", task_vectors)
    trimmed = torch.stack([trim_top_k(t, density) for t in task_vectors])
    sign = elect_sign(list(trimmed))
    agree = (torch.sign(trimmed) == sign) & (trimmed != 0)
    count = agree.sum(0).clamp_min(1)
    return (trimmed * agree).sum(0) / count


def dare(tau: torch.Tensor, drop_rate: float, seed: int = 0) -> torch.Tensor:
    """DARE (Yu et al. 2023): drop each entry with probability drop_rate, rescale the rest by 1 / (1 - drop_rate)."""
    if isinstance(drop_rate, bool) or not isinstance(drop_rate, (int, float)) or not 0 <= drop_rate < 1:
        raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate!r}")
    gen = torch.Generator().manual_seed(seed)
    keep = torch.rand(tau.shape, generator=gen) >= drop_rate
    return torch.where(keep, tau / (1 - drop_rate), torch.zeros_like(tau))


# ---------------------------------------------------------------- QLoRA


def nf4_config(compute_dtype: torch.dtype = torch.bfloat16, double_quant: bool = True):
    """The bitsandbytes config of a QLoRA base: 4-bit NF4 weights, double quantization, 16-bit compute."""
    from transformers import BitsAndBytesConfig

    if not isinstance(compute_dtype, torch.dtype) or not compute_dtype.is_floating_point:
        raise TypeError(f"compute_dtype must be a floating torch.dtype, got {compute_dtype!r}")
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=double_quant,
                              bnb_4bit_compute_dtype=compute_dtype)


def load_nf4_base(source: str | Path | None = None, device: str | torch.device | None = None):
    """The chapter's model loaded with a 4-bit NF4 base through bitsandbytes (and its tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmlab import models

    folder = str(models.model_dir() if source is None else source)
    target = models.device() if device is None else torch.device(device)
    dtype = models.compute_dtype(target)
    model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=nf4_config(dtype), dtype=dtype,
                                                 device_map={"": target})
    return model.eval(), AutoTokenizer.from_pretrained(folder)


def qlora_model(base, config=None):
    """Wrap a 4-bit base for training (peft's prepare_model_for_kbit_training) and add the LoRA adapter."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    prepared = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
    return get_peft_model(prepared, order_lora_config() if config is None else config)
