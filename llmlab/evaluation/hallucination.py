"""Hallucination: questions with gold answers and about entities that do not exist, abstention, four detectors
(token log-prob and entropy, SelfCheck consistency over samples, the model as an entailment judge, context overlap),
and forced wrong first sentences (snowballing).

AI Engineering (Chip Huyen, 2025) ch. 2 gives the two hypotheses for why models hallucinate (self-delusion and
snowballing; knowledge mismatch) and ch. 4 the detectors (SelfCheckGPT, AI judges, textual entailment). Every
detector here returns a *confidence* that the answer is right (higher = more likely right), so one AUROC
(`llmlab.evaluation.roc.auroc`) grades them all.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Sequence

import numpy as np
import torch

from llmlab import validate as V
from llmlab.evaluation.lm import gather_logprobs
from llmlab.evaluation.text import contains_match, normalize
from llmlab.retrieval.bm25 import tokenize
from llmlab.tasks.jsonl import read_jsonl

KINDS = ("invented", "fact", "corpus")
IDK = "I don't know"
IDK_INSTRUCTION = f"If you do not know the answer, or it is not in the context, reply exactly: {IDK}."
CLOSED_BOOK_SYSTEM = "Answer the question with a short phrase. Reply with the answer only."
# model calls each detector needs per answer, beyond generating the answer itself
DETECTOR_CALLS = {"mean log-prob": "1 forward pass", "entropy": "the same forward pass", "SelfCheck exact": "N samples",
                  "SelfCheck MiniLM": "N samples + MiniLM", "entailment judge": "1 forward pass",
                  "context overlap": "0"}
_ABSTAIN = re.compile(r"\b(i don ?t know|i do not know|not sure|no information|unknown|not mentioned|no mention|"
                      r"not (?:in|provided in|given in|found in) the (?:context|passages?|text)|cannot (?:find|answer|"
                      r"determine)|can ?t (?:find|answer|determine)|does not exist|doesn ?t exist|no such|"
                      r"not aware of|i m not aware|unable to (?:find|answer|determine))\b")


def load_questions(kinds: Sequence[str] = KINDS) -> list[dict]:
    """Chapter 13's questions: 40 about entities that do not exist, chapter 12's short facts and chapter 11's shop
    questions, each a dict with id, kind, question, answers (empty for invented ones), doc_ids and entity."""
    for k in kinds:
        V.one_of("kinds", k, KINDS)
    from llmlab.tasks import company_docs, facts

    shop = {q["id"]: q for q in company_docs.load_questions("all")}
    fact_rows = {r["id"]: r for r in facts.load_test()}
    out = []
    for row in read_jsonl(resources.files("llmlab.data") / "ch13_questions.jsonl"):
        if row["kind"] not in kinds:
            continue
        q = {"id": row["id"], "kind": row["kind"], "answers": [], "doc_ids": [], "entity": row.get("entity", "")}
        if row["kind"] == "invented":
            q["question"] = row["question"]
        elif row["kind"] == "fact":
            q.update(question=fact_rows[row["ref"]]["instruction"], answers=list(row["answers"]))
        else:
            src = shop[row["ref"]]
            q.update(question=src["question"], answers=list(src["answers"]), doc_ids=list(src["doc_ids"]))
        out.append(q)
    return out


def first_line(reply: str) -> str:
    """The first non-empty line of a reply, stripped (the short answer a prompt asked for)."""
    V.text("reply", reply, allow_empty=True)
    return next((line.strip() for line in reply.splitlines() if line.strip()), "")


def is_abstention(answer: str) -> bool:
    """Whether an answer declines ("I don't know", "not in the context", "does not exist", ...).

    >>> is_abstention("I don't know."), is_abstention("It is not mentioned in the context"), is_abstention("Oslo")
    (True, True, False)
    """
    V.text("answer", answer, allow_empty=True)
    return bool(_ABSTAIN.search(" ".join(re.sub(r"[^a-z0-9 ]", " ", answer.lower()).split())))


def is_correct(answer: str, question: dict) -> bool:
    """Right: a gold question's accepted answer occurs in the answer (the kit's `contains_match`) without an
    abstention; an invented entity's only right answer is to abstain."""
    V.text("answer", answer, allow_empty=True)
    if question["kind"] == "invented":
        return is_abstention(answer)
    return contains_match(answer, question["answers"]) and not is_abstention(answer)


def closed_book_messages(question: str, idk: bool = False) -> list[dict]:
    """Chat messages asking for a short answer from the model's memory (with the "I don't know" rule when idk)."""
    V.text("question", question)
    system = CLOSED_BOOK_SYSTEM + (" " + IDK_INSTRUCTION if idk else "")
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


