"""Shared fixtures: offline guard, the tiny model, and the real model from the cache."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from llmlab import models  # noqa: E402
from llmlab.netguard import block_network  # noqa: E402

block_network()


@pytest.fixture(scope="session")
def tiny():
    """A tiny random Llama and its byte-level tokenizer (no fetch)."""
    return models.tiny_model(), models.tiny_tokenizer()


@pytest.fixture(scope="session")
def real():
    """The real SmolLM2 model and tokenizer from the cache; fails clearly when it was never fetched."""
    ok, why = models.verify()
    if not ok:
        pytest.fail(f"real model not available ({why}); run: python -m llmlab fetch")
    return models.load(device="cpu")
