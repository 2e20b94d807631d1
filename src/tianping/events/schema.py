"""The event tables tianping reads, as data (pure: no I/O).

``docs/data.md`` documents the same schemas for people. Money columns are major units in files
(``12.34``) and exact decimals in the warehouse; timestamps are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Column kinds. ``money``: exact decimal with the currency's places; ``timestamp``: UTC instant;
#: ``date``: calendar day; ``int``: whole number; ``bool``: true/false; ``enum``: one of choices.
KINDS = ("string", "money", "timestamp", "date", "int", "bool", "enum")


@dataclass(frozen=True, slots=True)
class Column:
    """One column of an event table."""

    name: str
    kind: str
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True, slots=True)
class TableSchema:
    """One event table: its columns, its key and the column that places a row in time."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    time_column: str
    doc: str = ""

    @property
    def required(self) -> tuple[str, ...]:
        """The columns every row must fill."""
        return tuple(c.name for c in self.columns if c.required)

    @property
    def names(self) -> tuple[str, ...]:
        """Every column's name, in the documented order."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The column ``name``; :class:`KeyError` when the table has none."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _c(name: str, kind: str, required: bool = False, **kw) -> Column:
    return Column(name, kind, required, **kw)


ORDERS = TableSchema(
    "orders",
    (
        _c("order_id", "string", True, doc="unique order id"),
        _c("buyer_id", "string", True),
        _c("merchant_id", "string", True),
        _c("category", "string", True),
        _c("amount", "money", True, minimum=0, doc="amount paid, major units"),
        _c("created_at", "timestamp", True, doc="when the order was paid"),
        _c("product_id", "string"),
        _c("coupon_amount", "money", minimum=0, doc="red packet redeemed on the order"),
        _c("delivered_at", "timestamp"),
        _c("delivery_mode", "enum", choices=("door", "station")),
        _c("channel", "string"),
        _c("device_id", "string", doc="device the order was placed from (empty: unknown)"),
        _c("address_hash", "string", doc="hash of the shipping address (empty: unknown)"),
        _c("payment_fingerprint", "string", doc="payment-method fingerprint (empty: unknown)"),
    ),
    key=("order_id",),
    time_column="created_at",
    doc="one row per paid order",
)

REFUNDS = TableSchema(
    "refunds",
    (
        _c("refund_id", "string", True),
        _c("order_id", "string", True),
        _c("requested_at", "timestamp", True),
        _c("reason", "string", True),
        _c("requested_amount", "money", True, minimum=0),
        _c("decision", "string"),
        _c("refunded_amount", "money", minimum=0),
        _c("returned", "bool"),
        _c("decided_at", "timestamp"),
    ),
    key=("refund_id",),
    time_column="requested_at",
    doc="one row per refund request",
)

REVIEWS = TableSchema(
    "reviews",
    (
        _c("review_id", "string", True),
        _c("order_id", "string", True),
        _c("rating", "int", True, minimum=1, maximum=5),
        _c("created_at", "timestamp", True),
    ),
    key=("review_id",),
    time_column="created_at",
)

NPS = TableSchema(
    "nps",
    (
        _c("response_id", "string", True),
        _c("buyer_id", "string", True),
        _c("score", "int", True, minimum=0, maximum=10),
        _c("created_at", "timestamp", True),
    ),
    key=("response_id",),
    time_column="created_at",
)

ACTIVITY = TableSchema(
    "activity",
    (_c("buyer_id", "string", True), _c("date", "date", True)),
    key=("buyer_id", "date"),
    time_column="date",
    doc="one row per active user-day",
)

EXPOSURES = TableSchema(
    "exposures",
    (
        _c("experiment", "string", True),
        _c("variant", "string", True),
        _c("unit_id", "string", True),
        _c("exposed_at", "timestamp", True),
    ),
    key=("experiment", "unit_id", "variant", "exposed_at"),
    time_column="exposed_at",
)

TABLES: dict[str, TableSchema] = {
    t.name: t for t in (ORDERS, REFUNDS, REVIEWS, NPS, ACTIVITY, EXPOSURES)
}


def get_table(name: str) -> TableSchema | None:
    """The schema of event table ``name``, or None."""
    return TABLES.get(name)
