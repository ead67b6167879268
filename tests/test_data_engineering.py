"""Tests for llmlab.data_engineering: dedup (MinHash/LSH vs datasketch), filters, decontamination, the pipeline."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from data_scripts import load_script

from llmlab import data_engineering as de
from llmlab.tasks import facts

TEXTS = ["The capital of France is Paris, a large city.", "the capital of FRANCE is paris a large city",
         "The capital of France is Paris, a big city.", "Twelve plus seven is nineteen.",
         "Completely different sentence about cooking pasta at home."]


def test_normalize_and_exact_duplicates():
    assert de.normalize("  Hi,  THERE! It's  ok ") == "hi there it's ok"
    assert de.exact_duplicates(TEXTS) == [1]
    assert de.content_hash(TEXTS[0]) == de.content_hash(TEXTS[1]) != de.content_hash(TEXTS[2])


def test_jaccard_uses_sets():
    assert de.jaccard([1, 1, 2], [1, 2, 2]) == 1.0
    assert de.jaccard({1, 2, 3}, {2, 3, 4}) == pytest.approx(0.5)
    assert de.jaccard([], []) == 1.0 and de.jaccard({1}, set()) == 0.0


def test_char_shingles():
    assert de.char_shingles("abcdef", 3) == {"abc", "bcd", "cde", "def"}
    assert de.char_shingles("ab", 5) == {"ab"} and de.char_shingles("", 5) == set()


@pytest.mark.parametrize("num_perm,seed", [(64, 1), (128, 7)])
def test_minhash_signature_matches_datasketch_bit_for_bit(num_perm, seed):
    from datasketch import MinHash

    for text in TEXTS:
        items = de.char_shingles(text)
        m = MinHash(num_perm=num_perm, seed=seed, scheme="legacy")
        for s in items:
            m.update(s.encode("utf-8"))
        np.testing.assert_array_equal(de.minhash_signature(items, num_perm, seed), m.hashvalues)


def test_minhash_estimate_is_close_to_true_jaccard():
    a, b = de.char_shingles(TEXTS[0]), de.char_shingles(TEXTS[2])
    est = de.minhash_jaccard(de.minhash_signature(a, 256), de.minhash_signature(b, 256))
    assert abs(est - de.jaccard(a, b)) < 0.08


def test_lsh_candidates_match_datasketch():
    from datasketch import MinHash, MinHashLSH

    rows = facts.load_corpus()[:150]
    texts = [facts.row_text(r) for r in rows]
    sigs = [de.minhash_signature(de.char_shingles(t), 128) for t in texts]
    ours = de.lsh_candidates(sigs, bands=16, rows=8)
    lsh = MinHashLSH(num_perm=128, params=(16, 8))
    hashes = []
    for i, t in enumerate(texts):
        m = MinHash(num_perm=128, scheme="legacy")
        for s in de.char_shingles(t):
            m.update(s.encode("utf-8"))
        lsh.insert(i, m)
        hashes.append(m)
    theirs = {(min(i, j), max(i, j)) for i, m in enumerate(hashes) for j in lsh.query(m) if j != i}
    assert ours == theirs and len(ours) > 0


def test_lsh_probability_is_the_s_curve():
    assert de.lsh_candidate_probability(0.8, 16, 8) == pytest.approx(1 - (1 - 0.8 ** 8) ** 16)
    assert de.lsh_candidate_probability(0.0, 4, 2) == 0.0 and de.lsh_candidate_probability(1.0, 4, 2) == 1.0


def test_near_duplicates_finds_the_edited_copy_not_the_other_texts():
    found = de.near_duplicates(TEXTS, threshold=0.6)
    pairs = {(i, j) for i, j, _ in found}
    assert (0, 2) in pairs and (0, 1) in pairs and not any(4 in p or 3 in p for p in pairs)
    assert de.drop_near_duplicates(TEXTS, 0.6) == [1, 2]


def test_quality_rules():
    ok = ("What is 3 plus 4?", "3 plus 4 is 7.")
    assert de.quality_problem(*ok) is None
    assert de.quality_problem("What is 3 plus 4?", "Seven.") == "too_short"
    assert de.quality_problem("#$%^&*{}[]", "@@ ## ab cd ef 12 %% ^^ && ** ++") == "symbols"
    assert de.quality_problem("Quelle est la capitale de la France ?", "La capitale de la France est Paris.") \
        == "not_english"
    assert de.quality_problem("What is 3 plus 4?", " ".join(["3 plus 4 is 7."] * 5)) == "repetitive"
    assert de.duplicate_ngram_share("a b c a b c", 3) == pytest.approx(1 / 4)
    assert de.duplicate_ngram_share("a b", 3) == 0.0


def test_word_ngrams_count_and_decontamination():
    grams = de.word_ngrams("one two three four five", 3)
    assert grams == {("one", "two", "three"), ("two", "three", "four"), ("three", "four", "five")}
    assert de.word_ngrams("one two", 3) == {("one", "two")}
    train = ["the quick brown fox jumps over the lazy dog near the river bank"]
    test = ["a quick brown fox jumps over the lazy dog near the river", "an unrelated sentence about tea and cake"]
    assert de.contaminated(test, train, n=5, threshold=0.5) == [0]
    assert de.train_rows_overlapping(train, test, n=5, threshold=0.5) == [0]


def test_bigram_lm_perplexity():
    lm = de.BigramLM.fit(["a b a b", "a b"])
    assert lm.perplexity(["a b"]) < lm.perplexity(["b a b a b b"])
    lp = lm.logprob("a", "b")
    assert lp < 0 and math.isfinite(lm.logprob("zzz", "qqq"))


def test_pipeline_on_the_shipped_corpus_removes_what_was_planted():
    rows, test = facts.load_corpus(), facts.load_test()
    steps = de.clean_corpus(rows, [facts.row_text(r) for r in test])
    assert [s.name for s in steps] == ["raw", "exact dedup", "near dedup", "quality filter", "decontaminate"]
    assert steps[1].removed["exact_dup"] == 60 and steps[1].removed["clean"] == 0
    assert steps[-1].removed == Counter({"test_copy": 16})
    left = Counter(r["kind"] for r in steps[-1].kept)
    assert left["clean"] >= 475 and sum(left[k] for k in ("too_short", "symbols", "not_english", "repetitive",
                                                          "test_copy", "exact_dup")) == 0


def test_generator_is_deterministic_and_matches_shipped_files():
    data = load_script("ch12_make_data").make_data()
    assert data["corpus"] == facts.load_corpus()
    assert data["test"] == facts.load_test()
    assert data["prefs_train"] == facts.load_preferences("train")
    assert data["prefs_test"] == facts.load_preferences("test")
    test_text = {r["instruction"] for r in data["test"]}
    assert not test_text & {r["instruction"] for r in data["corpus"] if r["kind"] == "clean"}


def test_self_instruct_prompt_and_parse():
    prompt = de.self_instruct_prompt([{"instruction": "What is 2 plus 2?", "response": "2 plus 2 is 4."}])
    assert prompt.endswith("Q:") and "A: 2 plus 2 is 4." in prompt
    assert de.parse_synthetic(" What is 5 plus 1?\nA: 5 plus 1 is 6.\n\nQ: ...") == {
        "instruction": "What is 5 plus 1?", "response": "5 plus 1 is 6."}
    assert de.parse_synthetic("no answer line") is None


def test_filter_synthetic_reasons():
    gens = [" What is 7 plus 1?\nA: 7 plus 1 is 9.", " What is 5 plus 1?\nA: 5 plus 1 is 6.",
            " What is 5 plus 1?\nA: 5 plus 1 is 6.", "garbage",
            " Name a colour.\nA: Red.", " What is 2 plus 2?\nA: 2 plus 2 is 4."]
    kept, reasons = de.filter_synthetic(gens, existing=["What is 2 plus 2? 2 plus 2 is 4."])
    assert kept == [{"instruction": "What is 5 plus 1?", "response": "5 plus 1 is 6."}]
    assert reasons == Counter({"near_dup": 2, "unparsed": 1, "too_short": 1, "wrong_sum": 1})


def test_verify_sum():
    assert de.verify_sum({"instruction": "Add 12 and 30.", "response": "12 plus 30 is 42."}) is True
    assert de.verify_sum({"instruction": "Compute 2 + 2.", "response": "It is 5."}) is False
    assert de.verify_sum({"instruction": "Name a colour.", "response": "Red is 1 colour."}) is None


def test_generate_synthetic_on_the_tiny_model(tiny):
    model, tok = tiny
    seeds = facts.load_corpus()[:5]
    out = de.generate_synthetic(model, tok, seeds, n=3, shots=2, max_new_tokens=5)
    assert len(out) == 3 and all(isinstance(o, str) for o in out)


@pytest.mark.parametrize("call,err", [
    (lambda: de.exact_duplicates([]), ValueError),
    (lambda: de.char_shingles("abc", 0), ValueError),
    (lambda: de.minhash_signature({"a"}, num_perm=0), ValueError),
    (lambda: de.lsh_candidates([np.zeros(8, dtype=np.uint64)], bands=3, rows=3), ValueError),
    (lambda: de.near_duplicates(["a", "b"], threshold=1.5), ValueError),
    (lambda: de.contaminated(["a"], ["b"], n=0), ValueError),
    (lambda: de.normalize(3), TypeError),
    (lambda: de.minhash_jaccard(np.zeros(3), np.zeros(4)), ValueError),
])
def test_bad_input(call, err):
    with pytest.raises(err):
        call()


def test_data_generators_live_outside_the_package_and_write_into_its_data_folder():
    from pathlib import Path

    from data_scripts import SCRIPTS

    import llmlab.data

    package_data = Path(llmlab.data.__file__).resolve().parent
    assert [p.name for p in package_data.glob("*.py")] == ["__init__.py"]
    assert len(list(SCRIPTS.glob("ch*_make_*.py"))) == 6
    for name in ("ch05_make_orders", "ch06_make_tickets", "ch07_make_prompts", "ch12_make_data"):
        assert load_script(name).DATA == package_data
    assert load_script("ch11_make_corpus").HERE == package_data
