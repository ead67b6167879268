"""Hallucination detectors, abstention, the question set and AUROC (tiny model and small arrays only)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from llmlab.evaluation import hallucination as H
from llmlab.evaluation import roc
from llmlab.evaluation.lm import token_logprobs
from llmlab.tasks import facts

DATA = Path(__file__).resolve().parent.parent / "llmlab" / "data"


def brute_auroc(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def test_auroc_counts_ties_half_and_matches_brute_force():
    assert roc.auroc([0.9, 0.4, 0.4, 0.1], [1, 1, 0, 0]) == 0.875
    assert roc.auroc([1, 2, 3], [1, 0, 0]) == 0.0 and roc.auroc([3, 2, 1], [True, False, False]) == 1.0
    rng = np.random.default_rng(0)
    s, y = rng.integers(0, 4, 40).tolist(), (rng.random(40) < 0.4).tolist()
    assert roc.auroc(s, y) == pytest.approx(brute_auroc(s, y))


def test_roc_curve_area_equals_auroc_with_ties():
    rng = np.random.default_rng(1)
    s, y = rng.integers(0, 5, 30).tolist(), (rng.random(30) < 0.5).tolist()
    fpr, tpr = roc.roc_curve(s, y)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1 and (np.diff(fpr) >= 0).all()
    assert np.trapz(tpr, fpr) == pytest.approx(roc.auroc(s, y))


def test_auroc_rejects_bad_input():
    with pytest.raises(ValueError, match="labels"):
        roc.auroc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="labels"):
        roc.auroc([0.1, 0.2], [1, 2])
    with pytest.raises(ValueError, match="scores"):
        roc.auroc([0.1, float("nan")], [1, 0])
    with pytest.raises(ValueError, match="same length|length"):
        roc.auroc([0.1, 0.2, 0.3], [1, 0])


def test_auroc_ci_brackets_the_estimate():
    s, y = [0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.5], [1, 1, 1, 1, 0, 0, 0, 0]
    iv = roc.auroc_ci(s, y, n_resamples=200)
    assert iv.mean == roc.auroc(s, y) and iv.low <= iv.mean <= iv.high <= 1.0


def test_question_set_has_40_invented_entities_absent_from_the_corpora():
    qs = H.load_questions()
    invented = [q for q in qs if q["kind"] == "invented"]
    assert len(invented) == 40 and len({q["entity"] for q in invented}) == 40
    assert all(q["answers"] for q in qs if q["kind"] != "invented")
    corpora = " ".join(p.read_text(encoding="utf-8").lower() for p in DATA.glob("ch1[12]_*.jsonl"))
    for q in invented:
        assert q["entity"].lower() not in corpora, q["entity"]
        assert q["entity"].split()[0].lower() in q["question"].lower()


def test_fact_references_hold_their_answer():
    rows = {r["id"]: r for r in facts.load_test()}
    for line in (DATA / "ch13_questions.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["kind"] == "fact":
            assert re.search(rf"\b{re.escape(row['answers'][0])}\b", rows[row["ref"]]["response"]), row


def test_abstention_and_correctness():
    for text in ["I don't know.", "I do not know", "It is not mentioned in the context.", "No such product exists",
                 "The price is unknown."]:
        assert H.is_abstention(text), text
    for text in ["Oslo", "It costs 99.00 euros", "Nobody knows more than Ada"]:
        assert not H.is_abstention(text), text
    gold = {"kind": "fact", "answers": ["Madrid"]}
    assert H.is_correct("The capital is Madrid.", gold) and not H.is_correct("Lisbon", gold)
    fake = {"kind": "invented", "answers": []}
    assert H.is_correct("I don't know", fake) and not H.is_correct("It costs 80 euros", fake)
    assert H.first_line("\n  Paris\nmore") == "Paris"


def test_selfcheck_scores():
    assert H.selfcheck_exact("Paris.", ["paris", "Lyon", "The Paris", "Nice"]) == 0.5
    assert H.selfcheck_exact("x", ["x"]) == 0.0
    a = np.array([3.0, 0.0])
    s = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert H.selfcheck_cosine(a, s) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="sample_vecs"):
        H.selfcheck_cosine(a, np.ones((2, 3)))


def test_context_overlap_and_snowball_counting():
    assert H.context_overlap("99.00 dollars", "It costs 99.00 euros") == 0.5
    assert H.context_overlap("", "anything") == 0.0
    got = H.snowball_errors("Rome is old. Rome has a river. Paris is lovely.", wrong="Rome", right="Paris")
    assert got == {"sentences": 3, "errors": 2, "corrected": True}
    items = H.snowball_items(5)
    assert len(items) == 5 and all(it["wrong"] != it["right"] for it in items)


def test_token_entropy():
    uniform = torch.zeros(2, 4)
    assert torch.allclose(H.token_entropy(uniform), torch.full((2,), float(np.log(4))))
    assert float(H.token_entropy(torch.tensor([100.0, 0.0, 0.0]))) < 1e-6


def test_answer_confidence_matches_one_sequence_scoring(tiny):
    model, tok = tiny
    prompts, answers = ["Question: a?\nAnswer:", "Q: longer question here?\nA:"], [" yes", " no way"]
    batched = H.answer_confidence(model, tok, prompts, answers, batch_size=2)
    for (lp, ent), p, a in zip(batched, prompts, answers):
        ids = tok(p + a, add_special_tokens=False)["input_ids"]
        n = len(tok(a, add_special_tokens=False)["input_ids"])
        assert lp == pytest.approx(float(token_logprobs(model, torch.tensor([ids]))[-n:].mean()), abs=1e-4)
        assert ent > 0


def test_entailment_score_is_a_probability(tiny):
    model, tok = tiny
    p = H.entailment_score(model, tok, "Oslo is in Norway.", "Where is Oslo?", "Norway")
    assert 0.0 <= p <= 1.0


def test_prompts():
    assert H.IDK_INSTRUCTION in H.closed_book_messages("Q?", idk=True)[0]["content"]
    assert H.IDK_INSTRUCTION not in H.rag_messages("Q?", ["p"])[0]["content"]
    assert H.IDK_INSTRUCTION in H.rag_messages("Q?", ["p"], idk=True)[0]["content"]


def test_plot_roc_draws_one_curve_per_detector_plus_chance():
    import matplotlib

    matplotlib.use("Agg")
    from llmlab.viz.hallucination import plot_roc

    fig = plot_roc({"a": ([0.9, 0.1, 0.5], [1, 0, 0]), "b": ([0.2, 0.8, 0.5], [1, 0, 1])})
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["chance (0.5)", "a (1.00)", "b (0.00)"]
    with pytest.raises(ValueError, match="detectors"):
        plot_roc({})


def test_snowball_items_come_from_the_shipped_capitals():
    table = facts.capitals()
    assert table["Italy"] == "Rome" and len(table) >= 20
    items = H.snowball_items(16)
    assert len(items) == 16 and all(it["right"] == table[it["country"]] != it["wrong"] for it in items)
