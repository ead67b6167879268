"""Retrieval for RAG: chunking, BM25 from scratch, dense (all-MiniLM-L6-v2), hybrid (RRF), indexes, metrics, RAG."""

from llmlab.retrieval.bm25 import BM25Index, bm25_score, idf, tokenize
from llmlab.retrieval.chunking import Chunk, chunk_documents, chunk_fixed, chunk_paragraphs, chunk_sentences
from llmlab.retrieval.dense import DenseIndex, FlatIndex, cosine_top_k, embed, faiss_index, load_encoder
from llmlab.retrieval.hybrid import HybridIndex, doc_ranking, reciprocal_rank_fusion
from llmlab.retrieval.metrics import is_supported, mean_reciprocal_rank, ndcg_at_k, recall_at_k, reciprocal_rank

__all__ = ["BM25Index", "bm25_score", "idf", "tokenize", "Chunk", "chunk_documents", "chunk_fixed",
           "chunk_paragraphs", "chunk_sentences", "DenseIndex", "FlatIndex", "cosine_top_k", "embed", "faiss_index",
           "load_encoder", "HybridIndex", "doc_ranking", "reciprocal_rank_fusion", "is_supported",
           "mean_reciprocal_rank", "ndcg_at_k", "recall_at_k", "reciprocal_rank"]
