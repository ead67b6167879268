"""Shared fixtures: the tiny model and the real model from the cache (the offline guard is in ../conftest.py)."""

from __future__ import annotations

import pytest

from llmlab import models
from llmlab.kit import fetch, fixtures


@pytest.fixture(scope="session")
def tiny():
    """A tiny random Llama and its byte-level tokenizer (no fetch)."""
    return fixtures.tiny_model(), fixtures.tiny_tokenizer()


@pytest.fixture(scope="session")
def real():
    """The real SmolLM2 model and tokenizer from the cache; fails clearly when it was never fetched."""
    ok, why = fetch.verify()
    if not ok:
        pytest.fail(f"real model not available ({why}); run: python -m llmlab fetch")
    return models.load(device="cpu")
