"""Training a LoRA adapter: the peft config of the kit's finetunes, batching, the answer-only loss and the loop.

Task-neutral: a task supplies encoded examples ({'input_ids', 'labels'}); chapter 05's orders use
`tasks.orders.encode_examples`, chapter 12's SFT and DPO `posttraining`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from llmlab.lora.layers import validate_lora_args
from llmlab.tokens import pad_token_id

TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def lora_config(r: int = 8, alpha: int = 16, dropout: float = 0.05, last_layers: int = 10, num_layers: int = 30):
    """The peft LoraConfig of the kit's finetunes (ch05, ch12): every linear layer of the last `last_layers` blocks.

    Adapting only the top blocks means backpropagation stops there, which keeps CPU training affordable.
    """
    from peft import LoraConfig

    validate_lora_args(r, alpha, dropout)
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be an int >= 1, got {num_layers!r}")
    if not isinstance(last_layers, int) or not 1 <= last_layers <= num_layers:
        raise ValueError(f"last_layers must be an int in [1, {num_layers}], got {last_layers!r}")
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(TARGET_MODULES),
                      layers_to_transform=list(range(num_layers - last_layers, num_layers)),
                      bias="none", task_type="CAUSAL_LM")


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


def train_adapter(model, tokenizer, encoded: Sequence[dict[str, list[int]]], steps: int, batch_size: int = 8,
                  lr: float = 2e-3, seed: int = 0, log_every: int = 0, max_cpu_seconds: float = math.inf) -> TrainLog:
    """Train the model's trainable parameters (its LoRA adapter) with AdamW on encoded examples.

    `encoded` holds {'input_ids', 'labels'} dicts (labels -100 where nothing is learned), e.g.
    `tasks.orders.encode_examples`; the tokenizer gives the pad id.

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
    if not encoded:
        raise ValueError("encoded must contain at least one example, got []")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters: add a LoRA adapter first")
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
