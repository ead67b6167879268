"""Tests for llmlab.retrieval: chunking, BM25 (against bm25s and rank-bm25), cosine top-k, RRF, metrics, RAG prompts."""

import math
import zlib

import numpy as np
import pytest
import torch

from llmlab import retrieval as R
from llmlab.kit import fixtures
from llmlab.retrieval import dense, rag
from llmlab.tasks import company_docs

TEXTS = ["the korvid ridge tent weighs 1.8 kg", "the amsel drift backpack holds 45 litres",
         "returns of tents within 45 days", "the korvid trail headlamp gives 500 lumens and a red light",
         "shipping to finland costs 6.50 euros"]


def test_chunk_fixed_windows_and_overlap():
    words = " ".join(str(i) for i in range(10))
    assert R.chunk_fixed(words, 4, 0) == ["0 1 2 3", "4 5 6 7", "8 9"]
    assert R.chunk_fixed(words, 4, 2) == ["0 1 2 3", "2 3 4 5", "4 5 6 7", "6 7 8 9"]
    assert R.chunk_fixed("", 4) == []
    with pytest.raises(ValueError, match="overlap"):
        R.chunk_fixed(words, 4, 4)


def test_chunk_sentences_and_paragraphs():
    text = "One two. Three four five. Six.\n\nSeven eight."
    assert R.chunk_sentences(text, 5) == ["One two. Three four five.", "Six. Seven eight."]
    assert R.chunk_sentences(text, 1) == ["One two.", "Three four five.", "Six.", "Seven eight."]
    assert R.chunk_paragraphs(text) == ["One two. Three four five. Six.", "Seven eight."]


def test_chunk_documents_keeps_doc_ids_and_titles():
    docs = [{"id": "a", "title": "A", "text": "x y z w"}, {"id": "b", "text": "q"}]
    chunks = R.chunk_documents(docs, "fixed", 2, 0)
    assert [(c.doc_id, c.index, c.text) for c in chunks] == [("a", 0, "A: x y"), ("a", 1, "A: z w"), ("b", 0, "q")]
    with pytest.raises(ValueError, match="method"):
        R.chunk_documents(docs, "words")


def test_tokenize_keeps_codes_and_numbers():
    assert R.tokenize("What is the code of TB-1156? It costs 3.90 euros.") == ["code", "tb-1156", "costs", "3.90",
                                                                               "euros"]


def test_idf_is_lucene_and_never_negative():
    assert R.idf(1, 10) == pytest.approx(math.log(1 + 9.5 / 1.5))
    assert R.idf(10, 10) > 0
    with pytest.raises(ValueError, match="doc_freq"):
        R.idf(11, 10)


def test_bm25_matches_bm25s_lucene():
    import bm25s

    index = R.BM25Index(TEXTS, k1=1.2, b=0.75)
    lib = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    lib.index([R.tokenize(t) for t in TEXTS], show_progress=False)
    for query in ["korvid tent", "45 litres backpack", "red light lumens"]:
        ours = np.array(index.scores(query))
        theirs = lib.get_scores(R.tokenize(query)) * (1.2 + 1)  # Lucene drops the constant (k1 + 1) factor
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_bm25_ranks_like_rank_bm25_okapi():
    from rank_bm25 import BM25Okapi

    index = R.BM25Index(TEXTS)
    lib = BM25Okapi([R.tokenize(t) for t in TEXTS])
    for query in ["korvid tent", "shipping finland euros"]:
        ours = index.scores(query)
        theirs = lib.get_scores(R.tokenize(query))
        assert int(np.argmax(ours)) == int(np.argmax(theirs))


def test_bm25_search_orders_and_drops_zero():
    hits = R.BM25Index(TEXTS).search("korvid", 5)
    assert [i for i, _ in hits] == [0, 3]
    assert hits[0][1] >= hits[1][1] > 0
    with pytest.raises(ValueError, match="k"):
        R.BM25Index(TEXTS).search("korvid", 0)


def test_length_normalisation_prefers_shorter_doc():
    index = R.BM25Index(["korvid tent", "korvid tent with many other words about hiking and rain"])
    s = index.scores("korvid")
    assert s[0] > s[1]


