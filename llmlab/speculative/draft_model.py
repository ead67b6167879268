"""The kit's draft model for SmolLM2-135M: 2 trained layers on the target's embedding, a reduced-vocabulary head.

No smaller model with SmolLM2's tokenizer is obtainable offline, so benchmarks/train_draft.py trains one by
distillation from the target: its greedy answers to 320 shipped prompts and to 4,000 questions it wrote itself
(llmlab/data/ch07_distill.safetensors), matched token by token to the target's next-token distribution. The draft
reads the target's embedding and predicts over the `vocab_ids` most frequent answer tokens with the matching rows
of the target's (tied) head; both are taken from the target at run time, so only the two layers and the final
norm are shipped (llmlab/data/ch07_draft/, float32, trained in this kit: genuinely full precision, unlike the
target's weights, which were dequantized from 4 bits). draft_config.json records how and where it was trained.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch

from llmlab import validate
from llmlab.attention import LlamaWeights, from_model, load_weights

DRAFT_DIR = Path(__file__).resolve().parent.parent / "data" / "ch07_draft"
PROMPTS = Path(__file__).resolve().parent.parent / "data" / "ch07_prompts.json"
WEIGHTS_FILE = "draft.safetensors"
CONFIG_FILE = "draft_config.json"


def prompts(split: str = "eval") -> list[str]:
    """The shipped prompts: 'eval' (20, for tests and benchmarks) or 'train' (distillation, disjoint from eval)."""
    validate.one_of("split", split, ["eval", "train"])
    return json.loads(PROMPTS.read_text(encoding="utf-8"))[split]


EDITING = Path(__file__).resolve().parent.parent / "data" / "ch07_editing.json"
TASK_TYPES = ("editing", "code", "lists", "open prose")


def editing_tasks(task_type: str | None = None) -> list[dict]:
    """The shipped prompt-lookup task set: {'type', 'prompt'} dicts, all or one type of TASK_TYPES.

    Editing, code fixes and list translations copy most of their answer from the prompt (AI Engineering, ch. 9:
    inference with reference); open prose is the control with nothing to copy.
    """
    if task_type is not None:
        validate.one_of("task_type", task_type, TASK_TYPES)
    tasks = json.loads(EDITING.read_text(encoding="utf-8"))["tasks"]
    return [t for t in tasks if task_type is None or t["type"] == task_type]


def encode(tokenizer, prompt: str) -> torch.Tensor:
    """Chat-formatted prompt ids (1, seq) with the assistant turn opened."""
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                         return_tensors="pt", return_dict=True)["input_ids"]


def draft_config(target_config, layers: int = 2, intermediate_size: int = 768):
    """A LlamaConfig like the target's with fewer layers and a narrower MLP (full vocabulary, untied head)."""
    from transformers import LlamaConfig

    validate.positive_int("layers", layers)
    validate.positive_int("intermediate_size", intermediate_size)
    values = target_config.to_dict()
    for key in ("architectures", "_name_or_path", "_model_name_or_path", "transformers_version", "dtype",
                "torch_dtype", "quantization_config"):
        values.pop(key, None)
    values.update(num_hidden_layers=layers, intermediate_size=intermediate_size, tie_word_embeddings=False)
    return LlamaConfig(**values)


def init_from_target(target_model, layers: int = 2, intermediate_size: int = 768):
    """A draft LlamaForCausalLM whose layers start as the target's first ones (MLP cut to its largest channels)."""
    from transformers import LlamaForCausalLM

    config = draft_config(target_model.config, layers, intermediate_size)
    draft = LlamaForCausalLM(config)
    source = target_model.state_dict()
    state = {}
    for key, value in draft.state_dict().items():
        src = source[key]
        if value.shape != src.shape:  # MLP narrowed: keep the channels with the largest down-projection columns
            channels = _mlp_channels(source, key, intermediate_size)
            src = src[channels] if "down_proj" not in key else src[:, channels]
        state[key] = src.clone()
    draft.load_state_dict(state)
    return draft


def _mlp_channels(state: dict, key: str, keep: int) -> torch.Tensor:
    """Indices of the `keep` MLP channels of one layer with the largest |down column| · |up row|."""
    prefix = key.rsplit("mlp.", 1)[0] + "mlp."
    score = state[prefix + "down_proj.weight"].norm(dim=0) * state[prefix + "up_proj.weight"].norm(dim=1)
    return score.topk(keep).indices.sort().values


def trainable_state(draft_model) -> dict[str, torch.Tensor]:
    """What training changes and what is shipped: the layers and the final norm (not embedding or head)."""
    return {k: v.detach().contiguous() for k, v in draft_model.state_dict().items()
            if k.startswith("model.layers.") or k == "model.norm.weight"}


