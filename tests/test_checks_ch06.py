"""Check-can-fail tests for chapter 06's exercise checks."""

from __future__ import annotations

from collections import Counter
from typing import Literal

import dspy
import numpy as np
import pytest
from checks_harness import CheckCase, make_tests

from llmlab import prompting, sampling
from llmlab.checks import ch06
from llmlab.tasks import tickets

Team = Literal["billing", "shipping", "account", "technical"]


class Route(dspy.Signature):
    """Route the customer message to the team that handles it."""

    message: str = dspy.InputField()
    team: Team = dspy.OutputField()


class Router(dspy.Module):
    def __init__(self, signature=Route):
        super().__init__()
        self.route = dspy.Predict(signature)

    def forward(self, message):
        return self.route(message=message)


class RouteTeamAsInput(dspy.Signature):
    """Route the customer message to the team that handles it."""

    message: str = dspy.InputField()
    team: Team = dspy.InputField()


class RouteFreeText(dspy.Signature):
    """Route the customer message to the team that handles it."""

    message: str = dspy.InputField()
    team: str = dspy.OutputField()


class RouteNoDocstring(dspy.Signature):
    message: str = dspy.InputField()
    team: Team = dspy.OutputField()


class RouteMissingLabel(dspy.Signature):
    """Route the customer message to the team that handles it."""

    message: str = dspy.InputField()
    team: Literal["billing", "shipping", "account"] = dspy.OutputField()


class RouterReturnsString(Router):
    def forward(self, message):
        return self.route(message=message).team


class RouterIgnoresMessage(Router):
    def forward(self, message):
        return self.route(message="a customer message")


class RouterWithoutPredictor(dspy.Module):
    def forward(self, message):
        return dspy.Prediction(team="billing")


def build_router():
    return Router()


def team_as_input():
    return Router(RouteTeamAsInput)


def team_free_text():
    return Router(RouteFreeText)


def no_docstring():
    return Router(RouteNoDocstring)


def missing_label():
    return Router(RouteMissingLabel)


def returns_the_class():
    return Router


def metric_case_sensitive(example, prediction, trace=None):
    return float(prediction.team == example.team)


def metric_substring(example, prediction, trace=None):
    return float(str(prediction.team).strip().lower() in example.team)


def metric_contains(example, prediction, trace=None):
    return float(example.team in tickets.normalize(prediction.team))  # "not billing" contains "billing"


def metric_returns_text(example, prediction, trace=None):
    return "correct" if tickets.normalize(prediction.team) == example.team else "wrong"


def metric_without_trace(example, prediction):
    return tickets.team_metric(example, prediction)


def metric_crashes_on_none(example, prediction, trace=None):
    return float(prediction.team.strip().lower() == example.team)


def few_shot_one_block(instruction, examples, query, input_key="text", output_key="label"):
    demos = "\n".join(f"{e[input_key]} -> {e[output_key]}" for e in examples)
    return [{"role": "system", "content": instruction}, {"role": "user", "content": demos + "\n" + query}]


def few_shot_no_system(instruction, examples, query, input_key="text", output_key="label"):
    return prompting.few_shot_messages(instruction, examples, query, input_key, output_key)[1:]


def few_shot_roles_swapped(instruction, examples, query, input_key="text", output_key="label"):
    out = [{"role": "system", "content": instruction}]
    for e in examples:
        out += [{"role": "assistant", "content": e[input_key]}, {"role": "user", "content": e[output_key]}]
    return out + [{"role": "user", "content": query}]


def few_shot_drops_last_demo(instruction, examples, query, input_key="text", output_key="label"):
    return prompting.few_shot_messages(instruction, examples[:-1] if examples else [], query, input_key,
                                       output_key)


def few_shot_query_first(instruction, examples, query, input_key="text", output_key="label"):
    out = prompting.few_shot_messages(instruction, examples, query, input_key, output_key)
    return [out[0], out[-1]] + out[1:-1]


def few_shot_ignores_keys(instruction, examples, query, input_key="text", output_key="label"):
    return prompting.few_shot_messages(instruction, examples, query)  # always reads "text" and "label"


def few_shot_keys_swapped(instruction, examples, query, input_key="text", output_key="label"):
    return prompting.few_shot_messages(instruction, examples, query, output_key, input_key)


