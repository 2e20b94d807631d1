"""Day-level intensity of the simulated marketplace: weekly rhythm and festival peaks (pure).

The order intensity of day ``d`` is ``weekday(d) * festival(d)``. Festivals also bring more
visitors: a share ``festival_visit_share`` of the festival lift goes to the visit probability
and the rest to the conversion of a visit, so that visits times conversion equals the lift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from tianping.simulate.params import Festival, MarketParams

EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class DayIntensity:
    """Per-day multipliers over the simulated window (arrays of length ``days``).

    Attributes:
        epoch_days: each day as days since 1970-01-01 (Arrow ``date32`` values).
        weekday: weekday factor of each day, mean 1 over a week.
        festival: festival factor of each day (1 outside festivals).
        visit: multiplier of each buyer's visit probability.
        conversion: multiplier of each buyer's conversion on a visit.
    """

    epoch_days: np.ndarray
    weekday: np.ndarray
    festival: np.ndarray
    visit: np.ndarray
    conversion: np.ndarray

    @property
    def orders(self) -> np.ndarray:
        """Relative order intensity of each day: ``visit * conversion``."""
        return self.visit * self.conversion


def day_intensity(params: MarketParams) -> DayIntensity:
    """The multipliers of every day in the window of ``params``."""
    first = (params.start - EPOCH).days
    epoch_days = np.arange(first, first + params.days, dtype=np.int64)
    weekday = weekday_factor(params, epoch_days)
    festival = festival_factor(params.festivals, params.start, params.days)
    visit = 1.0 + params.festival_visit_share * (festival - 1.0)
    return DayIntensity(epoch_days, weekday, festival, visit, weekday * festival / visit)


def weekday_factor(params: MarketParams, epoch_days: np.ndarray) -> np.ndarray:
    """The weekday factor of each day (Monday = 0), normalised to mean 1 over a week."""
    factors = np.asarray(params.weekday_factors, dtype=np.float64)
    factors = factors / factors.mean()
    # 1970-01-01 was a Thursday (weekday 3).
    return factors[(epoch_days + 3) % 7]


def festival_factor(festivals: tuple[Festival, ...], start: date, days: int) -> np.ndarray:
    """Product of the festival multipliers on each day of the window."""
    out = np.ones(days, dtype=np.float64)
    end = start + timedelta(days=days)
    for fest in festivals:
        for year in range(start.year - 1, end.year + 2):
            peak = (date(year, fest.month, fest.day) - start).days
            _apply_festival(out, fest, peak, dict(fest.strength_by_year).get(year, 1.0))
    return out


def _apply_festival(out: np.ndarray, fest: Festival, peak: int, strength: float) -> None:
    offsets = np.arange(-fest.presale_days, fest.hangover_days + 1)
    mult = np.ones(offsets.size)
    pre = offsets < 0
    ramp = (fest.presale_days + offsets[pre] + 1) / max(fest.presale_days, 1)
    mult[pre] = 1.0 + (fest.presale_peak - 1.0) * ramp
    mult[offsets == 0] = fest.peak
    mult[offsets > 0] = fest.hangover
    if strength != 1.0:  # leave the default calendar's numbers exactly as they were
        mult = 1.0 + strength * (mult - 1.0)
    days = peak + offsets
    inside = (days >= 0) & (days < out.size)
    out[days[inside]] *= mult[inside]


def festival_days(params: MarketParams) -> dict[str, str]:
    """Festival peak days inside the window, ``{iso date: name}``."""
    found = {}
    end = params.start + timedelta(days=params.days)
    for fest in params.festivals:
        for year in range(params.start.year, end.year + 1):
            peak = date(year, fest.month, fest.day)
            if params.start <= peak < end:
                found[peak.isoformat()] = fest.name
    return dict(sorted(found.items()))


def session_seconds(rng: np.random.Generator, profile: tuple[float, ...], n: int) -> np.ndarray:
    """Seconds after UTC midnight at which ``n`` sessions start, following the hourly profile."""
    weights = np.asarray(profile, dtype=np.float64)
    hours = rng.choice(24, size=n, p=weights / weights.sum())
    return hours * 3600 + rng.integers(0, 3600, size=n)
