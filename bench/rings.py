"""Benchmark: abuse-ring detection on the simulator, and the cost of ring features in scoring.

Detection (issue 20): on the simulator's ``rings`` scenario, the share of ring accounts the
ring rule flags (recall, target >= 80 %) and the share of honest buyers it flags (target
<= 0.5 %), over 20 seeds. Ring accounts are those with at least one order (an account that
never ordered cannot be scored); honest buyers include serial returners and households.

Scale (issue 20): credit scores of every buyer from the warehouse (DuckDB) as today
(``features.buyer_credit``) and with ring features (``ring_features.buyer_credit_with_rings``:
the same history query, the link query, components and the ring scorecard), measured in the
same run on the same tables, in turn, with the ratio pair by pair; target: within 1.5x. The
floor beside it: the tightest hand SQL of the links (HAND_LINKS), checked to find the same
links, added to today's time. The tables are bench/credit.py's, with
device, address and card columns added (own values, households, 200 parcel lockers, 20 public
devices and 0.5 % of buyers in rings of 5).

Run: python bench/rings.py detect [--seeds 20] [--buyers 50000]
     python bench/rings.py scale [--buyers 1000000] [--orders-per-buyer 5]
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from credit import AS_OF, tables, timed

from tianping.aftersales import features, ring_features
from tianping.aftersales.rings import ATTRIBUTES, RingRules
from tianping.settings import Settings
from tianping.simulate.service import load_scenario, run_simulation
from tianping.warehouse import connect


def detect_one(seed: int, buyers: int, folder: Path) -> tuple[float, float, int, int]:
    wh = connect(Settings(home=folder, warehouse=f"duckdb://{folder / f's{seed}.duckdb'}"))
    try:
        run_simulation(wh, buyers=buyers, merchants=500, days=90, seed=seed,
                       scenario=load_scenario("rings"))  # fmt: skip
        f = ring_features.buyer_rings(wh, as_of=datetime(2030, 1, 1))
        truth = wh.to_arrow(wh.table("sim_buyers").select("buyer_id", "ring_id", "honesty"))
    finally:
        wh.close()
    order = np.argsort(truth.column("buyer_id").to_numpy(zero_copy_only=False).astype(str))
    ids = truth.column("buyer_id").to_numpy(zero_copy_only=False).astype(str)[order]
    pos = order[np.searchsorted(ids, f.buyer_id.astype(str))]
    in_ring = truth.column("ring_id").is_valid().to_numpy(zero_copy_only=False)[pos]
    honest = (truth.column("honesty").to_numpy(zero_copy_only=False) == "honest")[pos]
    flagged = f.flagged()
    return flagged[in_ring].mean(), flagged[honest].mean(), int(in_ring.sum()), int(honest.sum())


def detect(seeds: int, buyers: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, seeds + 1):
            recall, honest, n_ring, n_honest = detect_one(seed, buyers, Path(tmp))
            rows.append((recall, honest))
            print(f"seed {seed:2d}: recall {recall:6.1%} of {n_ring} ring accounts, "
                  f"honest flagged {honest:7.4%} of {n_honest}", flush=True)  # fmt: skip
    r, h = np.array(rows).T
    print(f"recall of ring accounts: mean {r.mean():.1%}, range {r.min():.1%} – {r.max():.1%}")
    print(f"honest buyers flagged:   mean {h.mean():.4%}, range {h.min():.4%} – {h.max():.4%}")


def with_identity(orders: pa.Table, seed: int = 7) -> pa.Table:
    """bench/credit.py's orders with device, address and card columns (see the module doc)."""
    rng = np.random.default_rng(seed)
    n = orders.num_rows
    buyer = pc.cast(pc.utf8_slice_codeunits(orders["buyer_id"], 1), pa.int64()).to_numpy()
    ring = np.where(buyer < buyer.max() * 0.005, buyer // 5, -1)
    household = np.where(buyer % 50 < 2, buyer - buyer % 2, buyer)  # 4 % in pairs
    station = pc.equal(orders["delivery_mode"], "station").to_numpy(zero_copy_only=False)
    device = np.where(rng.random(n) < 0.02, 10**9 + rng.integers(0, 20, n), buyer)
    address = np.where(station, 10**9 + (buyer * 2654435761) % 200, household)
    card = buyer.copy()
    for values, share in ((device, 0.8), (address, 0.7), (card, 0.6)):
        use = (ring >= 0) & (rng.random(n) < share)
        values[use] = 2 * 10**9 + ring[use] * 4 + rng.integers(0, 4, n)[use]
    return (orders.drop_columns(["device_id", "address_hash", "payment_fingerprint"])
            .append_column("device_id", _strings("d", device))
            .append_column("address_hash", _strings("a", address))
            .append_column("payment_fingerprint", _strings("f", card)))  # fmt: skip


def _strings(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")


#: The tightest hand SQL of the links this bench could write: per attribute, values used by two
#: or more accounts found by a MIN/MAX pair, with a 32-bit bitmap of the buyers' hashes that
#: drops values seen by more than the cap's accounts before their periods are grouped (DuckDB
#: only: ``bit_or``/``bit_count`` over a hash), then the same periods, cap and overlap join.
HAND_LINKS = """
WITH sp AS ({spans}),
s AS (SELECT * FROM sp SEMI JOIN
      (SELECT a, v FROM sp GROUP BY ALL HAVING count(*) BETWEEN 2 AND {cap}) USING (a, v))
SELECT x.b AS "left", y.b AS "right", x.a AS attribute, x.v AS value
FROM s x JOIN s y ON x.a = y.a AND x.v = y.v AND x.b < y.b
  AND x.f <= y.l + {window} AND y.f <= x.l + {window}
"""
HAND_SPANS = """
SELECT '{a}' AS a, v, b, f, l FROM (
  SELECT {a} AS v, buyer_id AS b, min(epoch(created_at)) AS f, max(epoch(created_at)) AS l
  FROM orders SEMI JOIN (
    SELECT v FROM (
      SELECT {a} AS v, min(buyer_id) AS lo, max(buyer_id) AS hi,
             bit_or(1::BIGINT << (hash(buyer_id) & 31)::BIGINT) AS m
      FROM orders WHERE created_at <= $as_of AND {a} IS NOT NULL AND {a} <> '' GROUP BY 1)
    WHERE lo <> hi AND bit_count(m) <= {cap}) k ON orders.{a} = k.v
  WHERE created_at <= $as_of GROUP BY 1, 2)
"""


def hand_links(wh, rules) -> pa.Table:
    spans = " UNION ALL ".join(HAND_SPANS.format(a=a, cap=rules.cap_accounts) for a in ATTRIBUTES)
    sql = HAND_LINKS.format(spans=spans, cap=rules.cap_accounts, window=rules.window_days * 86400)
    return wh.con.con.execute(sql, {"as_of": AS_OF}).fetch_arrow_table()


def _pairs(table: pa.Table) -> set[tuple]:
    return set(
        zip(
            *(table.column(c).to_pylist() for c in ("left", "right", "attribute", "value")),
            strict=True,
        )
    )


def scale(buyers: int, per_buyer: float, repeats: int) -> None:
    data = tables(buyers, per_buyer)
    data["orders"] = with_identity(data["orders"])
    rules = RingRules()
    with tempfile.TemporaryDirectory() as tmp:
        wh = connect(Settings(home=Path(tmp), warehouse=f"duckdb://{Path(tmp) / 'w.duckdb'}"))
        for name, table in data.items():
            wh.append(name, table)
        print(f"{buyers:,} buyers, {data['orders'].num_rows:,} orders, "
              f"{data['refunds'].num_rows:,} refunds", flush=True)  # fmt: skip
        # in turn, so that a drift in the machine's speed falls on both sides of each ratio
        today_s, rings_s = [], []
        for _ in range(repeats):
            t, plain = timed(lambda: features.buyer_credit(wh, as_of=AS_OF), 1)
            today_s.append(t)
            t, (scores, ring) = timed(
                lambda: ring_features.buyer_credit_with_rings(wh, as_of=AS_OF, rules=rules), 1
            )
            rings_s.append(t)
        ratios = np.array(rings_s) / np.array(today_s)
        print(f"scoring today:              median {np.median(today_s):6.2f} s  "
              f"(runs {', '.join(f'{x:.2f}' for x in today_s)})")  # fmt: skip
        print(f"scoring with ring features: median {np.median(rings_s):6.2f} s  "
              f"(runs {', '.join(f'{x:.2f}' for x in rings_s)})")  # fmt: skip
        print(f"ratio, pair by pair: {', '.join(f'{r:.2f}x' for r in ratios)}; "
              f"median {np.median(ratios):.2f}x (target 1.5x)")  # fmt: skip
        expr = ring_features.link_expr(wh, AS_OF, rules)
        ours_l, hand_l = [], []
        for _ in range(repeats):
            t, links = timed(lambda: wh.to_arrow(expr), 1)
            ours_l.append(t)
            t, hand = timed(lambda: hand_links(wh, rules), 1)
            hand_l.append(t)
        same = _pairs(links) == _pairs(hand)
        print(f"links query alone: ours median {np.median(ours_l):.2f} s, tightest hand SQL "
              f"{np.median(hand_l):.2f} s ({np.median(np.array(ours_l) / np.array(hand_l)):.2f}x); "
              f"{links.num_rows:,} links, the same: {same}")  # fmt: skip
        floor = np.median(today_s) + np.median(hand_l)
        print(f"floor for scoring with rings (today + hand links, nothing else): {floor:.2f} s "
              f"= {floor / np.median(today_s):.2f}x today")  # fmt: skip
        flagged = ring.flagged()
        print(f"rings found: {int((ring.ring >= 0).sum()):,} linked buyers, "
              f"{int(flagged.sum()):,} flagged; scores equal where no ring: "
              f"{bool(np.array_equal(scores.score[ring.ring < 0], _in(plain, scores)[ring.ring < 0]))}")  # fmt: skip
        wh.close()


def _in(plain, scores) -> np.ndarray:
    where = {b: i for i, b in enumerate(plain.buyer_id)}
    return plain.score[np.array([where[b] for b in scores.buyer_id])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    d = sub.add_parser("detect")
    d.add_argument("--seeds", type=int, default=20)
    d.add_argument("--buyers", type=int, default=50_000)
    s = sub.add_parser("scale")
    s.add_argument("--buyers", type=int, default=1_000_000)
    s.add_argument("--orders-per-buyer", type=float, default=5.0)
    s.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.what == "detect":
        detect(args.seeds, args.buyers)
    else:
        scale(args.buyers, args.orders_per_buyer, args.repeats)


if __name__ == "__main__":
    main()
