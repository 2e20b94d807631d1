"""Seeded Monte Carlo over arm posteriors: chance to be best, Thompson and top-two Thompson
allocation, expected loss (regret per unit) (pure: numpy only).

Thompson sampling sends each new unit to an arm with the probability that the arm is the best,
``p_k = P(theta_k = max_j theta_j)``. Top-two Thompson sampling (Russo 2020) aims at *naming*
the best arm quickly: with probability ``beta`` the unit goes to the sampled leader ``I``, else
to a challenger drawn from the posterior conditioned on ``I`` not being best, which gives the
closed form ``psi_k = beta p_k + (1 - beta) p_k sum_{i != k} p_i / (1 - p_i)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tianping.errors import InvalidInput
from tianping.races.posterior import Posterior

DEFAULT_DRAWS = 10_000


def draw_matrix(posts: Sequence[Posterior], draws: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(draws, arms)`` matrix of joint posterior draws (arms independent)."""
    if draws < 1:
        raise InvalidInput(f"draws must be >= 1, got {draws}", field="draws")
    return np.column_stack([p.sample(rng, draws) for p in posts])


def chance_to_be_best(samples: np.ndarray, *, higher_is_better: bool = True) -> np.ndarray:
    """Share of draws in which each arm (column) is the best.

    >>> s = np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 5.0], [1.0, 4.0]])
    >>> chance_to_be_best(s).tolist()
    [0.25, 0.75]
    """
    best = samples.argmax(axis=1) if higher_is_better else samples.argmin(axis=1)
    return np.bincount(best, minlength=samples.shape[1]) / samples.shape[0]


def expected_loss(samples: np.ndarray, *, higher_is_better: bool = True) -> np.ndarray:
    """Expected shortfall of each arm from the best arm, per unit (the regret of playing it)."""
    if higher_is_better:
        return (samples.max(axis=1, keepdims=True) - samples).mean(axis=0)
    return (samples - samples.min(axis=1, keepdims=True)).mean(axis=0)


def top_two_probabilities(p_best: np.ndarray, beta: float = 0.5) -> np.ndarray:
    """Top-two Thompson allocation probabilities from the chances to be best.

    >>> top_two_probabilities(np.array([0.5, 0.5])).tolist()
    [0.5, 0.5]
    >>> top_two_probabilities(np.array([0.9, 0.1, 0.0])).round(3).tolist()
    [0.5, 0.5, 0.0]
    """
    if not 0 < beta < 1:
        raise InvalidInput(f"top-two beta must be in (0, 1), got {beta}", field="top_two_beta")
    p = np.asarray(p_best, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.where(p < 1, p / (1 - p), 0.0)
    challenger = p * (odds.sum() - odds)
    sure = p >= 1
    if sure.any():  # one arm is certainly best: every challenger draw goes to the others
        rest = ~sure
        challenger = np.where(rest, 1.0 / max(int(rest.sum()), 1), 0.0)
    psi = beta * p + (1 - beta) * challenger
    return psi / psi.sum()