def rag_messages(question: str, passages: Sequence[str], idk: bool = False) -> list[dict]:
    """Chapter 11's RAG messages over the passages (`llmlab.retrieval.rag`), with the "I don't know" rule when idk."""
    from llmlab.retrieval import rag

    messages = rag.rag_messages(question, passages)
    if idk:
        messages[0] = {"role": "system", "content": messages[0]["content"] + " " + IDK_INSTRUCTION}
    return messages


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of the softmax of (..., V) logits at each position -> (...)."""
    V.tensor("logits", logits, floating=True)
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


@torch.inference_mode()
def answer_confidence(model, tokenizer, prompts: Sequence[str], answers: Sequence[str],
                      batch_size: int = 16) -> list[tuple[float, float]]:
    """(mean token log-prob, mean next-token entropy) of each answer given its already-templated prompt, one
    right-padded forward pass per batch; an empty answer is scored as the end-of-text token."""
    V.non_empty("prompts", prompts)
    V.same_length(("prompts", "answers"), prompts, answers)
    V.positive_int("batch_size", batch_size)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    out: list[tuple[float, float]] = []
    for start in range(0, len(prompts), batch_size):
        rows = []
        for p, a in zip(prompts[start:start + batch_size], answers[start:start + batch_size]):
            ctx = tokenizer(p, add_special_tokens=False)["input_ids"]
            ans = tokenizer(a, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
            rows.append((ctx, ans))
        width = max(len(c) + len(a) for c, a in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, (c, a) in enumerate(rows):
            ids[i, :len(c) + len(a)] = torch.tensor(c + a)
            mask[i, :len(c) + len(a)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, :-1].float().cpu()
        lps, ents = gather_logprobs(logits, ids[:, 1:]), token_entropy(logits)
        for i, (c, a) in enumerate(rows):
            span = slice(len(c) - 1, len(c) + len(a) - 1)
            out.append((float(lps[i, span].mean()), float(ents[i, span].mean())))
    return out


def selfcheck_exact(answer: str, samples: Sequence[str]) -> float:
    """SelfCheck inconsistency by exact match: the share of the N sampled answers that differ from the answer after
    the kit's `normalize` (0 = every sample agrees; the answer itself is not a sample).

    >>> selfcheck_exact("Paris.", ["paris", "Lyon", "The Paris", "Nice"])
    0.5
    """
    V.text("answer", answer, allow_empty=True)
    V.non_empty("samples", samples)
    target = normalize(answer)
    return 1.0 - sum(normalize(s) == target for s in samples) / len(samples)


def selfcheck_cosine(answer_vec: np.ndarray, sample_vecs: np.ndarray) -> float:
    """SelfCheck inconsistency by embeddings: 1 - the mean cosine similarity of the answer's vector (d,) with each
    of the N samples' vectors (N, d); vectors need not be unit length."""
    a = np.asarray(answer_vec, dtype=np.float64)
    s = np.asarray(sample_vecs, dtype=np.float64)
    if a.ndim != 1 or s.ndim != 2 or s.shape[1] != a.shape[0] or len(s) == 0:
        raise ValueError(f"answer_vec must be (d,) and sample_vecs (N, d) with N >= 1, got {a.shape} and {s.shape}")
    cos = (s @ a) / np.maximum(np.linalg.norm(s, axis=1) * np.linalg.norm(a), 1e-12)
    return float(1.0 - cos.mean())


ENTAILMENT_PROMPT = ("Passage: {passage}\n\nQuestion: {question}\nProposed answer: {answer}\n\n"
                     "Does the passage support the proposed answer? Reply Yes or No.")


def entailment_prompt(passage: str, question: str, answer: str) -> str:
    """The judge's prompt: is the answer to the question supported by (entailed by) the passage?"""
    V.text("passage", passage)
    V.text("question", question)
    V.text("answer", answer, allow_empty=True)
    return ENTAILMENT_PROMPT.format(passage=passage, question=question, answer=answer or "(no answer)")


def entailment_score(model, tokenizer, passage: str, question: str, answer: str) -> float:
    """P(Yes) / (P(Yes) + P(No)) of the model's next token after the entailment prompt: one forward pass."""
    from llmlab.tokens import option_probs

    probs = option_probs(model, tokenizer, entailment_prompt(passage, question, answer), ["Yes", "No"], chat=True)
    return probs["Yes"] / max(probs["Yes"] + probs["No"], 1e-12)


def context_overlap(answer: str, context: str) -> float:
    """Share of the answer's content words (BM25's tokenizer, stopwords dropped) that occur in the context; an answer
    with no content word scores 0 (it makes no checkable claim).

    >>> context_overlap("99.00 dollars", "The Pellam Ember costs 99.00 euros.")
    0.5
    """
    V.text("answer", answer, allow_empty=True)
    V.text("context", context, allow_empty=True)
    words = tokenize(answer)
    have = set(tokenize(context))
    return sum(w in have for w in words) / len(words) if words else 0.0


def forced_prompt(tokenizer, user: str, forced: str) -> str:
    """A templated chat prompt whose assistant reply already begins with `forced` (the model continues it)."""
    V.text("user", user)
    V.text("forced", forced)
    return tokenizer.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True,
                                         tokenize=False) + forced


def snowball_items(n: int = 16) -> list[dict]:
    """n capital-city items for the snowballing test: country, its capital, and a wrong capital (another country's),
    from chapter 12's shipped facts."""
    from llmlab.tasks.facts import capitals

    table = capitals()
    V.integer("n", n, 1, len(table) - 1)
    pairs = [(c, city) for c, city in table.items() if " " not in city]
    n = min(n, len(pairs) - 1)
    return [{"country": c, "right": city, "wrong": pairs[(i + 1) % len(pairs)][1]}
            for i, (c, city) in enumerate(pairs[:n])]


def snowball_errors(continuation: str, wrong: str, right: str) -> dict:
    """What follows a forced first sentence: how many sentences repeat the wrong city (errors built on it) and
    whether any sentence names the right one (a correction)."""
    from llmlab.retrieval.chunking import split_sentences

    V.text("wrong", wrong)
    V.text("right", right)
    sentences = split_sentences(continuation)
    has = lambda s, w: re.search(rf"\b{re.escape(w.lower())}\b", s.lower()) is not None  # noqa: E731
    return {"sentences": len(sentences), "errors": sum(has(s, wrong) for s in sentences),
            "corrected": any(has(s, right) for s in sentences)}