def extract_first_mention(text, labels):
    found = [(text.lower().find(label), label) for label in labels if label in text.lower()]
    return min(found)[1] if found else None


def extract_case_sensitive(text, labels):
    found = [label for label in labels if label in text]
    return found[-1] if found else None


def extract_empty_string(text, labels):
    return prompting.extract_answer(text, labels) or ""


def extract_as_written(text, labels):
    import re
    match = re.search(r"answer:\s*(\w+)", text, re.IGNORECASE)
    return match.group(1) if match else prompting.extract_answer(text, labels)


def _label_after(after, labels):
    import re
    pattern = r"\b(" + "|".join(re.escape(label.lower()) for label in labels) + r")\b"
    found = re.search(pattern, after.lower())
    return next(label for label in labels if label.lower() == found.group(1)) if found else None


def _last_mention(text, labels):
    import re
    pattern = r"\b(" + "|".join(re.escape(label.lower()) for label in labels) + r")\b"
    mentions = re.findall(pattern, text.lower())
    return next(label for label in labels if label.lower() == mentions[-1]) if mentions else None


def extract_first_marker(text, labels):
    marker = text.lower().find("answer:")  # the first "Answer:", not the last
    found = _label_after(text[marker:], labels) if marker >= 0 else None
    return found or _last_mention(text, labels)


def extract_marker_case_sensitive(text, labels):
    marker = text.rfind("Answer:")  # misses "ANSWER:" and "answer:"
    found = _label_after(text[marker:], labels) if marker >= 0 else None
    return found or _last_mention(text, labels)


def extract_none_after_empty_marker(text, labels):
    marker = text.lower().rfind("answer:")
    if marker >= 0:
        return _label_after(text[marker:], labels)  # no fallback to the last mention
    return _last_mention(text, labels)


def extract_lower_cased(text, labels):
    answer = prompting.extract_answer(text, labels)
    return answer.lower() if answer else answer  # not the label as spelled in labels


def extract_next_word(text, labels):
    import re
    match = re.search(r"answer:\s*(\w+)", text[text.lower().rfind("answer:"):], re.IGNORECASE)
    by_lower = {label.lower(): label for label in labels}
    if match and match.group(1).lower() in by_lower:
        return by_lower[match.group(1).lower()]  # one word: a two-word label is never read
    return _last_mention(text, labels)


def extract_substring_earliest(text, labels):
    lowered = text.lower()
    after = lowered[lowered.rfind("answer:"):] if "answer:" in lowered else ""
    found = [(after.find(label.lower()), label) for label in labels if label.lower() in after]
    if found:
        return min(found)[1]  # "accounting" counts as "account"
    mentions = [(lowered.rfind(label.lower()), label) for label in labels if label.lower() in lowered]
    return max(mentions)[1] if mentions else None


def extract_substring_label_order(text, labels):
    lowered = text.lower()
    after = lowered[lowered.rfind("answer:"):] if "answer:" in lowered else ""
    for label in labels:
        if label.lower() in after:  # the first label in label order, as a substring
            return label
    return _last_mention(text, labels)


def extract_label_order_after_marker(text, labels):
    import re
    lowered = text.lower()
    marker = lowered.rfind("answer:")
    if marker >= 0:
        for label in labels:  # the first label of the list that occurs, not the first one written
            if re.search(r"\b" + re.escape(label.lower()) + r"\b", lowered[marker:]):
                return label
    return _last_mention(text, labels)


def extract_by_split(text, labels):
    """A correct alternative: split on the marker (any case), read the tail, else scan every mention."""
    import re
    words = {label.lower(): label for label in labels}
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")\b",
                         re.IGNORECASE)
    tail = re.split(r"answer:", text, flags=re.IGNORECASE)
    if len(tail) > 1 and pattern.search(tail[-1]):
        return words[pattern.search(tail[-1]).group(1).lower()]
    mentions = [m.group(1).lower() for m in pattern.finditer(text)]
    return words[mentions[-1]] if mentions else None


