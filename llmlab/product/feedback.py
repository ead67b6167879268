"""Simulated user feedback with known biases: leniency (some users like everything), position (the first answer
shown wins more often) and sycophancy (answers that agree with the user get a thumbs-up). With the truth known we
see naive thumbs-up averages rank the worse system first, and paired comparisons in random order or an implicit
signal (was the problem solved?) rank them right (AI Engineering ch. 10, "user feedback")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmlab import validate


@dataclass(frozen=True)
class System:
    """A system's true rate of correct answers and its rate of agreeing with whatever the user believes."""

    correct: float
    agrees: float


@dataclass(frozen=True)
class Users:
    """A cohort's biases: mean and spread of leniency (log-odds), weight of agreement, position bias."""

    leniency: float = 0.0
    leniency_sd: float = 1.0
    sycophancy: float = 1.0
    position: float = 0.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _draw(system: System, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    validate.probability("correct", system.correct)
    validate.probability("agrees", system.agrees)
    return rng.random(n) < system.correct, rng.random(n) < system.agrees


def thumbs_up(system: System, users: Users, n: int, seed: int = 0) -> np.ndarray:
    """n thumbs (1 up, 0 down): log-odds -1 + 2·correct + sycophancy·agrees + the user's leniency."""
    validate.positive_int("n", n)
    rng = np.random.default_rng(seed)
    correct, agrees = _draw(system, n, rng)
    leniency = rng.normal(users.leniency, users.leniency_sd, n)
    return (rng.random(n) < _sigmoid(-1 + 2 * correct + users.sycophancy * agrees + leniency)).astype(float)


def paired(first: System, second: System, users: Users, n: int, randomize: bool = True, seed: int = 0) -> np.ndarray:
    """n side-by-side choices by the same user (1 when `first` is chosen). The user prefers the answer with more
    2·correct + sycophancy·agrees (plus noise); with probability users.position they pick whichever is shown first.
    randomize=False always shows `second` first."""
    validate.positive_int("n", n)
    validate.probability("position", users.position)
    rng = np.random.default_rng(seed)
    (ca, aa), (cb, ab) = _draw(first, n, rng), _draw(second, n, rng)
    utility = 2 * (ca.astype(float) - cb) + users.sycophancy * (aa.astype(float) - ab) + rng.logistic(size=n)
    prefers_first = utility > 0
    first_shown = rng.random(n) < 0.5 if randomize else np.zeros(n, dtype=bool)
    by_position = rng.random(n) < users.position
    return np.where(by_position, first_shown, prefers_first).astype(float)


def solved(system: System, n: int, seed: int = 0, noise: float = 0.1) -> np.ndarray:
    """An implicit signal: 1 when the user did not come back with the same problem. It follows correctness, with
    `noise` of the outcomes flipped (users who gave up, or came back for another reason)."""
    validate.positive_int("n", n)
    validate.probability("noise", noise)
    rng = np.random.default_rng(seed)
    correct, _ = _draw(system, n, rng)
    return np.where(rng.random(n) < noise, ~correct, correct).astype(float)
