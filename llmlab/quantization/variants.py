"""The chapter 04 comparison: each variant of a model built, then its memory, perplexity, speed and a sample."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from llmlab import models
from llmlab.evaluation import perplexity
from llmlab.quantization.backends import _quiet_bitsandbytes, load_bnb, load_gguf, max_weight_difference
from llmlab.quantization.modules import memory_footprint, quantize_model

EVAL_TEXT = Path(__file__).parent.parent / "data" / "ch04_eval_text.txt"
ROW_NAMES = ("fp32", "bf16", "int8 (own)", "int4 g128 (own)", "int4 g32 (own)", "int4 g128 affine (own)",
             "int4 g32 affine (own)", "int8 (bitsandbytes)", "nf4 (bitsandbytes)", "q4_1 (gguf)")
OWN_ROWS = tuple(r for r in ROW_NAMES if "bitsandbytes" not in r and "gguf" not in r)
SAMPLE_PROMPT = "Explain in two sentences why the sky is blue."


def eval_text() -> str:
    """The chapter's evaluation text (original prose written for llmlab)."""
    return EVAL_TEXT.read_text(encoding="utf-8")


@dataclass
class Row:
    """One line of the memory/quality table; values are None when the row was skipped (see note)."""

    name: str
    memory_bytes: int | None
    perplexity: float | None
    tokens_per_second: float | None
    sample: str | None
    note: str = ""


def build_variant(row: str, base, name: str = models.DEFAULT_MODEL, gguf_path: str | Path | None = None):
    """The model for one table row, built from the fp32 `base` (copied, never changed); also returns a note."""
    if row not in ROW_NAMES:
        raise ValueError(f"row must be one of {list(ROW_NAMES)}, got {row!r}")
    if row == "fp32":
        return base, ""
    if row == "bf16":
        return copy.deepcopy(base).to(torch.bfloat16), "bf16 weights and compute"
    if row == "int8 (own)":
        return quantize_model(copy.deepcopy(base), 8), "absmax per row, fp16 scales; lm_head/embeddings fp32"
    if row.startswith("int4"):
        g = 128 if "g128" in row else 32
        if "affine" in row:
            return (quantize_model(copy.deepcopy(base), 4, g, scheme="affine"),
                    f"affine (scale + min) groups of {g}, fp16 scales and mins; embeddings fp32")
        return quantize_model(copy.deepcopy(base), 4, g), f"absmax groups of {g}, fp16 scales; embeddings fp32"
    if row == "int8 (bitsandbytes)":
        return load_bnb(8, name, base.device), "LLM.int8(), threshold 6.0"
    if row == "nf4 (bitsandbytes)":
        return load_bnb(4, name, base.device), "NF4 blocks of 64, fp32 compute"
    if gguf_path is None:
        raise ValueError("gguf_path must be given for the 'q4_1 (gguf)' row, got None")
    model, types, stored = load_gguf(gguf_path, name)
    diff = max_weight_difference(model, base)
    note = (f"memory = tensor bytes stored in the GGUF ({', '.join(f'{k}×{v}' for k, v in sorted(types.items()))}); "
            f"run as fp32 after dequantizing; max |w - cached fp32 w| = {diff:.2g}")
    model.llmlab_stored_bytes = stored
    return model.to(base.device), note


def measure_row(row: str, base, tokenizer, text: str, window: int = 512, max_tokens: int | None = None,
                prompt: str = SAMPLE_PROMPT, new_tokens: int = 24, name: str = models.DEFAULT_MODEL,
                gguf_path: str | Path | None = None) -> Row:
    """Memory, perplexity on text, tokens/s and a greedy sample for one row; a failure gives a skipped Row."""
    try:
        model, note = build_variant(row, base, name, gguf_path)
    except Exception as exc:  # noqa: BLE001 - an unavailable backend is reported in the table, not raised
        return Row(row, None, None, None, None, f"skipped: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    with _quiet_bitsandbytes():
        memory = getattr(model, "llmlab_stored_bytes", None) or memory_footprint(model)
        ppl = perplexity(model, tokenizer, text, window, max_tokens)
        speed = models.measure_speed(model, tokenizer, prompt, new_tokens)
    return Row(row, memory, ppl, speed.tokens_per_second, speed.text, note)


def measure_table(rows: Sequence[str] = ROW_NAMES, text: str | None = None, window: int = 512,
                  max_tokens: int | None = None, prompt: str = SAMPLE_PROMPT, new_tokens: int = 24,
                  name: str = models.DEFAULT_MODEL, gguf_path: str | Path | None = None,
                  base=None) -> list[Row]:
    """The chapter's memory/perplexity/speed/sample table, one Row per requested row, measured in one run.

    `base` is an already loaded (fp32 model, tokenizer) to reuse; `text` defaults to the shipped evaluation text.
    """
    unknown = [r for r in rows if r not in ROW_NAMES]
    if unknown or not rows:
        raise ValueError(f"rows must be a non-empty subset of {list(ROW_NAMES)}, got {list(rows)!r}")
    model, tokenizer = base if base is not None else models.load(name, dtype=torch.float32)
    if next(model.parameters()).dtype != torch.float32:
        raise ValueError(f"base must be an fp32 model, got {next(model.parameters()).dtype}")
    text = eval_text() if text is None else text
    torch.manual_seed(0)
    return [measure_row(r, model, tokenizer, text, window, max_tokens, prompt, new_tokens, name, gguf_path)
            for r in rows]


@dataclass
class Fidelity:
    """What one variant's decoder layers weigh and how far its next-token predictions move from the fp32 model's."""

    name: str
    layer_bytes: int
    kl: float
    top1_agreement: float
    note: str = ""


@torch.no_grad()
def fidelity_table(base, tokenizer, rows: Sequence[str] = OWN_ROWS, text: str | None = None,
                   max_tokens: int = 512) -> list[Fidelity]:
    """For each own variant of an fp32 Llama: bytes of its decoder layers, and mean KL(fp32 ‖ variant) per token
    and top-1 agreement with fp32 on the first max_tokens tokens of text (how far quantization moved it)."""
    unknown = [r for r in rows if r not in OWN_ROWS]
    if unknown or not rows:
        raise ValueError(f"rows must be a non-empty subset of {list(OWN_ROWS)}, got {list(rows)!r}")
    if next(base.parameters()).dtype != torch.float32:
        raise ValueError(f"base must be an fp32 model, got {next(base.parameters()).dtype}")
    from llmlab.posttraining import response_kl  # here, not at the top: posttraining -> lora -> quantization

    text = eval_text() if text is None else text
    ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :max_tokens].to(base.device)
    ones = torch.ones_like(ids)
    batch = {"input_ids": ids, "attention_mask": ones, "completion_mask": ones}
    top = base(input_ids=ids).logits[0].argmax(-1)
    out = []
    for row in rows:
        model, note = build_variant(row, base)
        agree = (model(input_ids=ids).logits[0].float().argmax(-1) == top).float().mean().item()
        out.append(Fidelity(row, memory_footprint(model.model.layers), response_kl(base, batch, reference=model),
                            agree, note))
    return out
