"""Checks for chapter 07 (speculative decoding) exercises."""

from __future__ import annotations

import torch

from llmlab.checks import Check
from llmlab.speculative import rejection


def check_acceptance_probability(acceptance_probability) -> None:
    """Exercise 07.1: acceptance_probability(p, q) = min(1, p/q) elementwise."""
    with Check("Exercise 07.1 acceptance_probability") as c:
        cases = [
            (torch.tensor([0.4]), torch.tensor([0.8]), "p < q: accept with probability p/q"),
            (torch.tensor([0.6]), torch.tensor([0.2]), "p > q: always accept (probability 1, not p/q = 3)"),
            (torch.tensor([0.3, 0.1, 0.5, 0.0]), torch.tensor([0.3, 0.4, 0.25, 0.2]),
             "four draft tokens at once (p = q, p < q, p > q, p = 0)"),
            (torch.tensor([[0.2, 0.9], [0.5, 0.05]]), torch.tensor([[0.5, 0.3], [0.1, 0.5]]),
             "a (2, 2) batch: elementwise"),
        ]
        for p, q, case in cases:
            got = c.call(acceptance_probability, p.clone(), q.clone(), case=case)
            c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
            c.close(got, rejection.acceptance_probability(p, q), case=case, atol=1e-6)


def check_residual_distribution(residual_distribution) -> None:
    """Exercise 07.2: residual_distribution(p, q) = max(0, p − q) normalised to sum 1 over the last axis."""
    with Check("Exercise 07.2 residual_distribution") as c:
        p = torch.tensor([0.5, 0.2, 0.2, 0.1])
        q = torch.tensor([0.1, 0.6, 0.2, 0.1])
        case = "p = [0.5, 0.2, 0.2, 0.1], q = [0.1, 0.6, 0.2, 0.1]"
        got = c.call(residual_distribution, p.clone(), q.clone(), case=case)
        c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
        c.that(bool((got >= 0).all()), case, "probabilities cannot be negative: keep only max(0, p − q)")
        c.close(got.sum(), 1.0, case=case + " (sum)", atol=1e-5)
        c.close(got, torch.tensor([1.0, 0.0, 0.0, 0.0]), case=case, atol=1e-5)
        gen = torch.Generator().manual_seed(7)
        p = torch.softmax(torch.randn(3, 6, generator=gen) * 2, -1)
        q = torch.softmax(torch.randn(3, 6, generator=gen) * 2, -1)
        case = "a (3, 6) batch of rows"
        got = c.call(residual_distribution, p.clone(), q.clone(), case=case)
        c.that(isinstance(got, torch.Tensor) and tuple(got.shape) == (3, 6), case,
               f"expected shape (3, 6), got {tuple(getattr(got, 'shape', ()))}")
        c.close(got.sum(-1), torch.ones(3), case=case + ": each row must sum to 1 (normalise over the last axis)",
                atol=1e-5)
        c.close(got, rejection.residual_distribution(p, q), case=case, atol=1e-5)


class _Sampler:
    """A deterministic stand-in for torch.multinomial: records the distribution, returns its argmax."""

    def __init__(self):
        self.seen: list[torch.Tensor] = []

    def __call__(self, probs: torch.Tensor) -> int:
        self.seen.append(torch.as_tensor(probs).detach().clone().float())
        return int(torch.as_tensor(probs).argmax())


def _verify_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, list[int], torch.Tensor]]:
    """(case, p, q, draft tokens, coins) with every outcome: all accepted, first/middle rejected, ratios > 1."""
    p = torch.tensor([[0.10, 0.60, 0.20, 0.10],
                      [0.50, 0.10, 0.30, 0.10],
                      [0.05, 0.15, 0.20, 0.60],
                      [0.20, 0.20, 0.50, 0.10]])
    q = torch.tensor([[0.10, 0.30, 0.50, 0.10],
                      [0.25, 0.05, 0.60, 0.10],
                      [0.10, 0.10, 0.20, 0.60]])
    return [
        ("all three accepted (ratios 2, 2, 1): the bonus token comes from p[3]", p, q, [1, 0, 3],
         torch.tensor([0.9, 0.9, 0.9])),
        ("the first draft token rejected (p/q = 0.4, coin 0.7)", p, q, [2, 0, 3], torch.tensor([0.7, 0.1, 0.1])),
        ("the third draft token rejected (p/q = 0.5, coin 0.6)", p, q, [1, 0, 0], torch.tensor([0.2, 0.2, 0.6])),
        ("the second draft token kept: p/q = 0.5 > coin 0.3", p, q, [1, 2, 3], torch.tensor([0.1, 0.3, 0.99])),
        ("a rejection where q/p would have accepted (p/q = 0.4 < coin 0.5 < q/p)", p, q, [2, 2, 3],
         torch.tensor([0.5, 0.1, 0.1])),
        ("a coin exactly at the ratio rejects (keep only when coin < p/q = 0.5)", p, q, [1, 0, 0],
         torch.tensor([0.2, 0.2, 0.5])),
    ]


