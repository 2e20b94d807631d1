"""Scores as rows for people: orchestration between the warehouse, the scorers and the edges.

Each function reads the warehouse once (through :mod:`tianping.aftersales.features`), scores,
and returns plain dict rows (lowest scores / most suspicious first) ready to render, optionally
writing every row to a CSV file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tianping.aftersales import features
from tianping.errors import UsageError


def _write_csv(columns: dict[str, np.ndarray], path: Path) -> None:
    import pyarrow.csv as pacsv

    try:
        pacsv.write_csv(pa.table(columns), str(path))
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc}", field="output") from None


def _head(order: np.ndarray, limit: int) -> np.ndarray:
    return order if limit <= 0 else order[:limit]


def credit_rows(
    wh: Any,
    *,
    buyers: Sequence[str] = (),
    as_of: datetime | None = None,
    limit: int = 20,
    points: bool = False,
    output: Path | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Expert credit scores as rows.

    With ``buyers``: one row per characteristic of each buyer (value, band, points, reason)
    and a ``score`` row. Otherwise: the ``limit`` lowest-scoring buyers (all with 0); every
    buyer is written to ``output`` when given.

    Returns:
        The rows and the number of buyers scored.
    """
    scores = features.buyer_credit(wh, buyer_ids=list(buyers) or None, as_of=as_of)
    if buyers:
        return _explain_buyers(scores), len(scores)
    order = np.lexsort((scores.buyer_id.astype(str), scores.score))
    if output is not None:
        cols = {"buyer_id": scores.buyer_id[order].astype(str), "score": scores.score[order]}
        for j, name in enumerate(scores.card.names):
            cols[f"points_{name}"] = scores.points[order, j]
        _write_csv(cols, output)
    rows = []
    for i in _head(order, limit):
        row: dict[str, Any] = {"buyer_id": scores.buyer_id[i], "score": int(scores.score[i])}
        if points:
            row.update({n: int(scores.points[i, j]) for j, n in enumerate(scores.card.names)})
        rows.append(row)
    return rows, len(scores)


def _explain_buyers(scores) -> list[dict[str, Any]]:
    rows = []
    for i, buyer in enumerate(scores.buyer_id):
        for line in scores.explain(i):
            rows.append(
                {"buyer_id": buyer, "characteristic": line.name, "value": round(line.value, 3),
                 "band": line.band, "points": line.points, "reason": line.reason}
            )  # fmt: skip
        rows.append(
            {"buyer_id": buyer, "characteristic": "score", "value": None, "band": "350–950",
             "points": int(scores.score[i]), "reason": f"base {scores.card.base} + points"}
        )  # fmt: skip
    return rows


def merchant_rows(
    wh: Any,
    *,
    merchants: Sequence[str] = (),
    as_of: datetime | None = None,
    limit: int = 20,
    output: Path | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Merchant quality scores as rows: per component for ``merchants``, else lowest first."""
    q = features.merchant_quality(wh, merchant_ids=list(merchants) or None, as_of=as_of)
    if merchants:
        rows = []
        for i, m in enumerate(q.merchant_id):
            for c in q.explain(i):
                rows.append(
                    {"merchant_id": m, "component": c.name, "value": _r(c.value, 4), "n": c.n,
                     "platform": _r(c.platform, 4), "sub_score": _r(c.sub_score, 2),
                     "weight": round(c.weight, 3)}
                )  # fmt: skip
            rows.append(
                {"merchant_id": m, "component": "score", "value": None, "n": None,
                 "platform": None, "sub_score": round(float(q.score[i]), 2), "weight": 1.0}
            )  # fmt: skip
        return rows, len(q)
    order = np.lexsort((q.merchant_id.astype(str), q.score))
    all_rows = q.to_rows()
    if output is not None:
        _write_csv({k: np.array([all_rows[i][k] for i in order]) for k in all_rows[0]}, output)
    return [all_rows[i] for i in _head(order, limit)], len(q)


def _r(value: float, digits: int) -> float | None:
    return None if value != value else round(value, digits)


def defect_rows(
    wh: Any,
    *,
    k: float = 2.0,
    threshold: float = 0.95,
    min_refunds: int = 3,
    flagged_only: bool = True,
    as_of: datetime | None = None,
    limit: int = 20,
    output: Path | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Product-defect signals as rows, most suspicious first; the count flagged."""
    signals = features.product_defects(
        wh, k=k, threshold=threshold, min_refunds=min_refunds, as_of=as_of
    )
    rows = signals.to_rows(flagged_only=flagged_only)
    if output is not None and rows:
        _write_csv({key: np.array([r[key] for r in rows]) for key in rows[0]}, output)
    return rows if limit <= 0 else rows[:limit], int(signals.flagged.sum())
