"""The runnable examples in the docstrings of the functions the notebooks teach (no model, a second or two)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "llmlab.bpe", "llmlab.memory", "llmlab.quantization.tensor", "llmlab.quantization.nf4",
    "llmlab.evaluation.text", "llmlab.evaluation.code", "llmlab.evaluation.lm", "llmlab.evaluation.ranking",
    "llmlab.evaluation.judge", "llmlab.evaluation.stats", "llmlab.retrieval.chunking", "llmlab.retrieval.bm25",
    "llmlab.retrieval.hybrid", "llmlab.retrieval.metrics", "llmlab.retrieval.dense", "llmlab.serving.roofline",
    "llmlab.serving.cost", "llmlab.prompting", "llmlab.posttraining", "llmlab.lora.layers", "llmlab.lora.rank",
    "llmlab.data_engineering.text", "llmlab.data_engineering.minhash", "llmlab.data_engineering.decontamination",
    "llmlab.sampling.processors", "llmlab.sampling.loops", "llmlab.attention", "llmlab.kv_cache", "llmlab.structured",
    "llmlab.speculative.rejection", "llmlab.tokens", "llmlab.models", "llmlab.prepack",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"


def test_about_forty_taught_functions_have_examples():
    finder = doctest.DocTestFinder()
    with_examples = {t.name for name in MODULES for t in finder.find(importlib.import_module(name)) if t.examples}
    assert len(with_examples) >= 40, sorted(with_examples)
