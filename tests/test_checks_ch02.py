"""Check-can-fail tests for chapter 02's exercise checks."""

import math

import pytest
import torch
from checks_harness import CheckCase, make_tests

from llmlab import sampling, structured
from llmlab.checks import CheckFailed, ch02

NEG = float("-inf")

# ---------------------------------------------------------------- 02.1 temperature


def softmax_times_temperature(logits, temperature):
    return torch.softmax(logits * temperature, dim=-1)


def softmax_over_batch_axis(logits, temperature):
    return torch.softmax(logits / temperature, dim=0)


def softmax_ignoring_temperature(logits, temperature):
    return torch.softmax(logits, dim=-1)


def softmax_unstable(logits, temperature):
    e = torch.exp(logits / temperature)
    return e / e.sum(-1, keepdim=True)


def softmax_dim_1(logits, temperature):
    return torch.softmax(logits / temperature, dim=1) if logits.dim() > 1 else torch.softmax(logits / temperature, 0)


def softmax_over_everything(logits, temperature):
    return torch.softmax((logits / temperature).flatten(), 0).view_as(logits)


def temperature_after_softmax(logits, temperature):
    p = torch.softmax(logits, dim=-1) ** (1 / temperature)
    return p / p.sum(-1, keepdim=True) if temperature == 1 else torch.softmax(logits, -1) / temperature


# ---------------------------------------------------------------- 02.2 top-k


def top_k_zeroes_instead_of_inf(logits, k):
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, 0.0)


def top_k_off_by_one(logits, k):
    values = logits.sort(dim=-1, descending=True).values
    kth = values[..., min(k, logits.shape[-1] - 1):min(k, logits.shape[-1] - 1) + 1]
    return logits.masked_fill(logits < kth, NEG)


def top_k_returns_sorted(logits, k):
    values = logits.sort(dim=-1, descending=True).values
    return values.masked_fill(values < values[..., k - 1:k], NEG)


def top_k_over_whole_batch(logits, k):
    kth = logits.flatten().topk(k).values[-1]
    return logits.masked_fill(logits < kth, NEG)


def top_k_drops_ties(logits, k):
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, logits.topk(k, dim=-1).indices, True)
    return logits.masked_fill(~keep & (logits <= logits.topk(k, dim=-1).values[..., -1:]), NEG)


def top_k_keeps_smallest(logits, k):
    kth = logits.topk(k, dim=-1, largest=False).values[..., -1:]
    return logits.masked_fill(logits > kth, NEG)


# ---------------------------------------------------------------- 02.3 top-p


def _top_p_with(drop_rule):
    def top_p(logits, top_p):
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = drop_rule(probs, top_p)
        return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), NEG)
    return top_p


top_p_drops_the_crossing_token = _top_p_with(lambda probs, p: probs.cumsum(-1) > p)
top_p_drops_the_crossing_token.__name__ = "top_p_drops_the_crossing_token"
top_p_strict_boundary = _top_p_with(lambda probs, p: (probs.cumsum(-1) - probs) > p)
top_p_strict_boundary.__name__ = "top_p_strict_boundary"
top_p_cumsum_reaches = _top_p_with(lambda probs, p: probs.cumsum(-1) >= p)
top_p_cumsum_reaches.__name__ = "top_p_cumsum_reaches"


def top_p_unsorted_cumsum(logits, top_p):
    probs = logits.softmax(-1)
    return logits.masked_fill(probs.cumsum(-1) - probs >= top_p, NEG)


def top_p_returns_sorted(logits, top_p):
    sorted_logits, _ = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    return sorted_logits.masked_fill(probs.cumsum(-1) - probs >= top_p, NEG)


def top_p_over_whole_batch(logits, top_p):
    flat = logits.reshape(-1)  # one nucleus for the whole batch, not one per row
    sorted_logits, order = flat.sort(descending=True)
    probs = sorted_logits.softmax(-1)
    drop = (probs.cumsum(-1) - probs) >= top_p
    return flat.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), NEG).reshape(logits.shape)


