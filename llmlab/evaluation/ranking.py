"""Rankings from pairwise matches: Elo (depends on match order) and Bradley-Terry by maximum likelihood."""

from __future__ import annotations

import random
from typing import Hashable, Mapping, Sequence

import numpy as np

from llmlab import validate as V

# AI Engineering (Chip Huyen, 2025), chapter 3 (Table 3-6): win rates of model i over model j, 1,000 matches per pair.
BOOK_WIN_RATES: dict[tuple[int, int], float] = {
    (1, 2): 0.90, (1, 3): 0.40, (1, 4): 0.15, (1, 5): 0.10, (2, 3): 0.60,
    (2, 4): 0.80, (2, 5): 0.80, (3, 4): 0.70, (3, 5): 0.10, (4, 5): 0.20,
}
BOOK_MATCHES_PER_PAIR = 1000


def matches_from_win_rates(win_rates: Mapping[tuple[Hashable, Hashable], float], matches_per_pair: int = 1000,
                           seed: int = 0) -> list[tuple[Hashable, Hashable]]:
    """(winner, loser) matches with exactly round(rate * matches_per_pair) wins for the first of each pair,
    in an order shuffled by `seed`."""
    if not isinstance(win_rates, Mapping) or not win_rates:
        raise ValueError(f"win_rates must be a non-empty {{(i, j): rate}} mapping, got {win_rates!r:.60}")
    V.integer("matches_per_pair", matches_per_pair, low=1)
    V.integer("seed", seed, low=0)
    matches = []
    for (i, j), rate in win_rates.items():
        V.probability(f"win_rates[{(i, j)!r}]", rate)
        wins = round(rate * matches_per_pair)
        matches += [(i, j)] * wins + [(j, i)] * (matches_per_pair - wins)
    random.Random(seed).shuffle(matches)
    return matches


def players_of(matches: Sequence[tuple[Hashable, Hashable]]) -> list:
    """Every player in the matches, sorted."""
    V.non_empty("matches", matches)
    return sorted({p for m in matches for p in m})


def elo_expected(rating_a: float, rating_b: float) -> float:
    """Probability that A beats B under Elo: 1 / (1 + 10^((R_b - R_a) / 400)).

    >>> round(elo_expected(1600, 1400), 3)
    0.76
    """
    return 1.0 / (1.0 + 10 ** ((rating_b - rating_a) / 400))


def elo(matches: Sequence[tuple[Hashable, Hashable]], k_factor: float = 32.0, initial: float = 1500.0) -> dict:
    """Elo ratings after playing (winner, loser) matches in the order given; K is the step size.

    >>> {k: round(v, 1) for k, v in elo([("a", "b"), ("a", "b")]).items()}
    {'a': 1530.5, 'b': 1469.5}
    """
    V.number("k_factor", k_factor, low=0.0, low_open=True, high=400.0)
    ratings = {p: float(initial) for p in players_of(matches)}
    for winner, loser in matches:
        delta = k_factor * (1.0 - elo_expected(ratings[winner], ratings[loser]))
        ratings[winner] += delta
        ratings[loser] -= delta
    return ratings


def elo_over_orders(matches: Sequence[tuple[Hashable, Hashable]], seeds: Sequence[int], k_factor: float = 32.0) \
        -> dict[Hashable, list[float]]:
    """Each player's Elo rating for each shuffle of the same matches (one seed per shuffle)."""
    V.non_empty("seeds", seeds)
    out: dict[Hashable, list[float]] = {p: [] for p in players_of(matches)}
    for seed in seeds:
        order = list(matches)
        random.Random(seed).shuffle(order)
        for p, r in elo(order, k_factor).items():
            out[p].append(r)
    return out


def win_matrix(matches: Sequence[tuple[Hashable, Hashable]], players: Sequence[Hashable] | None = None) -> np.ndarray:
    """wins[i, j] = how many times players[i] beat players[j]; shape (P, P)."""
    players = list(players) if players is not None else players_of(matches)
    index = {p: i for i, p in enumerate(players)}
    wins = np.zeros((len(players), len(players)))
    for winner, loser in matches:
        if winner not in index or loser not in index:
            raise ValueError(f"matches name a player not in players {players}: {(winner, loser)!r}")
        wins[index[winner], index[loser]] += 1
    return wins


def bradley_terry(wins: np.ndarray, iterations: int = 1000, tol: float = 1e-10) -> np.ndarray:
    """Bradley-Terry strengths p (sum 1) maximising the likelihood of wins[i, j], P(i beats j) = p_i / (p_i + p_j).

    Hunter's (2004) MM update p_i <- W_i / sum_j n_ij / (p_i + p_j), then renormalised to sum 1 (the likelihood
    only fixes ratios). wins: (P, P); returns (P,). Every player needs at least one win and one loss.
    """
    wins = np.asarray(wins, dtype=np.float64)
    if wins.ndim != 2 or wins.shape[0] != wins.shape[1] or wins.shape[0] < 2:
        raise ValueError(f"wins must be a square (P, P) matrix with P >= 2, got shape {wins.shape}")
    if (wins < 0).any() or np.isnan(wins).any():
        raise ValueError("wins must hold non-negative counts")
    V.integer("iterations", iterations, low=1)
    total_wins = wins.sum(axis=1)
    games = wins + wins.T
    if (total_wins == 0).any() or (wins.sum(axis=0) == 0).any():
        raise ValueError("every player needs at least one win and one loss for a finite Bradley-Terry fit")
    p = np.full(len(wins), 1.0 / len(wins))
    for _ in range(iterations):
        denom = (games / (p[:, None] + p[None, :])).sum(axis=1)
        new = total_wins / denom
        new /= new.sum()
        if np.abs(new - p).max() < tol:
            return new
        p = new
    return p


def bt_win_probability(strengths: np.ndarray) -> np.ndarray:
    """P(i beats j) = p_i / (p_i + p_j) for every pair; shape (P, P)."""
    p = np.asarray(strengths, dtype=np.float64)
    return p[:, None] / (p[:, None] + p[None, :])


def bt_to_elo(strengths: np.ndarray, center: float = 1500.0) -> np.ndarray:
    """Bradley-Terry strengths on the Elo scale: center + 400 log10(p_i / geometric mean of p); shape (P,)."""
    log_p = np.log10(np.asarray(strengths, dtype=np.float64))
    return center + 400 * (log_p - log_p.mean())


def ranking(scores: Mapping[Hashable, float]) -> list:
    """Players ordered from best to worst score."""
    return sorted(scores, key=lambda p: -scores[p])


def log_likelihood(wins: np.ndarray, probabilities: np.ndarray) -> float:
    """Sum over pairs of wins[i, j] * log P(i beats j): how well a model of win probabilities fits the matches."""
    wins = np.asarray(wins, dtype=np.float64)
    prob = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-300, 1.0)
    mask = wins > 0
    return float((wins[mask] * np.log(prob[mask])).sum())


def elo_win_probability(ratings: Sequence[float]) -> np.ndarray:
    """P(i beats j) from Elo ratings; shape (P, P)."""
    r = np.asarray(ratings, dtype=np.float64)
    return 1.0 / (1.0 + 10 ** ((r[None, :] - r[:, None]) / 400))