def vote_most_common(replies, labels):
    """A correct alternative: Counter keeps first-seen order, and most_common keeps it on ties."""
    counts = Counter(a for a in (extract_by_split(r, labels) for r in replies) if a is not None)
    return counts.most_common(1)[0] if counts else (None, 0)


def few_shot_comprehension(instruction, examples, query, input_key="text", output_key="label"):
    """A correct alternative written as one expression."""
    turns = [{"role": role, "content": str(e[key])} for e in examples
             for role, key in (("user", input_key), ("assistant", output_key))]
    return [{"role": "system", "content": instruction}, *turns, {"role": "user", "content": query}]


@pytest.mark.parametrize("check,answer", [(ch06.check_extract_answer, extract_by_split),
                                          (ch06.check_vote_over_replies, vote_most_common),
                                          (ch06.check_few_shot_messages, few_shot_comprehension)])
def test_checks_pass_correct_alternatives(check, answer, capsys):
    check(answer)
    assert "✔" in capsys.readouterr().out


def vote_label_order_ties(replies, labels):
    counts = Counter(a for a in (prompting.extract_answer(r, labels) for r in replies) if a is not None)
    if not counts:
        return None, 0
    best = max(counts.values())
    return next(label for label in labels if counts[label] == best), best


def vote_first_to_reach(replies, labels):
    counts, leader = Counter(), (None, 0)
    for answer in (prompting.extract_answer(r, labels) for r in replies):
        if answer is not None:
            counts[answer] += 1
            if counts[answer] > leader[1]:
                leader = (answer, counts[answer])  # a tie goes to whichever reached the count first
    return leader


def vote_latest_on_tie(replies, labels):
    answers = [a for a in (prompting.extract_answer(r, labels) for r in replies) if a is not None]
    if not answers:
        return None, 0
    return sampling.majority_vote(answers[::-1])


def vote_counts_none(replies, labels):
    answers = [prompting.extract_answer(r, labels) for r in replies]
    return Counter(answers).most_common(1)[0]


def vote_alphabetical_ties(replies, labels):
    counts = Counter(a for a in (prompting.extract_answer(r, labels) for r in replies) if a is not None)
    if not counts:
        return None, 0
    best = max(counts.values())
    return min(a for a, v in counts.items() if v == best), best


def vote_first_mention(replies, labels):
    return sampling.majority_vote([extract_first_mention(r, labels) for r in replies])


def vote_answer_only(replies, labels):
    return prompting.vote_over_replies(replies, labels)[0]


def vote_first_reply(replies, labels):
    answer = prompting.extract_answer(replies[0], labels)
    return answer, int(answer is not None)


def detect_always(text):
    return True


def detect_never(text):
    return False


def detect_case_sensitive(text):
    return "ignore" in text and "instructions" in text or "disregard" in text or "override" in text


def detect_word_instructions(text):
    return "instruction" in text.lower() or "system" in text.lower()


def detect_canary_only(text):
    return "pwned" in text.lower()



def knn_solution(train_vectors, train_labels, query_vectors, k):
    order = np.argsort(-(query_vectors @ train_vectors.T), axis=1, kind="stable")[:, :k]
    return [sampling.majority_vote([train_labels[j] for j in row])[0] for row in order]


def knn_farthest(train_vectors, train_labels, query_vectors, k):
    order = np.argsort(query_vectors @ train_vectors.T, axis=1)[:, :k]
    return [sampling.majority_vote([train_labels[j] for j in row])[0] for row in order]


def knn_wrong_axis(train_vectors, train_labels, query_vectors, k):
    sims = query_vectors @ train_vectors.T
    order = np.argsort(-sims, axis=0)[:k].T
    return [sampling.majority_vote([train_labels[j] for j in row if j < len(train_labels)])[0] for row in order]


def knn_nearest_only(train_vectors, train_labels, query_vectors, k):
    return [train_labels[int(i)] for i in np.argmax(query_vectors @ train_vectors.T, axis=1)]


def knn_one_extra(train_vectors, train_labels, query_vectors, k):
    return knn_solution(train_vectors, train_labels, query_vectors, min(k + 1, len(train_labels)))


def knn_one_short(train_vectors, train_labels, query_vectors, k):
    order = np.argsort(-(query_vectors @ train_vectors.T), axis=1)[:, :k - 1]
    return [sampling.majority_vote([train_labels[j] for j in row])[0] for row in order]


