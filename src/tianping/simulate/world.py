"""The simulated world shared by every chunk of buyers: calendar, merchants, products, plans (pure).

Experiments are planned here: each arm's true effects become multipliers, and its NPS effect in
points becomes a shift of the latent score (solved once from the documented score model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr

from tianping.errors import InvalidInput
from tianping.simulate.calendar import EPOCH, DayIntensity, day_intensity
from tianping.simulate.params import MarketParams
from tianping.simulate.population import Merchants, Products, make_merchants, make_products
from tianping.simulate.scenario import ExperimentSpec, Scenario

#: ``assign(buyer_numbers) -> [arm index per buyer (-1: not in it) for each experiment]``.
Assigner = Callable[[np.ndarray], list[np.ndarray]]

PROMOTER_CUT = 8.5  # a latent score at or above this rounds to 9 or 10
DETRACTOR_CUT = 6.5  # below this it rounds to 0..6


@dataclass(frozen=True, slots=True)
class PlannedExperiment:
    """An experiment with its window in day numbers and per-arm effect arrays."""

    spec: ExperimentSpec
    start: int
    end: int
    conversion: np.ndarray
    order_value: np.ndarray
    refund: np.ndarray
    repurchase: np.ndarray
    nps_shift: np.ndarray

    @property
    def has_repurchase(self) -> bool:
        """Whether any arm changes repurchase (which then needs the repurchase pass)."""
        return bool(np.any(self.repurchase != 1.0))


@dataclass(frozen=True, slots=True)
class World:
    """Everything every chunk of buyers shares."""

    params: MarketParams
    seed: int
    intensity: DayIntensity
    merchants: Merchants
    products: Products
    experiments: tuple[PlannedExperiment, ...]
    assign: Assigner

    @property
    def start_second(self) -> int:
        """The window's start as seconds since the epoch."""
        return (self.params.start - EPOCH).days * 86400

    @property
    def end_offset(self) -> int:
        """The window's end as seconds after its start (events at or after it are censored)."""
        return self.params.days * 86400


def build_world(
    params: MarketParams, scenario: Scenario, seed: int, merchants: int, assign: Assigner
) -> World:
    """Draw merchants and products and plan the scenario's experiments."""
    rng = np.random.default_rng([seed, 0])
    m = make_merchants(rng, params, merchants)
    products = make_products(rng, params, m)
    plans = tuple(plan_experiment(params, spec) for spec in scenario.experiments)
    return World(params, seed, day_intensity(params), m, products, plans, assign)


def plan_experiment(params: MarketParams, spec: ExperimentSpec) -> PlannedExperiment:
    """Turn an experiment's true effects into per-arm multipliers and latent NPS shifts."""
    start, end = spec.window(params.days)
    if start >= end:
        raise InvalidInput(
            f"experiment {spec.name}: its window starts after the simulation ends "
            f"(start_day {spec.start_day}, {params.days} days)",
            field="start_day",
        )

    def arr(name: str) -> np.ndarray:
        return np.array([1.0 + getattr(a.effects, name) for a in spec.arms])

    shifts = np.array([nps_shift(params, a.effects.nps, spec.name) for a in spec.arms])
    return PlannedExperiment(
        spec,
        start,
        end,
        arr("conversion"),
        arr("order_value"),
        arr("refund"),
        arr("repurchase"),
        shifts,
    )


def nps_of_latent(mean: np.ndarray | float, noise: float) -> np.ndarray | float:
    """Expected NPS (as a share, -1..1) of responses whose latent score has this mean.

    The score is ``clip(round(mean + N(0, noise)), 0, 10)``: promoters need the latent at or
    above 8.5, detractors below 6.5.
    """
    return ndtr((mean - PROMOTER_CUT) / noise) - ndtr((DETRACTOR_CUT - mean) / noise)


def nps_shift(params: MarketParams, points: float, name: str = "") -> float:
    """Latent shift that moves the population's expected NPS by ``points``.

    Solved on the documented score model: buyer means ``N(nps_mean, nps_buyer_sigma)`` plus
    response noise ``nps_noise``, i.e. a latent ``N(nps_mean, sqrt(sigma_b² + noise²))``.

    Raises:
        InvalidInput: the effect cannot be reached (NPS stays within -100..100).
    """
    if points == 0:
        return 0.0
    spread = float(np.hypot(params.nps_buyer_sigma, params.nps_noise))
    base = nps_of_latent(params.nps_mean, spread)

    def gap(shift: float) -> float:
        return nps_of_latent(params.nps_mean + shift, spread) - base - points / 100

    lo, hi = -10.0, 10.0
    if gap(lo) > 0 or gap(hi) < 0:
        raise InvalidInput(
            f"experiment {name}: an NPS effect of {points} points is out of reach "
            f"(baseline NPS {100 * base:.1f})",
            field="nps",
        )
    return float(brentq(gap, lo, hi, xtol=1e-10))
