"""Library backends: bitsandbytes 8-bit/NF4 loading and GGUF files dequantized with the gguf package."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from llmlab import models
from llmlab.kit.fetch import fetch
from llmlab.quantization.tensor import valid_bits


def bnb_status() -> tuple[bool, str]:
    """Whether bitsandbytes is importable here, and its version or the import error."""
    try:
        import bitsandbytes
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available", with the reason
        return False, f"bitsandbytes not importable: {type(exc).__name__}: {exc}"
    return True, f"bitsandbytes {bitsandbytes.__version__}"


@contextlib.contextmanager
def _quiet_bitsandbytes() -> Iterator[None]:
    """Silence bitsandbytes' per-call 'inputs will be cast to float16' warnings."""
    logger = logging.getLogger("bitsandbytes")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _source(name: str) -> str:
    """A folder for from_pretrained: a registered model's cache folder, or the name itself."""
    return str(fetch(name)) if name in models.MODELS else name


def bnb_config(bits: int = 4, compute_dtype: torch.dtype = torch.float32, double_quant: bool = False):
    """The bitsandbytes config: 8-bit LLM.int8(), or 4-bit NF4 weights with `compute_dtype` matmuls (and double
    quantization of the block scales when asked); the kit's one NF4 recipe."""
    from transformers import BitsAndBytesConfig

    valid_bits(bits, (4, 8))
    if not isinstance(compute_dtype, torch.dtype) or not compute_dtype.is_floating_point:
        raise TypeError(f"compute_dtype must be a floating torch.dtype, got {compute_dtype!r}")
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=double_quant,
                              bnb_4bit_compute_dtype=compute_dtype)


def load_bnb(bits: int = 4, name: str = models.DEFAULT_MODEL, device: str | torch.device | None = None,
             compute_dtype: torch.dtype = torch.float32, double_quant: bool = False,
             dtype: torch.dtype | None = None):
    """Load a model (a registered name or a folder) with bitsandbytes 8-bit (LLM.int8()) or 4-bit NF4 weights
    (`bnb_config`); dtype, if given, is the dtype of the modules left unquantized. Returns the model."""
    from transformers import AutoModelForCausalLM

    config = bnb_config(bits, compute_dtype, double_quant)
    ok, why = bnb_status()
    if not ok:
        raise RuntimeError(why)
    target = models.resolve_device(device)
    extra = {} if dtype is None else {"dtype": dtype}
    with _quiet_bitsandbytes():
        model = AutoModelForCausalLM.from_pretrained(_source(str(name)), quantization_config=config,
                                                     device_map={"": str(target)}, **extra)
    return model.eval()


_GGUF_NAMES = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
               "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
               "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
               "ffn_down": "mlp.down_proj"}


def _hf_name(gguf_name: str) -> str | None:
    """The transformers Llama parameter name of a GGUF tensor name (None for unknown tensors)."""
    if gguf_name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if gguf_name == "output_norm.weight":
        return "model.norm.weight"
    if gguf_name == "output.weight":
        return "lm_head.weight"
    parts = gguf_name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[2] in _GGUF_NAMES:
        return f"model.layers.{parts[1]}.{_GGUF_NAMES[parts[2]]}.{parts[3]}"
    return None


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's rotary re-ordering of q/k rows."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_state_dict(path: str | Path, config) -> tuple[dict[str, torch.Tensor], dict[str, int], int]:
    """Dequantize every tensor of a Llama GGUF with the gguf package: (state dict, tensor types, stored bytes)."""
    from gguf import GGUFReader
    from gguf.quants import dequantize as gguf_dequantize

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path must be an existing .gguf file, got {str(path)!r}")
    reader = GGUFReader(path)
    state, types, stored = {}, {}, 0
    for t in reader.tensors:
        name = _hf_name(t.name)
        if name is None:
            continue
        w = np.asarray(gguf_dequantize(t.data, t.tensor_type), dtype=np.float32)
        w = w.reshape([int(n) for n in reversed(t.shape)]) if w.size == int(np.prod(t.shape)) else w
        if ".attn_q." in t.name:
            w = _unpermute(w, config.num_attention_heads)
        elif ".attn_k." in t.name:
            w = _unpermute(w, config.num_key_value_heads)
        state[name] = torch.from_numpy(w.copy())
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
        stored += int(t.n_bytes)
    return state, types, stored


def load_gguf(path: str | Path, name: str = models.DEFAULT_MODEL):
    """A Llama built from a GGUF dequantized with the gguf package: (fp32 model, tensor types, stored bytes)."""
    from transformers import AutoConfig, LlamaForCausalLM

    config = AutoConfig.from_pretrained(_source(name))
    state, types, stored = gguf_state_dict(path, config)
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise ValueError(f"path does not hold this model's tensors: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    return model.eval(), types, stored


def max_weight_difference(a: nn.Module, b: nn.Module) -> float:
    """Largest |a - b| over the parameters the two models share by name."""
    pb = dict(b.named_parameters())
    diffs = [(p.detach().float() - pb[n].detach().float()).abs().max().item()
             for n, p in a.named_parameters() if n in pb and pb[n].shape == p.shape]
    if not diffs:
        raise ValueError("a and b must share at least one parameter name and shape, got none")
    return max(diffs)
