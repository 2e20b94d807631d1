"""Figures for people, one way everywhere (pure): money with its symbol, thousands separators
and major units; rates as percentages; NPS in points; snake_case keys as words.

The demo report, the dashboard and the experiment report format through these, so a figure
reads the same on every page that shows it.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

#: Currency symbols shown before an amount; other currencies are written after it.
SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
#: Keys whose values are amounts of money in major units (as decimals or decimal strings).
MONEY_KEYS = frozenset({
    "refunded_by_merchant", "refunded_by_platform", "refunded_total", "abuse_loss",
    "refund_change", "requested", "refunded", "requested_amount", "refunded_amount", "amount",
    "gmv", "aov", "spend", "return", "honest_refused_amount", "abusive_paid_amount",
    "merchant_loss", "platform_cost",
})  # fmt: skip
#: Metrics stored as a fraction of a scale but read in points: NPS 0.35 is 35 points.
POINTS = {"nps": 100.0}
#: Words kept as written when a key is turned into a label.
_KEEP = {"nps": "NPS", "gmv": "GMV", "aov": "AOV", "dac": "DAC", "dau": "DAU", "id": "ID",
         "sla": "SLA", "roi": "ROI"}  # fmt: skip


def money(value: Any, currency: str = "CNY", *, minor: bool = False) -> str:
    """An amount with its currency, thousands separators and two decimals (minor units are
    turned into major ones first).

    >>> money(Decimal("1234567.5")), money(152_700, minor=True), money("-3.1", "USD")
    ('¥1,234,567.50', '¥1,527.00', '-$3.10')
    >>> money(12, "CHF")
    '12.00 CHF'
    """
    if value is None:
        return "—"
    amount = Decimal(str(value)) / (100 if minor else 1)
    text = f"{abs(amount):,.2f}"
    sign = "-" if amount < 0 else ""
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def number(value: Any) -> str:
    """A plain figure with thousands separators: whole numbers without decimals, others with
    up to two.

    >>> number(1_200_000.0), number(88.1), number(58.73333), number(None)
    ('1,200,000', '88.1', '58.73', '—')
    """
    if value is None:
        return "—"
    v = float(value)
    if v.is_integer():
        return f"{v:,.0f}"
    return f"{v:,.2f}".rstrip("0").rstrip(".")


def pct(value: Any, digits: int = 2) -> str:
    """A fraction as a percentage: ``0.0768`` → ``7.68%``."""
    return "—" if value is None else f"{float(value):.{digits}%}"


def points(metric: str, value: Any) -> Any:
    """A metric's value in the unit people read it in (NPS in points); others unchanged.

    >>> points("nps", 0.3529), points("orders", 0.77)
    (35.29, 0.77)
    """
    if value is None or metric not in POINTS:
        return value
    return round(float(value) * POINTS[metric], 10)


#: Metrics that are shares of something: shown as percentages.
RATES = frozenset({"conversion", "refund_rate", "refund_amount_rate", "door_delivery_rate",
                   "repurchase_30d", "auto_decision_rate"})  # fmt: skip


def metric_value(metric: str, value: Any, currency: str = "CNY") -> str:
    """A metric's value in its unit: rates in percent, money with its symbol, NPS in points.

    >>> metric_value("refund_rate", 0.0833), metric_value("aov", 119), metric_value("nps", 0.3529)
    ('8.33%', '¥119.00', '35.3')
    """
    if value is None:
        return "—"
    if metric in RATES:
        return pct(value)
    if metric in ("gmv", "aov"):
        return money(value, currency)
    if metric in POINTS:
        return f"{points(metric, value):.1f}"
    return f"{float(value):.4g}"


def label(key: str) -> str:
    """A snake_case key as a heading: ``auto_decision_rate`` → ``Auto decision rate``.

    >>> label("refunded_by_merchant"), label("nps"), label("from_refund_minor")
    ('Refunded by merchant', 'NPS', 'From refund')
    """
    words = str(key).removesuffix("_minor").split("_")
    out = [_KEEP.get(w, w) for w in words if w]
    if not out:
        return str(key)
    first = out[0]
    return " ".join([first if first in _KEEP.values() else first.capitalize(), *out[1:]])


def cell(key: str, value: Any, currency: str = "CNY") -> str:
    """A table cell by what its key says it holds: money, a rate, a count or a code.

    >>> cell("refunded_total", "16788.04"), cell("from_refund_minor", 1527)
    ('¥16,788.04', '¥15.27')
    >>> cell("auto_decision_rate", 0.9753), cell("requests", 12000), cell("action", "return_and_refund")
    ('97.53%', '12,000', 'return and refund')
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    name = str(key)
    if name.endswith("_minor") and _is_number(value):
        return money(value, currency, minor=True)
    if name in MONEY_KEYS and _is_number(value):
        return money(value, currency)
    if ("rate" in name.split("_") or name.endswith("share")) and _is_number(value):
        return pct(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if math.isfinite(value) else str(value)
    text = str(value)
    return text.replace("_", " ") if _CODE.match(text) else text


_CODE = re.compile(r"^[a-z]+(_[a-z]+)+$")  # an action or reason code: return_and_refund


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float | Decimal):
        return True
    try:
        Decimal(str(value))
    except (InvalidOperation, ValueError):
        return False
    return True
