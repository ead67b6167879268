"""Evaluation: language-model metrics, text metrics, code execution and pass@k, LLM judges, rankings, statistics.

One module per concern: `lm` (logprobs, perplexity, cross-entropy, bits per character/byte), `text` (exact,
contains, token F1, edit distance, BLEU, ROUGE-L, semantic similarity), `code` (pass@k, sandboxed execution),
`judge` (1-5 and A/B judging, position bias, Cohen's kappa), `ranking` (Elo, Bradley-Terry), `stats` (bootstrap,
sample sizes, Simpson's paradox). The language-model metrics are also importable from here, as other chapters do:
`evaluation.perplexity(model, tokenizer, text)`.
"""

from llmlab.evaluation import code, judge, lm, ranking, stats, text
from llmlab.evaluation.lm import (
    TextScore,
    bits_per_byte,
    bits_per_character,
    cross_entropy,
    perplexity,
    perplexity_from_logprobs,
    score_text,
    sequence_logprob,
    text_logprobs,
    token_logprobs,
)

__all__ = ["code", "judge", "lm", "ranking", "stats", "text", "TextScore", "bits_per_byte", "bits_per_character",
           "cross_entropy", "perplexity", "perplexity_from_logprobs", "score_text", "sequence_logprob",
           "text_logprobs", "token_logprobs"]
