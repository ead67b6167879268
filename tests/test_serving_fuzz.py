"""Fuzz-and-load (issue 30): 64 concurrent loopback clients, good requests mixed with every bad kind and random bodies.

`hypothesis` is not installed in the kit's environment, so the random bodies come from a seeded numpy generator
(`llmlab.serving.fuzz`), each invalid by construction. Bounded in time: every client and the server have timeouts.
"""

import numpy as np
import pytest
import torch

from llmlab import attention, kv_cache
from llmlab.kit import fixtures
from llmlab.serving import fuzz, load, server

MAX_BODY = 4096


@pytest.fixture(scope="module")
def w():
    return attention.from_model(fixtures.tiny_model())


def _good(w, n: int = 12):
    """n (prompt, max_new_tokens) requests and their greedy tokens when each is served alone."""
    rng = np.random.default_rng(7)
    good = [(rng.integers(0, w.vocab_size, int(rng.integers(1, 10))).tolist(), int(rng.integers(1, 6)))
            for _ in range(n)]
    expected = [kv_cache.generate(w, torch.tensor([p]), m)[0].tolist() for p, m in good]
    return good, expected


def test_bad_kinds_are_all_invalid_and_seeded(w):
    rng = np.random.default_rng(0)
    for kind in fuzz.BAD_KINDS:
        path, body = fuzz.bad_request(kind, rng, w.vocab_size, w.max_positions, MAX_BODY)
        assert isinstance(body, bytes) and path.startswith("/generate")
    a = fuzz.bad_request("random_json", np.random.default_rng(3), 259, 512, MAX_BODY)
    assert a == fuzz.bad_request("random_json", np.random.default_rng(3), 259, 512, MAX_BODY)
    with pytest.raises(ValueError, match="kind must be one of"):
        fuzz.bad_request("nice", rng, 259, 512, MAX_BODY)


def test_fuzz_and_load_loses_nothing(w):
    good, expected = _good(w)
    with server.serve(w, max_batch=8, max_waiting=128, max_body_bytes=MAX_BODY, timeout=60) as url:
        report = fuzz.fuzz_and_load(url, good, expected, w.vocab_size, w.max_positions, MAX_BODY, clients=64,
                                    per_client=4, bad_share=0.5, seed=0, timeout=90)
        status, health = load.request(url, "GET", "/health")
    print(f"\nfuzz-and-load: {report.counts()}; statuses {dict(report.statuses)}; {report.wall:.1f} s")
    assert report.lost == 0, report.problems[:5]
    assert report.sent == 256 and report.good_completed == report.good_sent == 128
    assert report.bad_rejected == report.bad_sent == 128
    assert set(report.kinds) == set(fuzz.BAD_KINDS) | {"good"}  # every bad kind was sent
    assert report.health_checks > 0 and report.unhealthy == 0
    assert status == 200 and health["status"] == "ok" and health["failed"] == 0
    assert health["completed"] == 128 and health["rejected"] == 128
    assert report.statuses[413] > 0 and report.statuses[404] > 0 and report.statuses[400] > 0