def top_p_shifted_cumsum(logits, top_p):
    """A correct alternative: keep a token while the mass before it is below top_p (cumsum shifted right)."""
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    cum = sorted_logits.softmax(-1).cumsum(-1)
    keep = torch.cat([torch.ones_like(cum[..., :1], dtype=torch.bool), cum[..., :-1] < top_p], dim=-1)
    return logits.masked_fill(~torch.zeros_like(keep).scatter(-1, order, keep), NEG)


def min_p_in_log_space(logits, min_p):
    """A correct alternative: compare log-probabilities with log(min_p) + the row's top log-probability."""
    logprobs = logits.log_softmax(-1)
    return logits.masked_fill(logprobs < math.log(min_p) + logprobs.amax(-1, keepdim=True), NEG)


@pytest.mark.parametrize("check,answer", [(ch02.check_top_p_filter, top_p_shifted_cumsum),
                                          (ch02.check_min_p_filter, min_p_in_log_space)])
def test_checks_pass_correct_alternatives(check, answer, capsys):
    check(answer)
    assert "✔" in capsys.readouterr().out


def top_p_on_logits_not_probabilities(logits, top_p):
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    drop = (sorted_logits.cumsum(-1) - sorted_logits) >= top_p
    return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), NEG)


# ---------------------------------------------------------------- 02.4 min-p


def min_p_absolute_threshold(logits, min_p):
    return logits.masked_fill(logits.softmax(-1) < min_p, NEG)


def min_p_batch_max(logits, min_p):
    probs = logits.softmax(-1)
    return logits.masked_fill(probs < min_p * probs.max(), NEG)


def min_p_at_or_below(logits, min_p):
    probs = logits.softmax(-1)
    return logits.masked_fill(probs <= min_p * probs.amax(-1, keepdim=True), NEG)


def min_p_on_logits(logits, min_p):
    return logits.masked_fill(logits < min_p * logits.amax(-1, keepdim=True), NEG)


def min_p_relative_to_mean(logits, min_p):
    probs = logits.softmax(-1)
    return logits.masked_fill(probs < min_p * probs.mean(-1, keepdim=True) * logits.shape[-1] / 2, NEG)


def min_p_zero_instead_of_inf(logits, min_p):
    probs = logits.softmax(-1)
    return logits.masked_fill(probs < min_p * probs.amax(-1, keepdim=True), 0.0)


# ---------------------------------------------------------------- 02.5 select_best


def select_by_sum(logprobs):
    sums = [sum(x) for x in logprobs]
    return sums.index(max(sums))


def select_longest(logprobs):
    lengths = [len(x) for x in logprobs]
    return lengths.index(max(lengths))


def select_highest_minimum(logprobs):
    mins = [min(x) for x in logprobs]
    return mins.index(max(mins))


def select_last_on_ties(logprobs):
    means = [sum(x) / len(x) for x in logprobs]
    return len(means) - 1 - means[::-1].index(max(means))


def select_returns_the_mean(logprobs):
    return max(sum(x) / len(x) for x in logprobs)


def select_mean_over_longest(logprobs):
    longest = max(len(x) for x in logprobs)  # divides every sum by the longest length: a sum in disguise
    means = [sum(x) / longest for x in logprobs]
    return means.index(max(means))


def select_lowest_mean(logprobs):
    means = [sum(x) / len(x) for x in logprobs]
    return means.index(min(means))


# ---------------------------------------------------------------- 02.6 choice_mask


def mask_ignoring_generated(token_texts, generated, choices):
    return [any(c.startswith(t) for c in choices) for t in token_texts]


def mask_token_is_a_choice(token_texts, generated, choices):
    return [generated + t in choices for t in token_texts]


def mask_slices_by_length(token_texts, generated, choices):
    return [bool(t) and any(c[len(generated):].startswith(t) for c in choices) for t in token_texts]


def mask_allows_empty_token(token_texts, generated, choices):
    return [any(c.startswith(generated + t) for c in choices) for t in token_texts]


def mask_allows_running_past_the_end(token_texts, generated, choices):
    return [bool(t) and any(c.startswith(generated + t) or (generated + t).startswith(c) for c in choices)
            for t in token_texts]


