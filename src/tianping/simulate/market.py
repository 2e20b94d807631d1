"""Competitors simulated at the simulated marketplace's own scale (pure).

The seeds give annual GMV (2023, trillion yuan): Alibaba China retail ~8, Pinduoduo ~4, JD ~3,
Douyin ~2.6, and Pinduoduo's 1.67 in 2020. The simulated marketplace plays the largest
platform's part; each competitor's monthly figures are ours scaled by its GMV relative to that
platform's, so a market share means what it would mean there (about 45 % for us):

- **size**: ``our GMV per day × days in the month × ratio`` (Pinduoduo 4/8, JD 3/8, Douyin
  2.6/8), where "our GMV per day" is the mean over the whole simulated window: the
  competitors follow the market's size, not our festival peaks, so our share moves with them;
- **growth**: compounded monthly from the first simulated month, only where the seeds give
  it: Pinduoduo (4 / 1.67) ** (1/36) − 1 ≈ 2.46 % a month (2020 → 2023); the others flat;
- **buyers**: our mean monthly buying customers × the same ratio (the simulation assumes the
  competitors' buyers spend per month what ours do);
- **noise**: each figure × a log-normal factor (σ 3 %) from the seed.

Every row's ``source`` says it is simulated and how, so nothing passes for published data.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Every simulated row's source starts with this (the demo replaces exactly these rows).
SOURCE = "simulated at the demo marketplace's scale"
NOISE_SIGMA = 0.03


@dataclass(frozen=True, slots=True)
class Peer:
    """A competitor: its 2023 GMV relative to the largest platform's, and monthly growth."""

    platform: str
    ratio: float
    monthly_growth: float
    basis: str


PEERS = (
    Peer("pinduoduo", 4 / 8, (4 / 1.67) ** (1 / 36) - 1,
         "2023 GMV 4 of Alibaba's 8 trillion yuan; 1.67 trillion in 2020"),
    Peer("jd", 3 / 8, 0.0, "2023 GMV 3 of Alibaba's 8 trillion yuan"),
    Peer("douyin", 2.6 / 8, 0.0, "2023 GMV 2.6 of Alibaba's 8 trillion yuan (payment basis)"),
)  # fmt: skip


def competitor_rows(
    months: Sequence[str],
    gmv_per_day: float,
    buyers_per_month: float,
    seed: int,
    peers: Sequence[Peer] = PEERS,
) -> list[dict[str, str]]:
    """One market-file row per competitor and month (``YYYY-MM``): platform, period, gmv,
    buyers, source; GMV with two decimals, buyers whole.

    >>> rows = competitor_rows(["2024-04", "2024-05"], 1000.0, 300.0, seed=0)
    >>> [(r["platform"], r["period"]) for r in rows][:2]
    [('pinduoduo', '2024-04'), ('pinduoduo', '2024-05')]
    >>> 14_000 < float(rows[0]["gmv"]) < 16_000  # 1000 a day x 30 days x 4/8, give or take
    True
    """
    rng = np.random.default_rng([seed, 618])
    noise = np.exp(rng.normal(0.0, NOISE_SIGMA, size=(len(peers), len(months), 2)))
    out = []
    for i, peer in enumerate(peers):
        for k, month in enumerate(months):
            year, mo = (int(x) for x in month.split("-"))
            days = calendar.monthrange(year, mo)[1]
            trend = (1 + peer.monthly_growth) ** k
            gmv = gmv_per_day * days * peer.ratio * trend * noise[i, k, 0]
            buyers = buyers_per_month * peer.ratio * trend * noise[i, k, 1]
            out.append({
                "platform": peer.platform,
                "period": month,
                "gmv": f"{gmv:.2f}",
                "buyers": f"{round(buyers)}",
                "source": f"{SOURCE}: ours x {peer.ratio:.4g} ({peer.basis}), growth "
                          f"{peer.monthly_growth:.2%} a month, noise {NOISE_SIGMA:.0%}, seed {seed}",
            })  # fmt: skip
    return out
