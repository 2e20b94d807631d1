"""Money as integer minor units (fen, cents) with a currency. Never a float.

Parsing from major units ("12.34") is exact; a value with more decimals than the currency
has is an error, not a rounding. Splitting an amount assigns remainders deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from tianping.errors import InvalidInput
from tianping.inputs import currency_exponent

#: Most digits before the decimal point of an amount in major units (int64 holds 18).
MAX_DIGITS = 17


def exponent_of(currency: str) -> int:
    """Decimal places of ``currency`` (its ISO 4217 minor unit).

    >>> exponent_of("CNY"), exponent_of("JPY"), exponent_of("KWD")
    (2, 0, 3)

    Raises:
        InvalidInput: not an ISO 4217 code with minor units.
    """
    exponent = currency_exponent(currency)
    if exponent is None:
        raise InvalidInput(
            f"{currency!r} is not an ISO 4217 currency code (e.g. CNY, USD, JPY)", field="currency"
        )
    return exponent


def to_minor(value: str | int | Decimal, currency: str = "CNY", *, field: str = "amount") -> int:
    """Parse a major-unit amount exactly into minor units.

    >>> to_minor("12.34")
    1234
    >>> to_minor(5)
    500

    Raises:
        InvalidInput: not a number, or more decimals than the currency has.
    """
    if isinstance(value, float):
        raise InvalidInput("money must not be a float; pass a string or Decimal", field=field)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput(f"{value!r} is not an amount", field=field) from None
    if not amount.is_finite():
        raise InvalidInput(f"{value!r} is not a finite amount", field=field)
    if amount and amount.adjusted() > MAX_DIGITS:  # before building a huge int from it
        raise InvalidInput(f"{value!r} is too large an amount", field=field)
    scaled = amount.scaleb(exponent_of(currency))
    if scaled != scaled.to_integral_value():
        raise InvalidInput(
            f"{value!r} has more than {exponent_of(currency)} decimals for {currency}", field=field
        )
    return int(scaled)


def to_major(amount_minor: int, currency: str = "CNY") -> Decimal:
    """Minor units back to an exact Decimal in major units.

    >>> to_major(1234)
    Decimal('12.34')
    """
    return Decimal(amount_minor).scaleb(-exponent_of(currency))


def format_major(amount_minor: int, currency: str = "CNY") -> str:
    """Display string with the currency's decimals, e.g. ``'12.34'``."""
    exp = exponent_of(currency)
    return f"{to_major(amount_minor, currency):.{exp}f}"


def allocate(amount_minor: int, weights: list[int] | list[float]) -> list[int]:
    """Split ``amount_minor`` in proportion to ``weights`` so the parts sum exactly.

    Largest-remainder method; ties go to the earlier part, so the result is deterministic.

    >>> allocate(100, [1, 1, 1])
    [34, 33, 33]
    """
    total = sum(weights)
    if total <= 0 or any(w < 0 for w in weights):
        raise InvalidInput("weights must be non-negative and not all zero", field="weights")
    exact = [Decimal(amount_minor) * Decimal(str(w)) / Decimal(str(total)) for w in weights]
    parts = [int(e.to_integral_value(rounding="ROUND_FLOOR")) for e in exact]
    short = amount_minor - sum(parts)
    order = sorted(range(len(parts)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:short]:
        parts[i] += 1
    return parts


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units with its currency."""

    amount_minor: int
    currency: str = "CNY"

    def __post_init__(self) -> None:
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            raise InvalidInput("amount_minor must be an integer", field="amount_minor")
        exponent_of(self.currency)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __str__(self) -> str:
        return f"{format_major(self.amount_minor, self.currency)} {self.currency}"

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise InvalidInput(
                f"cannot combine {self.currency} with {other.currency}", field="currency"
            )