def _expected_verify(p, q, draft, coins) -> tuple[int, int, torch.Tensor]:
    """The reference (accepted, next token, distribution sampled) for one case."""
    for i, token in enumerate(draft):
        if coins[i] >= min(1.0, float(p[i, token] / q[i, token])):
            dist = rejection.residual_distribution(p[i], q[i])
            return i, int(dist.argmax()), dist
    return len(draft), int(p[len(draft)].argmax()), p[len(draft)]


def check_verify_step(verify_step) -> None:
    """Exercise 07.3: verify_step(p, q, draft_tokens, coins, sample) -> (accepted, next token)."""
    with Check("Exercise 07.3 verify_step") as c:
        for case, p, q, draft, coins in _verify_cases():
            sampler = _Sampler()
            got = c.call(verify_step, p.clone(), q.clone(), list(draft), coins.clone(), sampler, case=case)
            want_n, want_token, want_dist = _expected_verify(p, q, draft, coins)
            c.that(isinstance(got, tuple) and len(got) == 2, case,
                   f"return a tuple (number accepted, next token), got {got!r}")
            n, token = got
            c.equal(int(n) if isinstance(n, (int, torch.Tensor)) else n, want_n, case=case + " (number accepted)")
            c.that(len(sampler.seen) == 1, case, f"call sample(...) exactly once per verify step (for the "
                   f"correction or the bonus token), it was called {len(sampler.seen)} times")
            what = "p[γ] (the bonus token)" if want_n == len(draft) else f"the normalised residual of row {want_n}"
            c.close(sampler.seen[0], want_dist, case=case + f": sample must be given {what}", atol=1e-5)
            c.equal(int(token) if isinstance(token, (int, torch.Tensor)) else token, want_token,
                    case=case + " (next token)")


def check_expected_tokens_per_step(expected_tokens_per_step) -> None:
    """Exercise 07.4: expected tokens per target pass (1 − α^(γ+1)) / (1 − α), and γ + 1 when α = 1."""
    cases = [(0.0, 4, "α = 0: only the target's own token"), (0.5, 1, "α = 0.5, γ = 1"),
             (0.8, 4, "α = 0.8, γ = 4"), (0.6, 7, "α = 0.6, γ = 7"),
             (1.0, 5, "α = 1: every draft token and the bonus (γ + 1)")]
    with Check("Exercise 07.4 expected_tokens_per_step") as c:
        for alpha, gamma, case in cases:
            got = c.call(expected_tokens_per_step, alpha, gamma, case=case)
            c.close(got, rejection.expected_tokens_per_step(alpha, gamma), case=case, atol=1e-9, rtol=1e-9)


def loop_target():
    """The fixtures' tiny Llama (vocab 16) with its layer weights scaled ×15 so greedy output depends on context."""
    from dataclasses import replace

    from llmlab import attention
    from llmlab.kit import fixtures

    w = attention.from_model(fixtures.tiny_model(seed=0, vocab_size=16), max_positions=64)
    norms = ("attn_norm", "mlp_norm")
    layers = [attention.Layer(**{n: t if n in norms else t * 15 for n, t in vars(layer).items()}) for layer in w.layers]
    return replace(w, layers=layers)