def knn_alphabetical_ties(train_vectors, train_labels, query_vectors, k):
    order = np.argsort(-(query_vectors @ train_vectors.T), axis=1)[:, :k]
    out = []
    for row in order:
        counts = Counter(train_labels[j] for j in row)
        best = max(counts.values())
        out.append(min(label for label, n in counts.items() if n == best))
    return out


def knn_ties_by_train_order(train_vectors, train_labels, query_vectors, k):
    order = np.argsort(-(query_vectors @ train_vectors.T), axis=1)[:, :k]
    return [Counter(train_labels[j] for j in sorted(row)).most_common(1)[0][0] for row in order]


def knn_set_ties(train_vectors, train_labels, query_vectors, k):
    out = []
    for row in np.argsort(-(query_vectors @ train_vectors.T), axis=1)[:, :k]:
        labels = [train_labels[j] for j in row]
        out.append(max(set(labels), key=labels.count))  # a tie goes to whichever label the set yields first
    return out


def knn_unsorted_top_k(train_vectors, train_labels, query_vectors, k):
    sims = query_vectors @ train_vectors.T
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else np.argsort(sims, axis=1)
    return [Counter(train_labels[j] for j in row).most_common(1)[0][0] for row in top]


def knn_first_query_only(train_vectors, train_labels, query_vectors, k):
    return knn_solution(train_vectors, train_labels, query_vectors[:1], k)


def knn_indices(train_vectors, train_labels, query_vectors, k):
    return [int(row[0]) for row in np.argsort(-(query_vectors @ train_vectors.T), axis=1)[:, :k]]


def knn_library(train_vectors, train_labels, query_vectors, k):
    return prompting.knn_vote(train_vectors, train_labels, query_vectors, k)

CASES = [
    CheckCase(ch06.check_route_program, build_router,
              [team_as_input, team_free_text, no_docstring, missing_label, returns_the_class, RouterReturnsString,
               RouterIgnoresMessage, RouterWithoutPredictor]),
    CheckCase(ch06.check_team_metric, tickets.team_metric,
              [metric_case_sensitive, metric_substring, metric_contains, metric_returns_text, metric_without_trace,
               metric_crashes_on_none]),
    CheckCase(ch06.check_few_shot_messages, prompting.few_shot_messages,
              [few_shot_one_block, few_shot_no_system, few_shot_roles_swapped, few_shot_drops_last_demo,
               few_shot_query_first, few_shot_ignores_keys, few_shot_keys_swapped]),
    CheckCase(ch06.check_extract_answer, prompting.extract_answer,
              [extract_first_mention, extract_case_sensitive, extract_empty_string, extract_as_written,
               extract_first_marker, extract_marker_case_sensitive, extract_none_after_empty_marker,
               extract_lower_cased, extract_next_word, extract_substring_earliest, extract_substring_label_order,
               extract_label_order_after_marker]),
    CheckCase(ch06.check_vote_over_replies, prompting.vote_over_replies,
              [vote_counts_none, vote_alphabetical_ties, vote_first_mention, vote_answer_only, vote_first_reply,
               vote_label_order_ties, vote_first_to_reach, vote_latest_on_tie]),
    CheckCase(ch06.check_detect_injection, prompting.detect_injection,
              [detect_always, detect_never, detect_case_sensitive, detect_word_instructions, detect_canary_only]),
    CheckCase(ch06.check_knn_vote, knn_solution,
              [knn_farthest, knn_wrong_axis, knn_nearest_only, knn_one_extra, knn_one_short, knn_alphabetical_ties,
               knn_ties_by_train_order, knn_set_ties, knn_unsorted_top_k, knn_first_query_only, knn_indices,
               knn_library]),
]

test_check_passes_on_solution, test_check_fails_on_stub, test_check_fails_on_wrong_answer = make_tests(CASES)


# ---------------------------------------------------------------- exercise 06.8: a bootstrap-demos optimizer

