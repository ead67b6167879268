"""Logits processors (temperature, top-k, top-p, min-p, repetition penalty) and decoding loops over a causal LM.

One concern per module: `settings` (argument checks, SamplingSettings), `processors` (the logits processors and
their chain), `loops` (decode, stream, beam search), `engine` (the forward pass under the loops: the kit's own
with its KV cache for a plain Llama) and `selection` (best-of-N, majority vote, self-consistency).
Every public name is importable from here.
"""

from llmlab.sampling import engine  # noqa: F401 - a submodule, imported for sampling.engine
from llmlab.sampling.loops import (
    Beam,
    ChooseFn,
    Generation,
    StreamedToken,
    beam_search,
    decode,
    greedy,
    pick_token,
    sample,
    stream,
)
from llmlab.sampling.processors import (
    apply_temperature,
    min_p_filter,
    probabilities_vs_temperature,
    process_logits,
    repetition_penalty,
    sampling_distribution,
    softmax_with_temperature,
    top_k_filter,
    top_p_filter,
)
from llmlab.sampling.selection import (
    Vote,
    accuracy_vs_n,
    best_of_n,
    distinct_n,
    first_word,
    majority_vote,
    select_best,
    self_consistency,
)
from llmlab.sampling.settings import (
    NEG_INF,
    SamplingSettings,
    validate_min_p,
    validate_penalty,
    validate_temperature,
    validate_top_k,
    validate_top_p,
)

__all__ = [
    "NEG_INF", "Beam", "ChooseFn", "Generation", "SamplingSettings", "StreamedToken", "Vote", "accuracy_vs_n",
    "apply_temperature", "beam_search", "best_of_n", "decode", "distinct_n", "first_word", "greedy",
    "majority_vote", "min_p_filter", "pick_token", "probabilities_vs_temperature", "process_logits",
    "repetition_penalty", "sample", "sampling_distribution", "select_best", "self_consistency",
    "softmax_with_temperature", "stream", "top_k_filter", "top_p_filter", "validate_min_p", "validate_penalty",
    "validate_temperature", "validate_top_k", "validate_top_p",
]
