"""Tiny models built in code for fast tests and exercise checks: no fetch, no files, seeded."""

from __future__ import annotations

import torch


def tiny_tokenizer():
    """A byte-level tokenizer built in code (259 ids: 3 specials + 256 bytes) with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(specials + sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return tok


def tiny_model(seed: int = 0, vocab_size: int = 259, hidden_size: int = 64, num_layers: int = 2,
               num_heads: int = 4, num_kv_heads: int = 2, intermediate_size: int = 128):
    """A randomly initialised tiny Llama (same architecture as SmolLM2) for fast tests; no fetch."""
    from transformers import LlamaConfig, LlamaForCausalLM

    for pname, value in [("vocab_size", vocab_size), ("hidden_size", hidden_size), ("num_layers", num_layers),
                         ("num_heads", num_heads), ("num_kv_heads", num_kv_heads),
                         ("intermediate_size", intermediate_size)]:
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{pname} must be a positive int, got {value!r}")
    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ValueError(f"hidden_size must be divisible by num_heads and num_heads by num_kv_heads, got "
                         f"hidden_size={hidden_size}, num_heads={num_heads}, num_kv_heads={num_kv_heads}")
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
                         num_hidden_layers=num_layers, num_attention_heads=num_heads,
                         num_key_value_heads=num_kv_heads, max_position_embeddings=512,
                         tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def perturbed(model, scale: float = 0.3, seed: int = 0):
    """A copy of the model with every weight nudged by seeded noise (an untrained tiny model repeats one byte)."""
    import copy

    copied = copy.deepcopy(model)
    noise = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in copied.parameters():
            p.add_(torch.randn(p.shape, generator=noise) * scale)
    return copied