def mask_case_insensitive(token_texts, generated, choices):
    return [bool(t) and any(c.lower().startswith((generated + t).lower()) for c in choices) for t in token_texts]


def mask_as_tensor(token_texts, generated, choices):
    return torch.tensor(structured.choice_mask(token_texts, generated, choices))


# ---------------------------------------------------------------- 02.7 the decode loop


def generate(model, input_ids, max_new_tokens, settings, eos_token_id, seed):
    generator = torch.Generator().manual_seed(seed)
    ids, new = input_ids, []
    for _ in range(max_new_tokens):
        logits = model(ids).logits[:, -1, :].float()
        processed = sampling.process_logits(logits, settings, ids)[0]
        token = int(processed.argmax()) if settings.greedy else \
            int(torch.multinomial(processed.softmax(-1), 1, generator=generator))
        new.append(token)
        if token == eos_token_id:
            break
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return new


def _loop(pick, process=True, stop=True, keep_eos=True, penalise_prompt_only=False, extra=0, as_tensor=False):
    def loop(model, input_ids, max_new_tokens, settings, eos_token_id, seed):
        generator = torch.Generator().manual_seed(seed)
        ids, new = input_ids, []
        for _ in range(max_new_tokens + extra):
            logits = model(ids).logits[:, -1, :].float()
            context = input_ids if penalise_prompt_only else ids
            processed = (sampling.process_logits(logits, settings, context) if process else logits)[0]
            token = pick(processed, settings, generator)
            if token == eos_token_id and stop:
                if keep_eos:
                    new.append(token)
                break
            new.append(token)
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        return torch.tensor(new) if as_tensor else new
    return loop


def _seeded(processed, settings, generator):
    return int(processed.argmax()) if settings.greedy else \
        int(torch.multinomial(processed.softmax(-1), 1, generator=generator))


def _global_rng(processed, settings, generator):
    return int(processed.argmax()) if settings.greedy else int(torch.multinomial(processed.softmax(-1), 1))


def _always_argmax(processed, settings, generator):
    return int(processed.argmax())


loop_without_processors = _loop(_seeded, process=False)
loop_ignores_eos = _loop(_seeded, stop=False)
loop_drops_the_eos_token = _loop(_seeded, keep_eos=False)
loop_with_global_rng = _loop(_global_rng)
loop_always_greedy = _loop(_always_argmax)
loop_penalises_prompt_only = _loop(_seeded, penalise_prompt_only=True)
loop_one_token_too_many = _loop(_seeded, extra=1)
loop_returns_tensor = _loop(_seeded, as_tensor=True)
for _name, _fn in list(globals().items()):
    if _name.startswith("loop_"):
        _fn.__name__ = _name

# ---------------------------------------------------------------- 02.8 beam search


def beam_search(model, input_ids, num_beams, max_new_tokens):
    beams = [([], 0.0)]
    for _ in range(max_new_tokens):
        candidates = []
        for tokens, score in beams:
            ids = torch.cat([input_ids, torch.tensor([tokens], dtype=torch.long)], dim=1)
            logprobs = torch.log_softmax(model(ids).logits[0, -1].float(), dim=-1)
            values, indices = logprobs.topk(num_beams)
            candidates += [(tokens + [int(i)], score + float(v)) for v, i in zip(values, indices)]
        beams = sorted(candidates, key=lambda b: -b[1])[:num_beams]
    return beams


