"""QLoRA: a 4-bit NF4 base through bitsandbytes with a LoRA adapter trained on top (needs a CUDA GPU)."""

from __future__ import annotations

from pathlib import Path

import torch

from llmlab.tasks.orders import order_lora_config


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
    target = models.resolve_device(device)
    dtype = models.compute_dtype(target)
    model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=nf4_config(dtype), dtype=dtype,
                                                 device_map={"": target})
    return model.eval(), AutoTokenizer.from_pretrained(folder)


def qlora_model(base, config=None):
    """Wrap a 4-bit base for training (peft's prepare_model_for_kbit_training) and add the LoRA adapter."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    prepared = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
    return get_peft_model(prepared, order_lora_config() if config is None else config)