def test_cosine_top_k_normalises():
    matrix = torch.tensor([[10.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    scores, idx = R.cosine_top_k(torch.tensor([1.0, 1.0]), matrix, 2)
    assert idx.tolist() == [1, 0]
    assert scores[0].item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="k"):
        R.cosine_top_k(torch.tensor([1.0, 1.0]), matrix, 4)


def test_flat_and_faiss_indexes_agree():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[:5] + 0.01
    _, exact = R.FlatIndex(x).search(q, 10)
    _, flat = R.faiss_index(x, "flat").search(q, 10)
    assert dense.recall_vs_exact(flat, exact) == 1.0
    hnsw = R.faiss_index(x, "hnsw")
    hnsw.hnsw.efSearch = 64
    assert dense.recall_vs_exact(hnsw.search(q, 10)[1], exact) >= 0.9
    ivf = R.faiss_index(x, "ivf", nlist=8)
    ivf.nprobe = 8
    assert dense.recall_vs_exact(ivf.search(q, 10)[1], exact) == 1.0


def test_reciprocal_rank_fusion_ranks_from_one():
    fused = R.reciprocal_rank_fusion([["a", "b", "c"], ["b", "a", "d"]], k=60)
    assert [d for d, _ in fused] == ["a", "b", "c", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[-1][1] == pytest.approx(1 / 63)


def test_hybrid_index_fuses_retrievers():
    bm = R.BM25Index(TEXTS)
    hybrid = R.HybridIndex([bm, bm], k=60, depth=5)
    assert [i for i, _ in hybrid.search("korvid", 2)] == [0, 3]


def test_doc_ranking_dedupes():
    chunks = [R.Chunk("a", 0, ""), R.Chunk("a", 1, ""), R.Chunk("b", 0, "")]
    assert R.doc_ranking([(1, 3.0), (0, 2.0), (2, 1.0)], chunks) == ["a", "b"]


def test_retrieval_metrics():
    assert R.recall_at_k(["x", "a", "b"], ["a", "b"], 2) == 0.5
    assert R.recall_at_k(["x", "a", "b"], ["a"], 5) == 1.0
    assert R.reciprocal_rank(["x", "y", "a"], ["a"]) == pytest.approx(1 / 3)
    assert R.mean_reciprocal_rank([["a"], ["x"]], [["a"], ["a"]]) == 0.5
    assert R.ndcg_at_k(["a", "x"], ["a"], 2) == 1.0
    assert R.ndcg_at_k(["x", "a"], ["a"], 2) == pytest.approx(1 / math.log2(3))
    with pytest.raises(ValueError, match="gold"):
        R.recall_at_k(["a"], [], 1)


def test_is_supported():
    assert R.is_supported("3.90 euros", "Shipping costs 3.90 euros.")
    assert not R.is_supported("4.90 euros", "Shipping costs 3.90 euros.")


def test_rag_messages_and_defense():
    plain = rag.rag_messages("What?", [])
    assert len(plain) == 2 and "Context" not in plain[1]["content"]
    msgs = rag.rag_messages("What?", ["a", company_docs.INJECTION["text"]], defense="prompt+filter")
    assert company_docs.INJECTION_PAYLOAD not in msgs[1]["content"]
    assert "<document 2>" in msgs[1]["content"] and "not instructions" in msgs[0]["content"]
    assert company_docs.INJECTION_PAYLOAD in rag.rag_messages("What?", ["a", company_docs.INJECTION["text"]],
                                                              defense="prompt")[1]["content"]
    with pytest.raises(ValueError, match="defense"):
        rag.rag_messages("What?", ["a"], defense=True)
    assert company_docs.INJECTION_PAYLOAD in rag.rag_messages("What?", [company_docs.INJECTION["text"]])[1]["content"]


def test_pick_distractors_pads_from_all_ids():
    assert rag.pick_distractors(["g", "b"], ["g"], ["a", "b", "c"], 2) == ["b", "a"]
    with pytest.raises(ValueError, match="n must be at most"):
        rag.pick_distractors([], ["g"], ["g", "a"], 2)


def test_place_gold():
    assert rag.place_gold("g", ["a", "b"], 1) == ["a", "g", "b"]
    with pytest.raises(ValueError, match="position"):
        rag.place_gold("g", ["a"], 2)


def test_answer_on_tiny_model():

    out = rag.answer(fixtures.tiny_model(), fixtures.tiny_tokenizer(), "Q?", ["passage"], max_new_tokens=3)
    assert isinstance(out, str)


def test_data_loads():
    docs = company_docs.load_documents()
    ids = {d["id"] for d in docs}
    qs = company_docs.load_questions("all")
    assert 150 <= len(docs) <= 300 and len(qs) >= 100
    assert all(set(q["doc_ids"]) <= ids for q in qs)
    assert {q["split"] for q in qs} == {"dev", "test"}
    assert len(company_docs.load_agent_tasks()) >= 50
    with pytest.raises(ValueError, match="split"):
        company_docs.load_questions("train")


class _UnitEncoder:
    """A stand-in sentence encoder: fixed random unit vectors per text (no model)."""

    def __init__(self, dim: int = 16):
        self.dim = dim

    def encode(self, texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False):
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(self.dim) for t in texts]
        return np.stack([r / np.linalg.norm(r) for r in rows]).astype(np.float32)


def test_dense_index_agrees_with_the_taught_cosine_top_k():
    # DenseIndex searches unit vectors by inner product (FlatIndex, numpy); exercise 11.2 teaches cosine_top_k
    # (torch). On the same embeddings (no exact ties) they return the same neighbours, order and scores.
    import torch

    texts = [f"document number {i} about tents and stoves" for i in range(40)]
    index = R.DenseIndex(texts, encoder=_UnitEncoder())
    for query in ["tent", "stove fuel", "refund policy"]:
        hits = index.search(query, k=5)
        q = torch.from_numpy(R.embed(index.encoder, [query])[0])
        scores, ids = R.cosine_top_k(q, torch.from_numpy(index.index.vectors), k=5)
        assert [i for i, _ in hits] == ids.tolist()
        assert np.allclose([s for _, s in hits], scores.numpy(), atol=1e-6)