def _loop_cases(target) -> list[tuple[str, object, list[int], int, int, int | None]]:
    """(case, drafter factory, prompt, max_new_tokens, γ, eos) covering bonus, budget, rollbacks and EOS."""
    from llmlab import speculative

    perfect = lambda: speculative.ModelDraft(target)  # noqa: E731 - the target drafting for itself
    shallow = lambda: speculative.ModelDraft(speculative.early_exit(target, 1))  # noqa: E731
    prompt = [1, 5, 7, 3, 5, 9]
    plain = speculative.target_only(target, torch.tensor([prompt]), 6).token_ids
    eos = next(t for i, t in enumerate(plain) if i in (1, 2) and t not in plain[:i])
    return [
        ("a perfect draft (the target itself), γ = 4, 12 new tokens: every step fully accepted plus the bonus "
         "token; the last step may draft only 1 so it cannot overshoot", perfect, prompt, 12, 4, None),
        ("a perfect draft, γ = 3, 13 new tokens (the last pass drafts nothing)", perfect, prompt, 13, 3, None),
        ("an early-exit draft (the target's first layer), γ = 3, 14 new tokens: rejections in the middle of "
         "steps, both KV caches rolled back", shallow, prompt, 14, 3, None),
        ("prompt lookup (NgramDraft), γ = 3, 13 new tokens", speculative.NgramDraft, [1, 5, 9, 5, 8, 10, 4, 1, 5],
         13, 3, None),
        (f"a perfect draft, γ = 4, eos_token_id = {eos}: the EOS is an accepted draft token in the middle of the "
         f"first step; stop right after it and keep it", perfect, prompt, 12, 4, eos),
    ]


_LOOP_REFERENCE: list = []


def _loop_reference() -> list:
    """The target and, per case, the package's greedy speculative run (computed once per session)."""
    from llmlab import speculative

    if not _LOOP_REFERENCE:
        target = loop_target()
        for case, make_draft, prompt, max_new, gamma, eos in _loop_cases(target):
            ids = torch.tensor([prompt])
            want = speculative.generate(target, make_draft(), ids, max_new, gamma=gamma, eos_token_id=eos)
            plain = speculative.target_only(target, ids, max_new, eos_token_id=eos).token_ids
            assert want.token_ids == plain, "the package's speculative.generate must equal plain greedy decoding"
            _LOOP_REFERENCE.append((target, case, make_draft, prompt, max_new, gamma, eos, plain,
                                    [s.accepted for s in want.steps]))
    return _LOOP_REFERENCE


class _TimeLimit:
    """Fail the case when the learner's loop runs longer than `seconds` (a loop that adds no token never ends)."""

    def __init__(self, check: Check, case: str, seconds: float = 5.0):
        self.check, self.case, self.seconds, self.saved = check, case, seconds, None

    def _expired(self, signum, frame) -> None:
        self.check.fail(self.case, f"your loop did not finish within {self.seconds:g} s: does every target pass add "
                                   f"at least one token (the correction, or the bonus when all drafts are kept)?")

    def __enter__(self) -> "_TimeLimit":
        import signal
        import threading

        if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
            self.saved = signal.signal(signal.SIGALRM, self._expired)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc) -> bool:
        import signal

        if self.saved is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.saved)
        return False


def check_speculative_loop(speculative_generate) -> None:
    """Exercise 07.5: the greedy draft → verify → roll-back loop gives speculative.generate's tokens and counts."""
    with Check("Exercise 07.5 speculative_generate") as c:
        for target, case, make_draft, prompt, max_new, gamma, eos, plain, want_accepted in _loop_reference():
            with torch.inference_mode(), _TimeLimit(c, case):
                got = c.call(speculative_generate, target, make_draft(), list(prompt), max_new, gamma, eos,
                             case=case)
            c.that(isinstance(got, tuple) and len(got) == 2, case,
                   f"return a tuple (new tokens, accepted counts), got {type(got).__name__}")
            tokens, accepted = got
            c.that(isinstance(tokens, list) and all(isinstance(t, int) for t in tokens), case,
                   f"new tokens must be a list of int, got {tokens!r}")
            c.that(tokens[:len(prompt)] != prompt or plain[:len(prompt)] == prompt, case,
                   "return only the new tokens, not the prompt followed by them")
            c.that(len(tokens) <= max_new, case,
                   f"at most max_new_tokens = {max_new} new tokens, got {len(tokens)}: draft at most "
                   f"max_new_tokens − generated − 1 tokens so accepted + 1 never overshoots")
            c.equal(tokens, plain, case=case + " — new tokens must equal plain greedy decoding")
            c.that(isinstance(accepted, list), case, f"accepted counts must be a list, got {type(accepted).__name__}")
            c.equal([int(n) for n in accepted], want_accepted,
                    case=case + " — draft tokens accepted at each target pass (one entry per pass)")
