"""QLoRA: a 4-bit NF4 base through bitsandbytes with a LoRA adapter trained on top (needs a CUDA GPU)."""

from __future__ import annotations

from pathlib import Path

import torch

from llmlab.lora.training import lora_config
from llmlab.quantization.backends import bnb_config, load_bnb


def nf4_config(compute_dtype: torch.dtype = torch.bfloat16, double_quant: bool = True):
    """QLoRA's settings of the one NF4 recipe (`quantization.bnb_config`): double quantization, 16-bit compute."""
    return bnb_config(4, compute_dtype, double_quant)


def load_nf4_base(source: str | Path | None = None, device: str | torch.device | None = None):
    """The chapter's model with a QLoRA NF4 base, loaded by `quantization.load_bnb`, and its tokenizer."""
    from transformers import AutoTokenizer

    from llmlab import models

    folder = str(models.model_dir() if source is None else source)
    target = models.resolve_device(device)
    dtype = models.compute_dtype(target)
    model = load_bnb(4, folder, target, compute_dtype=dtype, double_quant=True, dtype=dtype)
    return model, AutoTokenizer.from_pretrained(folder)


def qlora_model(base, config=None):
    """Wrap a 4-bit base for training (peft's prepare_model_for_kbit_training) and add the LoRA adapter."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    prepared = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
    return get_peft_model(prepared, lora_config() if config is None else config)