def _bootstrap(program, trainset, metric, max_demos, *, use_metric=True, limit=True, per_step=False,
               order="train", install="own", copy="reset", from_labels=False, stop_after=False):
    """The optimizer of exercise 06.8 with one switch per typical mistake (the defaults are the right answer)."""
    names = {id(p): name for name, p in program.named_predictors()}
    traces = {name: [] for name in names.values()}
    kept = 0
    for example in trainset:
        if limit and (kept > max_demos if stop_after else kept >= max_demos):
            break
        with dspy.context(trace=[]):
            prediction = program(**example.inputs())
            trace = dspy.settings.trace
        if not use_metric or metric(example, prediction, trace):
            kept += len(trace) if per_step else 1
            for predictor, inputs, outputs in trace:
                demo = dict(example) if from_labels else dict(augmented=True, **inputs, **outputs)
                traces[names[id(predictor)]].append(dspy.Example(**demo))
    if order == "sorted":
        traces = {name: sorted(demos, key=lambda d: d.message) for name, demos in traces.items()}
    compiled = {"reset": program.reset_copy, "deep": program.deepcopy, "none": lambda: program}[copy]()
    everything = [d for demos in traces.values() for d in demos]
    named = list(compiled.named_predictors())
    for i, (name, predictor) in enumerate(named):
        demos = {"own": traces[name], "all": everything, "swapped": traces[named[-1 - i][0]]}[install]
        demos = demos[:max_demos] if limit and not stop_after else demos
        predictor.demos = (predictor.demos + demos) if copy == "deep" else demos
    return compiled


def bootstrap_solution(program, trainset, metric, max_demos):
    return _bootstrap(program, trainset, metric, max_demos)


def bootstrap_keeps_failed_traces(program, trainset, metric, max_demos):
    return _bootstrap(program, trainset, metric, max_demos, use_metric=False)


def bootstrap_no_limit(program, trainset, metric, max_demos):
    return _bootstrap(program, trainset, metric, max_demos, limit=False)


def bootstrap_one_too_many(program, trainset, metric, max_demos):
    return _bootstrap(program, trainset, metric, max_demos, stop_after=True)  # `kept > max_demos`: max + 1


def bootstrap_counts_trace_steps(program, trainset, metric, max_demos):
    return _bootstrap(program, trainset, metric, max_demos, per_step=True)  # 2 steps per run: stops too early


def bootstrap_sorted_demos(program, trainset, metric, max_demos):
    return _bootstrap(program, trainset, metric, max_demos, order="sorted")


def bootstrap_reversed_trainset(program, trainset, metric, max_demos):
    return _bootstrap(program, list(reversed(trainset)), metric, max_demos)


def bootstrap_all_steps_on_every_predictor(program, trainset, metric, max_demos):
    return _bootstrap(program, trainset, metric, max_demos, install="all")


def bootstrap_swapped_predictors(program, trainset, metric, max_demos):
    return _bootstrap(program, trainset, metric, max_demos, install="swapped")


def bootstrap_in_place(program, trainset, metric, max_demos):
    return _bootstrap(program, trainset, metric, max_demos, copy="none")


def bootstrap_appends_to_old_demos(program, trainset, metric, max_demos):
    return _bootstrap(program, trainset, metric, max_demos, copy="deep")


def bootstrap_labels_as_demos(program, trainset, metric, max_demos):
    return _bootstrap(program, trainset, metric, max_demos, from_labels=True)  # the example, not the trace


def bootstrap_library(program, trainset, metric, max_demos):
    optimizer = dspy.BootstrapFewShot(metric=metric, max_bootstrapped_demos=max_demos, max_labeled_demos=0)
    return optimizer.compile(program, trainset=trainset)


BOOTSTRAP_CASES = [
    CheckCase(ch06.check_bootstrap_demos, bootstrap_solution,
              [bootstrap_keeps_failed_traces, bootstrap_no_limit, bootstrap_one_too_many, bootstrap_counts_trace_steps,
               bootstrap_sorted_demos, bootstrap_reversed_trainset, bootstrap_all_steps_on_every_predictor,
               bootstrap_swapped_predictors, bootstrap_in_place, bootstrap_appends_to_old_demos,
               bootstrap_labels_as_demos, bootstrap_library]),
]

test_bootstrap_passes, test_bootstrap_fails_on_stub, test_bootstrap_fails_on_wrong = make_tests(BOOTSTRAP_CASES)
