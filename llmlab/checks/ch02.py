"""Checks for chapter 02 (decoding and sampling) exercises."""

from __future__ import annotations

import functools

import torch

from llmlab import sampling, structured
from llmlab.checks import Check
from llmlab.kit import fixtures

_GEN = 2


def _logits(*shape: int) -> torch.Tensor:
    """Reproducible random logits."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(_GEN + sum(shape))) * 2


def _kept(c: Check, got, expected: torch.Tensor, case: str, original: torch.Tensor | None = None) -> None:
    """Compare filtered logits: same kept set (finite) and same values there; removed ones must be -inf."""
    c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
    c.that(tuple(got.shape) == tuple(expected.shape), case,
           f"shape: expected {tuple(expected.shape)}, got {tuple(got.shape)}")
    removed = torch.isinf(expected)
    if original is not None and not torch.equal(got, expected):
        if torch.equal(got.sort(dim=-1, descending=True).values, expected.sort(dim=-1, descending=True).values):
            c.fail(case, "your values are right but in the wrong places: keep every logit at its own index "
                         "(the vocabulary order), do not return them sorted")
    bad_zero = (got[removed] == 0).sum()
    c.that(not (bool(bad_zero) and not bool((got == float("-inf")).any())), case,
           "removed tokens must be set to -inf (so softmax gives them probability 0), not 0")
    wrongly_removed = (~torch.isfinite(got) & ~removed).nonzero().tolist()
    wrongly_kept = (torch.isfinite(got) & removed).nonzero().tolist()
    if wrongly_removed or wrongly_kept:
        parts = []
        if wrongly_removed:
            parts.append(f"removed {len(wrongly_removed)} token(s) that must be kept (index {wrongly_removed[:4]})")
        if wrongly_kept:
            parts.append(f"kept {len(wrongly_kept)} token(s) that must be removed (index {wrongly_kept[:4]})")
        c.fail(case, f"expected {int((~removed).sum())} kept, got {int(torch.isfinite(got).sum())}: "
                     + "; ".join(parts))
    c.that(bool((got[removed] == float("-inf")).all()), case,
           "removed tokens must be set to -inf (so softmax gives them probability 0)")
    c.close(got[~removed], expected[~removed], case=case + " (kept logits must stay unchanged)")


def check_softmax_with_temperature(softmax_with_temperature) -> None:
    """Exercise 02.1: softmax(logits / T) along the last axis, for T > 0."""
    with Check("Exercise 02.1 softmax_with_temperature") as c:
        case = "AI Engineering's example [1, 2] at T=1"
        c.close(c.call(softmax_with_temperature, torch.tensor([1.0, 2.0]), 1.0, case=case),
                torch.tensor([0.2689, 0.7311]), case=case, atol=1e-4)
        case = "AI Engineering's example [1, 2] at T=0.5"
        c.close(c.call(softmax_with_temperature, torch.tensor([1.0, 2.0]), 0.5, case=case),
                torch.tensor([0.1192, 0.8808]), case=case, atol=1e-4)
        for shape, t in [((3, 6), 0.3), ((3, 6), 1.0), ((2, 5), 2.5), ((2, 3, 4), 0.7)]:
            logits = _logits(*shape)
            case = f"batch {shape} at T={t}"
            got = c.call(softmax_with_temperature, logits.clone(), t, case=case)
            c.that(isinstance(got, torch.Tensor) and tuple(got.shape) == shape, case,
                   f"expected a tensor of shape {shape}, got {tuple(getattr(got, 'shape', ())) or type(got).__name__}")
            c.that(bool(torch.allclose(got.sum(-1), torch.ones(shape[:-1]), atol=1e-4)), case,
                   "each row (the last axis) must sum to 1: softmax over the vocabulary, not over the batch")
            c.close(got, torch.softmax(logits / t, dim=-1), case=case)
        case = "large logits [1000, 999] at T=0.5"
        got = c.call(softmax_with_temperature, torch.tensor([1000.0, 999.0]), 0.5, case=case)
        c.close(got, torch.softmax(torch.tensor([2000.0, 1998.0]), -1), case=case + " (no overflow: subtract the max)")


def check_top_k_filter(top_k_filter) -> None:
    """Exercise 02.2: keep the k largest logits per row (ties with the k-th kept), set the rest to -inf."""
    with Check("Exercise 02.2 top_k_filter") as c:
        cases = [(_logits(8), 1, "logits (8,), k=1"), (_logits(8), 3, "logits (8,), k=3"),
                 (_logits(2, 10), 4, "batch (2, 10), k=4 (per row)"), (_logits(3, 5), 5, "logits (3, 5), k=5 (all)"),
                 (torch.tensor([[9.0, 8.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0]]), 2,
                  "rows on different scales, k=2 (top-k of each row, not of the whole batch)"),
                 (torch.tensor([3.0, 1.0, 2.0, 2.0, 0.0]), 2, "a tie with the k-th largest [3, 1, 2, 2, 0], k=2")]
        for logits, k, case in cases:
            got = c.call(top_k_filter, logits.clone(), k, case=case)
            _kept(c, got, sampling.top_k_filter(logits, k), case, original=logits)


def check_top_p_filter(top_p_filter) -> None:
    """Exercise 02.3: keep the smallest most-likely set whose probability reaches top_p."""
    with Check("Exercise 02.3 top_p_filter") as c:
        probs = torch.tensor([0.15, 0.5, 0.05, 0.3])  # not sorted: keep each logit at its index
        cases = [(probs.log(), p, f"probabilities {probs.tolist()}, top_p={p}") for p in (0.45, 0.79, 0.81, 1.0)]
        exact = torch.tensor([0.25, 0.5, 0.25])
        cases += [(exact.log(), 0.75, "probabilities [0.25, 0.5, 0.25], top_p=0.75 (the first two reach exactly "
                                      "0.75: the third is not needed)"),
                  (exact.log(), 0.3, "probabilities [0.25, 0.5, 0.25], top_p=0.3 (the top token alone is enough)"),
                  (_logits(3, 12), 0.7, "batch (3, 12), top_p=0.7"),
                  (torch.tensor([[5.0, 0.0, 0.0, 0.0], [0.0, 0.1, 0.2, 0.3]]), 0.9,
                   "a confident row and a flat row, top_p=0.9 (each row has its own nucleus)")]
        for logits, p, case in cases:
            got = c.call(top_p_filter, logits.clone(), p, case=case)
            _kept(c, got, sampling.top_p_filter(logits, p), case, original=logits)


def check_min_p_filter(min_p_filter) -> None:
    """Exercise 02.4: drop tokens whose probability is below min_p times the top probability (of the same row)."""
    with Check("Exercise 02.4 min_p_filter") as c:
        probs = torch.tensor([0.1, 0.4, 0.15, 0.3, 0.05])
        cases = [(probs.log(), m, f"probabilities {probs.tolist()}, min_p={m}") for m in (0.1, 0.3, 0.5)]
        exact = torch.tensor([0.5, 0.25, 0.125, 0.125])
        cases += [(exact.log(), 0.5, "probabilities [0.5, 0.25, 0.125, 0.125], min_p=0.5 (0.25 equals the threshold "
                                     "0.5 x 0.5: it is not below it, so it stays)"),
                  (exact.log(), 0.25, "probabilities [0.5, 0.25, 0.125, 0.125], min_p=0.25 (all at or above 0.125)"),
                  (_logits(2, 9), 0.2, "batch (2, 9), min_p=0.2"),
                  (torch.tensor([[6.0, 0.0, 0.0], [0.0, -0.5, -2.0]]), 0.1,
                   "a confident row and a flat row, min_p=0.1 (the threshold uses each row's own top probability)")]
        for logits, m, case in cases:
            got = c.call(min_p_filter, logits.clone(), m, case=case)
            _kept(c, got, sampling.min_p_filter(logits, m), case, original=logits)


def check_select_best(select_best) -> None:
    """Exercise 02.5: index of the candidate with the highest mean logprob per token (the first one on ties)."""
    cases = {
        "short but unlikely vs long and likely": [[-2.0], [-0.5, -0.4, -0.6, -0.5]],
        "three candidates": [[-1.0, -1.2], [-0.3, -2.5, -0.1], [-0.9, -0.8, -0.7, -1.0]],
        "one candidate": [[-0.2, -0.3]],
        "the longest is not the best": [[-0.1, -0.2], [-0.3, -0.3, -0.4, -0.5, -0.6]],
        "the highest minimum is not the best (mean, not worst token)": [[-0.5, -0.5], [-0.01, -0.7]],
        "a tie in the mean (take the first)": [[-3.0], [-1.0, -1.0], [-0.5, -1.5]],
        "the best is the last": [[-1.0], [-2.0, -0.5], [-0.2]],
    }
    with Check("Exercise 02.5 select_best") as c:
        for case, logprobs in cases.items():
            got = c.call(select_best, [list(x) for x in logprobs], case=case)
            c.that(isinstance(got, int) or (hasattr(got, "__index__") and not isinstance(got, float)), case,
                   f"return the index (an int) of the best candidate, got {type(got).__name__} {got!r}")
            c.equal(int(got), sampling.select_best(logprobs), case=case)


def check_choice_mask(choice_mask) -> None:
    """Exercise 02.6: for each token, whether generated + token is still a prefix of some choice."""
    texts = ["p", "pos", "positive", "positives", "n", "neg", "it", "ive", "ive!", "x", " positive", "", "P", "ne"]
    cases = [("", ["positive", "negative"]), ("pos", ["positive", "negative"]), ("neg", ["negative", "neutral"]),
             ("n", ["negative", "neutral"]), ("posit", ["positive"]),
             ("pax", ["positive", "negative"]), ("xyz", ["positive"])]
    with Check("Exercise 02.6 choice_mask") as c:
        for generated, choices in cases:
            case = f"generated {generated!r}, choices {choices}"
            got = c.call(choice_mask, list(texts), generated, list(choices), case=case)
            c.that(isinstance(got, list), case, f"expected a list of bool, got {type(got).__name__}")
            expected = structured.choice_mask(texts, generated, choices)
            c.that(len(got) == len(expected), case, f"expected {len(expected)} values (one per token), got {len(got)}")
            wrong = [t for t, g, e in zip(texts, got, expected) if bool(g) != e]
            if wrong:
                hints = []
                if "" in wrong:
                    hints.append("an empty token adds nothing and must not be allowed")
                if any(t in wrong for t in ("positives", "ive!")):
                    hints.append("a token may not run past the end of the choice")
                if generated in ("pax", "xyz"):
                    hints.append(f"{generated!r} is not the start of any choice, so no token can fix it")
                c.fail(case, f"wrong for tokens {wrong}: expected "
                             f"{ {t: e for t, e in zip(texts, expected) if t in wrong} }"
                             + (f" ({'; '.join(hints)})" if hints else ""))
            c.that(all(isinstance(g, bool) for g in got), case, "each value must be a bool (True or False)")


# ---------------------------------------------------------------- decoding loops on a model

def _first_mismatch(got: list[int], want: list[int]) -> str:
    """Describe where two token lists part."""
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"token {i} differs: expected id {w}, got {g} (expected {want}, got {got})"
    if len(got) > len(want):
        return f"expected {len(want)} tokens, got {len(got)}: you went on after the EOS token or past max_new_tokens"
    return f"expected {len(want)} tokens, got {len(got)}: you stopped early ({want} vs {got})"


def _prompt(tokenizer) -> torch.Tensor:
    """A short fixed prompt as (1, seq) ids."""
    return tokenizer("The sea is", return_tensors="pt")["input_ids"]


@functools.lru_cache(maxsize=1)
def small_model():
    """A tiny random Llama with an untied output layer (so greedy does not just copy the last token), and its
    byte-level tokenizer: the checks run most of their cases on it, to keep real-model forward passes few."""
    model = fixtures.tiny_model(seed=0)
    model.lm_head.weight = torch.nn.Parameter(torch.randn(model.lm_head.weight.shape,
                                                          generator=torch.Generator().manual_seed(0)) * 0.3)
    return model, fixtures.tiny_tokenizer()


def check_generate(generate, model, tokenizer) -> None:
    """Exercise 02.7: generate(model, input_ids, max_new_tokens, settings, eos_token_id, seed) -> new token ids.

    Two cases run on the given (real) model; the others on a tiny model, which catches the same mistakes faster.
    """
    small, small_tok = small_model()
    greedy_small = sampling.decode(small, _prompt(small_tok), 3, sampling.SamplingSettings(temperature=0),
                                   eos_token_id=-1)[0]
    stop = greedy_small.token_ids[1]
    real = (model, _prompt(tokenizer), "your model")
    tiny = (small, _prompt(small_tok), "a tiny random model")
    cases = [  # few tokens each: the loop runs the model without a cache
        (real, "greedy (temperature 0), 3 tokens", sampling.SamplingSettings(temperature=0), 3, -1, 0),
        (real, "T=1.0, top_k=40, seed 0, 3 tokens", sampling.SamplingSettings(temperature=1.0, top_k=40), 3, -1, 0),
        (tiny, "T=0.8, top_p=0.9, seed 3, 4 tokens", sampling.SamplingSettings(temperature=0.8, top_p=0.9), 4, -1, 3),
        (tiny, "greedy + repetition_penalty=1.5 (penalises prompt AND generated tokens), 6 tokens",
         sampling.SamplingSettings(temperature=0, repetition_penalty=1.5), 6, -1, 0),
        (tiny, f"stop on EOS: greedy with eos_token_id={stop}, the 2nd greedy token",
         sampling.SamplingSettings(temperature=0), 5, stop, 0),
        (tiny, "one new token, T=1.5, seed 7", sampling.SamplingSettings(temperature=1.5), 1, -1, 7),
    ]
    with Check("Exercise 02.7 the decode loop") as c:
        for (mdl, ids, which), label, settings, n, eos, seed in cases:
            case = f"{label}, on {which}"
            want = sampling.decode(mdl, ids, n, settings, seed=seed, eos_token_id=eos)[0].token_ids
            with torch.inference_mode():
                got = c.call(generate, mdl, ids.clone(), n, settings, eos, seed, case=case)
            c.that(isinstance(got, list) and all(isinstance(t, int) for t in got), case,
                   f"return the new token ids as a list of int, got {type(got).__name__}"
                   + (f" of {type(got[0]).__name__}" if isinstance(got, (list, tuple)) and got else ""))
            c.that(got == want, case, _first_mismatch(got, want))


def check_beam_search(beam_search, model, tokenizer) -> None:
    """Exercise 02.8: beam_search(model, input_ids, num_beams, max_new_tokens) -> [(token_ids, logprob)], best first."""
    small, small_tok = small_model()
    with Check("Exercise 02.8 beam search") as c:
        for mdl, ids, which, beams, n in [(small, _prompt(small_tok), "a tiny random model", 1, 2),
                                          (model, _prompt(tokenizer), "your model", 2, 3),
                                          (small, _prompt(small_tok), "a tiny random model", 4, 3)]:
            case = f"{beams} beam(s), {n} new tokens, on {which}"
            want = sampling.beam_search(mdl, ids, beams, n, eos_token_id=[])
            with torch.inference_mode():
                got = c.call(beam_search, mdl, ids.clone(), beams, n, case=case)
            c.that(isinstance(got, list) and len(got) == beams, case,
                   f"return a list of {beams} (token_ids, logprob) pairs, got "
                   + (f"{len(got)} items" if isinstance(got, list) else type(got).__name__))
            c.that(all(isinstance(b, tuple) and len(b) == 2 for b in got), case,
                   "each beam must be a tuple (token_ids, logprob)")
            got_ids = [list(map(int, b[0])) for b in got]
            want_ids = [b.token_ids for b in want]
            if got_ids[0] != want_ids[0]:
                c.fail(case, f"best beam: {_first_mismatch(got_ids[0], want_ids[0])}")
            c.that(len(set(map(tuple, got_ids))) == len(got_ids), case,
                   "two beams are identical: at the first step only the prompt itself is a beam (start with one "
                   "beam, or give the copies a score of -inf)")
            c.that(sorted(map(tuple, got_ids)) == sorted(map(tuple, want_ids)), case,
                   f"wrong set of beams: expected {want_ids}, got {got_ids}")
            c.that(got_ids == want_ids, case, f"return the beams best first: expected order {want_ids}, got {got_ids}")
            for (toks, lp), w in zip(got, want):
                c.close(float(lp), w.logprob, case=case + f", logprob of beam {toks} (the sum of its tokens' "
                                                          "log-probabilities)", atol=2e-3, rtol=1e-4)