def save_draft(draft_model, vocab_ids: torch.Tensor, folder: Path = DRAFT_DIR, info: dict | None = None) -> Path:
    """Write the trained layers, final norm and vocab_ids (safetensors) plus the config to `folder`."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = trainable_state(draft_model)
    tensors["vocab_ids"] = vocab_ids.to(torch.int64).contiguous()
    save_file(tensors, str(folder / WEIGHTS_FILE))
    theta = (getattr(draft_model.config, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
    config = {"layers": draft_model.config.num_hidden_layers, "rope_theta": float(theta),
              "intermediate_size": draft_model.config.intermediate_size, **(info or {})}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return folder / WEIGHTS_FILE


def _shipped(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The shipped tensors and config; a clear error when they are missing."""
    from safetensors.torch import load_file

    path = Path(folder) / WEIGHTS_FILE
    if not path.exists():
        raise FileNotFoundError(f"draft weights not found at {path}; train them with: "
                                f"python benchmarks/train_draft.py")
    return load_file(str(path)), json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8"))


def load_draft(target_model=None, tokenizer=None, folder: Path = DRAFT_DIR):
    """The trained draft as a transformers LlamaForCausalLM (float32) and the tokenizer it shares with the target.

    Embedding = the target's; lm_head = the target's head with rows outside the draft's vocabulary set to zero
    (logit 0), so its greedy choices match the fast reduced-head draft. Loads the default model when target_model
    is None. Usable wherever a Llama is: transformers' generate(assistant_model=...), chapter 04's quantizers.
    """
    from transformers import LlamaForCausalLM

    from llmlab import models

    if target_model is None:
        target_model, tokenizer = models.load(device="cpu")
    tensors, info = _shipped(folder)
    vocab_ids = tensors.pop("vocab_ids")
    config = draft_config(target_model.config, info["layers"], info["intermediate_size"])
    draft = LlamaForCausalLM(config)
    embed = target_model.get_input_embeddings().weight.detach().float().cpu()
    head = torch.zeros_like(embed)
    head[vocab_ids] = embed[vocab_ids]
    state = {**tensors, "model.embed_tokens.weight": embed.clone(), "lm_head.weight": head}
    draft.load_state_dict(state)
    draft.generation_config.eos_token_id = target_model.generation_config.eos_token_id
    draft.generation_config.pad_token_id = target_model.generation_config.pad_token_id
    return draft.to(target_model.device).eval(), tokenizer


def trained_draft(target: LlamaWeights, tokenizer=None, folder: Path = DRAFT_DIR, full_head: bool = False):
    """The trained draft as a ModelDraft for the fast loop: target embedding, reduced head (or the full one)."""
    from llmlab.speculative.drafts import ModelDraft, reduced_head

    if not isinstance(target, LlamaWeights):
        raise TypeError(f"target must be llmlab.attention.LlamaWeights, got {type(target).__name__}")
    tensors, info = _shipped(folder)
    vocab_ids = tensors.pop("vocab_ids").to(target.embed.device)
    state = {k: v.to(target.embed.device, target.embed.dtype) for k, v in tensors.items()}
    config = _config_for(target, info)
    state["model.embed_tokens.weight"] = target.embed
    w = load_weights(state, config, max_positions=target.max_positions)
    if full_head:  # share the target's head tensors rather than the copy load_weights made
        w = replace(w, lm_head=target.lm_head, head_rows=target.head_rows)
        return ModelDraft(w, None, tokenizer, name="trained draft, full head")
    return ModelDraft(reduced_head(w, vocab_ids), vocab_ids, tokenizer,
                      name=f"trained draft, {len(vocab_ids)}-token head")


def _config_for(target: LlamaWeights, info: dict):
    """A LlamaConfig-like object for load_weights from the target's sizes and the shipped draft's."""
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=target.vocab_size, hidden_size=target.hidden_size,
                       num_attention_heads=target.num_heads, num_key_value_heads=target.num_kv_heads,
                       head_dim=target.head_dim, intermediate_size=info["intermediate_size"],
                       num_hidden_layers=info["layers"], rms_norm_eps=target.eps, tie_word_embeddings=True,
                       max_position_embeddings=target.max_positions,
                       rope_parameters={"rope_type": "default", "rope_theta": info["rope_theta"]})


def draft_from_model(draft_model, target: LlamaWeights, vocab_ids: torch.Tensor | None = None, tokenizer=None):
    """A ModelDraft from a (training) draft LlamaForCausalLM, with a reduced head over vocab_ids if given."""
    from llmlab.speculative.drafts import ModelDraft, reduced_head

    w = from_model(draft_model, max_positions=target.max_positions)
    if vocab_ids is not None:
        w = reduced_head(w, vocab_ids)
    return ModelDraft(w, vocab_ids, tokenizer)