def _beam(start_copies=False, greedy_per_beam=False, use_logits=False, no_reorder=False, worst_first=False,
          mean_score=False):
    def search(model, input_ids, num_beams, max_new_tokens):
        beams = [([], 0.0)] * (num_beams if start_copies else 1)
        for _ in range(max_new_tokens):
            candidates = []
            for b, (tokens, score) in enumerate(beams):
                ids = torch.cat([input_ids, torch.tensor([tokens], dtype=torch.long)], dim=1)
                logits = model(ids).logits[0, -1].float()
                scores = logits if use_logits else torch.log_softmax(logits, dim=-1)
                values, indices = scores.topk(1 if greedy_per_beam and len(beams) == num_beams else num_beams)
                candidates += [(b, tokens + [int(i)], score + float(v)) for v, i in zip(values, indices)]
            best = sorted(candidates, key=lambda c: -c[2])[:num_beams]
            if no_reorder and len(beams) == num_beams:
                best = [(i, beams[i][0] + [c[1][-1]], c[2]) for i, c in enumerate(best)]
            beams = [(t, s) for _, t, s in best]
        if mean_score:
            beams = [(t, s / len(t)) for t, s in beams]
        return beams[::-1] if worst_first else beams
    return search


beam_starting_with_copies = _beam(start_copies=True)
beam_greedy_per_beam = _beam(greedy_per_beam=True)
beam_scoring_logits = _beam(use_logits=True)
beam_without_reordering = _beam(no_reorder=True)
beam_worst_first = _beam(worst_first=True)
beam_mean_score = _beam(mean_score=True)
for _name, _fn in list(globals().items()):
    if _name.startswith("beam_") and _name != "beam_search":
        _fn.__name__ = _name


MODEL = ch02.small_model()

CASES = [
    CheckCase(ch02.check_softmax_with_temperature, sampling.softmax_with_temperature,
              [softmax_times_temperature, softmax_over_batch_axis, softmax_ignoring_temperature, softmax_unstable,
               softmax_over_everything, temperature_after_softmax, softmax_dim_1]),
    CheckCase(ch02.check_top_k_filter, sampling.top_k_filter,
              [top_k_zeroes_instead_of_inf, top_k_off_by_one, top_k_returns_sorted, top_k_over_whole_batch,
               top_k_drops_ties, top_k_keeps_smallest]),
    CheckCase(ch02.check_top_p_filter, sampling.top_p_filter,
              [top_p_drops_the_crossing_token, top_p_strict_boundary, top_p_cumsum_reaches, top_p_unsorted_cumsum,
               top_p_returns_sorted, top_p_on_logits_not_probabilities, top_p_over_whole_batch]),
    CheckCase(ch02.check_min_p_filter, sampling.min_p_filter,
              [min_p_absolute_threshold, min_p_batch_max, min_p_at_or_below, min_p_on_logits, min_p_relative_to_mean,
               min_p_zero_instead_of_inf]),
    CheckCase(ch02.check_select_best, sampling.select_best,
              [select_by_sum, select_longest, select_highest_minimum, select_last_on_ties, select_returns_the_mean,
               select_lowest_mean, select_mean_over_longest]),
    CheckCase(ch02.check_choice_mask, structured.choice_mask,
              [mask_ignoring_generated, mask_token_is_a_choice, mask_slices_by_length, mask_allows_empty_token,
               mask_allows_running_past_the_end, mask_case_insensitive, mask_as_tensor]),
    CheckCase(ch02.check_generate, generate,
              [loop_without_processors, loop_ignores_eos, loop_drops_the_eos_token, loop_with_global_rng,
               loop_always_greedy, loop_penalises_prompt_only, loop_one_token_too_many, loop_returns_tensor],
              args=MODEL),
    CheckCase(ch02.check_beam_search, beam_search,
              [beam_starting_with_copies, beam_greedy_per_beam, beam_scoring_logits, beam_without_reordering,
               beam_worst_first, beam_mean_score], args=MODEL),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)


@pytest.mark.parametrize("wrong,message", [
    (top_k_returns_sorted, "wrong places"), (top_k_zeroes_instead_of_inf, "not 0"),
    (min_p_batch_max, "kept 1 token|removed"), (mask_slices_by_length, "not the start of any choice"),
    (mask_allows_empty_token, "empty token"), (mask_allows_running_past_the_end, "run past the end")])
def test_messages_say_what_is_wrong(wrong, message):
    check = {"top": ch02.check_top_k_filter, "min": ch02.check_min_p_filter, "mas": ch02.check_choice_mask}
    with pytest.raises(CheckFailed, match=message):
        check[wrong.__name__[:3]](wrong)
