"""One validation layer for every input: API bodies, queries and paths, dashboard forms, CLI.

Whatever reaches the store passed one of these checks, so the same value is refused with the
same message (and the same 4xx) whichever door it came through and whichever database is
behind it. The rules (docs/service.md#what-every-input-must-be):

- **text** refuses NUL, other control characters (free text keeps tab and newlines) and lone
  surrogates (not encodable as UTF-8), and has a length limit: identifiers 1-100 characters,
  names 200, free text 2,000;
- **money** is a whole number of minor units, never a bool or a float, within a bound per kind:
  orders, refunds and red packets up to :data:`MAX_AMOUNT_MINOR`, spend requests up to
  :data:`MAX_SPEND_MINOR`;
- **numbers** that may be fractional (a goal's target) are finite: NaN and infinities are refused;
- **currencies** are ISO 4217 codes that have minor units (the ``iso4217`` package's list:
  funds, metals and ``XXX`` are not money here);
- **instants** lie in ``[2000-01-01, 2100-01-01)`` UTC; an event that already happened (an
  order paid, a parcel delivered, an exposure) is at most :data:`FUTURE_SKEW` ahead of now;
- **documents** (evidence attached to a decision) nest at most :data:`MAX_DEPTH` deep, hold at
  most :data:`MAX_DOCUMENT_NODES` values, their numbers are finite and their text valid
  Unicode (control characters are kept: canonical JSON escapes them).

Pure: no I/O; the Pydantic types at the end wrap the same functions for request models.
"""

from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from tianping.errors import InvalidInput

#: Longest identifier (order, refund, buyer, merchant, product, coupon ids; names of things).
MAX_ID = 100
#: Longest name of a person or key holder, and of a decision's title.
MAX_NAME = 200
#: Longest title of a decision, and reference to evidence.
MAX_TITLE = 300
#: Longest free text (notes, comments, reasons, evidence URLs).
MAX_TEXT = 2000
#: Largest amount of an order, refund or red packet: 10 billion in major units of a
#: 2-decimal currency.
MAX_AMOUNT_MINOR = 10**12
#: Largest spend request: 1 trillion in major units of a 2-decimal currency (the spend cap is
#: far below; this bounds what an override may ask for).
MAX_SPEND_MINOR = 10**14
#: Earliest and latest instant any input may name.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
#: How far ahead of now an event that already happened may be stamped (clock skew).
FUTURE_SKEW = timedelta(days=1)
#: Deepest nesting of a document (a list or object inside another counts one level).
MAX_DEPTH = 32
#: Most values (scalars, lists and objects) in one document.
MAX_DOCUMENT_NODES = 100_000

# C0 and C1 controls, and the bidirectional embeddings, overrides and isolates (U+202A-E,
# U+2066-9), which can make an id or a note display as something else than it is.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
#: JSON Schema patterns of the same rules, for the OpenAPI document.
_C = r"\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069"  # what text may not hold
_CM = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069"
SINGLE_LINE_PATTERN = rf"^[^{_C}]*$"
MULTILINE_PATTERN = rf"^[^{_CM}]*$"
#: Free text with something besides blanks (space, tab, newlines) in it.
SAID_PATTERN = rf"^[ \t\r\n]*[^ \t\r\n{_CM}][^{_CM}]*$"
#: What surrounds text and does not count (ASCII blanks only, so the patterns can say it).
BLANKS = " \t\r\n"
#: One line that neither starts nor ends with a space (ids, names, titles).
ID_PATTERN = rf"^[^ {_C}]([^{_C}]*[^ {_C}])?$"


def reference_pattern(kinds: Sequence[str]) -> str:
    """The JSON Schema pattern of a ``KIND:NAME`` reference: one of ``kinds``, a colon, and a
    one-line name ending in a visible character.

    >>> import re; bool(re.match(reference_pattern(["race"]), "race:promo"))
    True
    """
    if not all(re.fullmatch(r"[a-z][a-z-]*", k) for k in kinds):
        raise ValueError(f"reference kinds are lower-case words: {kinds}")
    return rf"^(?:{'|'.join(kinds)}):[^{_C}]*[^ {_C}]$"


def text(
    value: Any, *, field: str, max_length: int = MAX_TEXT, min_length: int = 0,
    multiline: bool = False,
) -> str:  # fmt: skip
    """``value`` when it is acceptable text, else :class:`InvalidInput` naming ``field``.

    >>> text("a note", field="note")
    'a note'
    >>> text("a\\x00b", field="note")
    Traceback (most recent call last):
    ...
    tianping.errors.InvalidInput: note: contains a control character (U+0000) at position 2
    """
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: must be text, not {type(value).__name__}", field=field)
    bad = (_CONTROL_MULTILINE if multiline else _CONTROL).search(value) or _SURROGATE.search(value)
    if bad is not None:
        char, kind = bad.group(), "surrogate" if _SURROGATE.match(bad.group()) else "control"
        raise InvalidInput(
            f"{field}: contains a {kind} character (U+{ord(char):04X}) at position "
            f"{bad.start() + 1}",
            field=field,
        )
    if not min_length <= len(value) <= max_length:
        size = f"{min_length} to {max_length}" if min_length else f"at most {max_length}"
        raise InvalidInput(f"{field}: must have {size} characters, has {len(value)}", field=field)
    return value


def identifier(value: Any, *, field: str, max_length: int = MAX_ID) -> str:
    """An id or name: text on one line, 1 to ``max_length`` long, that neither starts nor ends
    with a space (an id is compared as sent: ``" o1"`` is not ``"o1"``, so it is refused).

    >>> identifier("o-1", field="order_id")
    'o-1'
    """
    text(value, field=field, min_length=1, max_length=max_length)
    if value != value.strip(" "):
        raise InvalidInput(f"{field}: must not start or end with a space", field=field)
    return value


def name(value: Any, *, field: str, max_length: int = MAX_NAME) -> str:
    """A name typed by a person (CLI option, form field): surrounding blanks are dropped,
    then it is an :func:`identifier`."""
    if isinstance(value, str):
        value = value.strip(BLANKS)
    return identifier(value, field=field, max_length=max_length)


def whole(value: Any, *, field: str, minimum: int, maximum: int) -> int:
    """A whole number (not a bool, not a float) within ``[minimum, maximum]``.

    >>> whole(5, field="n", minimum=1, maximum=10)
    5
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field}: must be a whole number, not {value!r}", field=field)
    if not minimum <= value <= maximum:
        raise InvalidInput(
            f"{field}: must be between {minimum:,} and {maximum:,}, got {value:,}", field=field
        )
    return value


def amount(
    value: Any, *, field: str = "amount_minor", minimum: int = 0,
    maximum: int = MAX_AMOUNT_MINOR,
) -> int:  # fmt: skip
    """Money in minor units within the kind's bound (orders, refunds, red packets by default).

    >>> amount(1234)
    1234
    >>> amount(2**63)
    Traceback (most recent call last):
    ...
    tianping.errors.InvalidInput: amount_minor: must be between 0 and 1,000,000,000,000, got 9,223,372,036,854,775,808
    """
    return whole(value, field=field, minimum=minimum, maximum=maximum)


def finite(value: Any, *, field: str, minimum: float | None = None,
           maximum: float | None = None) -> float:  # fmt: skip
    """A finite number (int or float, not a bool), optionally within bounds.

    >>> finite(2, field="target")
    2.0
    >>> finite(float("nan"), field="target")
    Traceback (most recent call last):
    ...
    tianping.errors.InvalidInput: target: must be a finite number, got nan
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{field}: must be a number, not {value!r}", field=field)
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        raise InvalidInput(f"{field}: must be a finite number, got {value}", field=field) from None
    if not math.isfinite(number):
        raise InvalidInput(f"{field}: must be a finite number, got {number}", field=field)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise InvalidInput(
            f"{field}: must be between {minimum} and {maximum}, got {number}", field=field
        )
    return number


def number_text(value: str, *, field: str) -> float:
    """A finite number typed as text (a form field or an option): ``"1e999999"`` is refused.

    >>> number_text(" 2.5 ", field="target")
    2.5
    """
    try:
        parsed = float(text(value, field=field, max_length=100).strip())
    except ValueError:
        raise InvalidInput(f"{field}: must be a number, got {value!r}", field=field) from None
    return finite(parsed, field=field)


def currency_exponent(code: str) -> int | None:
    """Decimal places of ISO 4217 ``code``; None for a code that is not on the list or has no
    minor unit (funds, precious metals, ``XXX``).

    >>> currency_exponent("CNY"), currency_exponent("JPY"), currency_exponent("XAU")
    (2, 0, None)
    """
    from iso4217 import Currency

    found = Currency.__members__.get(code.lower()) if isinstance(code, str) else None
    return None if found is None or found.code != code else found.exponent


def currency(value: Any, *, field: str = "currency") -> str:
    """An ISO 4217 currency code with minor units (``CNY``, ``USD``, ``JPY``, ...).

    >>> currency("CNY")
    'CNY'
    """
    if not isinstance(value, str) or currency_exponent(value) is None:
        raise InvalidInput(
            f"{field}: {value!r} is not an ISO 4217 currency code (e.g. CNY, USD, JPY)",
            field=field,
        )
    return value


def currencies() -> tuple[str, ...]:
    """Every code :func:`currency` accepts, sorted."""
    from iso4217 import Currency

    return tuple(sorted(c.code for c in Currency if c.exponent is not None))


#: Error codes of rules that depend on the calendar or the clock rather than on the value's
#: shape (a JSON Schema cannot state them): the API answers them 422 with these codes.
OUT_OF_WINDOW, IN_THE_FUTURE = "out_of_window", "in_the_future"
#: Every code a check of this module raises.
CODES = frozenset({"invalid_input", OUT_OF_WINDOW, IN_THE_FUTURE})


def instant(value: Any, *, field: str, now: datetime | None = None) -> datetime:
    """A timezone-aware instant (naive means UTC) in the documented window, as UTC.

    With ``now``, the instant is of something that already happened: at most
    :data:`FUTURE_SKEW` after ``now``.

    Raises:
        InvalidInput: not a datetime (``invalid_input``), outside the window
            (``out_of_window``), or in the future (``in_the_future``).
    """
    if not isinstance(value, datetime):
        raise InvalidInput(f"{field}: must be a date and time, not {value!r}", field=field)
    utc = to_utc(value)
    if utc is None or not EARLIEST <= utc < LATEST:
        shown = value.isoformat() if utc is None else f"{utc:%Y-%m-%d %H:%M} UTC"
        raise InvalidInput(
            f"{field}: {shown} is outside {EARLIEST:%Y-%m-%d} .. {LATEST:%Y-%m-%d}",
            field=field,
            code=OUT_OF_WINDOW,
        )
    if now is not None and utc > now + FUTURE_SKEW:
        raise InvalidInput(
            f"{field}: {utc:%Y-%m-%d %H:%M} UTC is in the future (now {now:%Y-%m-%d %H:%M})",
            field=field,
            code=IN_THE_FUTURE,
        )
    return utc


def to_utc(value: datetime) -> datetime | None:
    """``value`` in UTC (naive means UTC); None when the conversion leaves the calendar
    (year 1 minus an offset, year 9999 plus one)."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def clamp(value: datetime | None) -> datetime | None:
    """A filter's instant moved into the window (a filter may say "since 1900"; it finds
    the same rows as "since 2000")."""
    if value is None:
        return None
    utc = to_utc(value)
    if utc is None:
        return EARLIEST if value.year < 2000 else LATEST
    return min(max(utc, EARLIEST), LATEST)


def document(value: Any, *, field: str, max_depth: int = MAX_DEPTH) -> Any:
    """``value`` when it is a JSON document tianping can freeze: bounded depth and size,
    string keys, text that is valid Unicode, finite numbers.

    Its strings may hold control characters: a document is stored as canonical JSON, which
    escapes them. Walked without recursion, so a hostile depth cannot exhaust the stack.

    >>> document({"a": [1, 2.5, "x", None]}, field="data")
    {'a': [1, 2.5, 'x', None]}
    """
    stack: list[tuple[Any, int, str]] = [(value, 0, field)]
    nodes = 0
    while stack:
        item, depth, where = stack.pop()
        nodes += 1
        if nodes > MAX_DOCUMENT_NODES:
            raise InvalidInput(f"{field}: more than {MAX_DOCUMENT_NODES:,} values", field=field)
        if isinstance(item, Mapping | list | tuple | set | frozenset):
            if depth >= max_depth:
                raise InvalidInput(f"{where}: nested deeper than {max_depth} levels", field=field)
            pairs = item.items() if isinstance(item, Mapping) else enumerate(list(item))
            for k, v in pairs:
                if isinstance(item, Mapping):
                    _unicode(k, f"{where} key", field)
                plain = isinstance(k, str) and k.isidentifier()
                stack.append((v, depth + 1, f"{where}.{k}" if plain else f"{where}[{k!r}]"))
        elif isinstance(item, str):
            _unicode(item, where, field)
        elif isinstance(item, bool | int) or item is None:
            continue  # canonical JSON writes integers of any size exactly
        elif isinstance(item, float):
            finite(item, field=where)
        else:
            stack.extend(_frozen_form(item, depth, where, field))
    return value


def _unicode(value: Any, where: str, field: str) -> None:
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: keys must be text, not {type(value).__name__}", field=field)
    bad = _SURROGATE.search(value)
    if bad is not None:
        raise InvalidInput(
            f"{where}: contains a surrogate character (U+{ord(bad.group()):04X}) at position "
            f"{bad.start() + 1}",
            field=field,
        )


def _frozen_form(item: Any, depth: int, where: str, field: str) -> list[tuple[Any, int, str]]:
    """What a non-JSON value freezes as (tianping.audit.canonical), to be checked too:
    decimals must be finite; dates, enums and fractions are plain; numpy values and
    dataclasses are checked as the lists and objects they become."""
    if isinstance(item, Decimal):
        if not item.is_finite():
            raise InvalidInput(f"{where}: must be a finite number, got {item}", field=field)
        return []
    if isinstance(item, date | time | Enum | Fraction):
        return []
    if hasattr(item, "tolist"):
        return [(item.tolist(), depth, where)]
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        fields = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
        return [(fields, depth, where)]
    raise InvalidInput(f"{where}: {type(item).__name__} is not JSON", field=field)


def printable_key(value: str, *, field: str, max_length: int = 255) -> str:
    """An opaque client token (an ``Idempotency-Key``): 1 to ``max_length`` visible ASCII
    characters.

    >>> printable_key("retry-42", field="Idempotency-Key")
    'retry-42'
    """
    if not 1 <= len(value) <= max_length or not all("!" <= c <= "~" for c in value):
        raise InvalidInput(
            f"{field}: must be 1 to {max_length} visible ASCII characters (no spaces)",
            field=field,
        )
    return value


def normalise(value: str) -> str:
    """NFC form of a text already checked (identifiers compare equal however typed)."""
    return unicodedata.normalize("NFC", value)


# -- Pydantic types: the same rules in request models ---------------------------------------


def _checked(fn, **kw):
    def check(value):
        try:
            return fn(value, field="value", **kw)
        except InvalidInput as exc:  # Pydantic names the field itself; the code goes along
            raise PydanticCustomError(exc.code, exc.message.removeprefix("value: ")) from None

    return check


def _same(fn, **kw):
    """A Pydantic after-validator running ``fn`` but keeping the value as parsed."""
    check = _checked(fn, **kw)

    def keep(value):
        check(value)
        return value

    return AfterValidator(keep)


def _schema(pattern: str, **kw) -> Any:
    # The pattern documents the rule in the OpenAPI document; the validators enforce it with
    # their own messages.
    return Field(json_schema_extra={"pattern": pattern}, **kw)


#: An identifier (1-100 characters, one line, no surrounding spaces).
Id = Annotated[
    str,
    _schema(ID_PATTERN, min_length=1, max_length=MAX_ID),
    AfterValidator(_checked(identifier)),
]
#: A unit (buyer, device) an experiment assigns: 1-200 characters, one line, exactly as sent.
UnitId = Annotated[
    str,
    _schema(ID_PATTERN, min_length=1, max_length=MAX_NAME),
    _same(identifier, max_length=MAX_NAME),
]
#: A person's or key holder's name (1-200 characters, one line, no surrounding spaces).
Name = Annotated[
    str,
    _schema(ID_PATTERN, min_length=1, max_length=MAX_NAME),
    AfterValidator(_checked(identifier, max_length=MAX_NAME)),
]
#: A decision's title or an evidence reference (1-300 characters, one line, no surrounding
#: spaces).
Title = Annotated[
    str,
    _schema(ID_PATTERN, min_length=1, max_length=MAX_TITLE),
    AfterValidator(_checked(identifier, max_length=MAX_TITLE)),
]
#: Free text up to 2,000 characters; tab and newlines allowed.
Text = Annotated[str, _schema(MULTILINE_PATTERN, max_length=MAX_TEXT), _same(text, multiline=True)]
#: Free text that says something: 1-2,000 characters, not only blanks.
Said = Annotated[
    str, _schema(SAID_PATTERN, min_length=1, max_length=MAX_TEXT), _same(text, multiline=True)
]
#: Short one-line text up to 100 characters (a tracking number), possibly empty.
ShortText = Annotated[str, _schema(SINGLE_LINE_PATTERN, max_length=MAX_ID), _same(text)]


def _integral(value: Any) -> Any:
    # JSON has one number type: 530.0 is the integer 530 (as JSON Schema's "integer" says),
    # 530.5, "530" and true are not.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def whole_number(minimum: int, maximum: int) -> Any:
    """A whole number type within ``[minimum, maximum]``: an integral JSON number (``530.0``)
    is taken, a fraction, a numeric string or a bool is not. (The validator comes after the
    bounds in ``Annotated`` so the OpenAPI document states them.)"""
    return Annotated[int, Field(strict=True, ge=minimum, le=maximum), BeforeValidator(_integral)]


#: Money of an order, refund or red packet, >= 0.
Money = whole_number(0, MAX_AMOUNT_MINOR)
#: Money of an order, refund or red packet, >= 1.
PositiveMoney = whole_number(1, MAX_AMOUNT_MINOR)
#: Money of a spend request, >= 1.
SpendMoney = whole_number(1, MAX_SPEND_MINOR)
#: A finite number (JSON cannot carry NaN; Python's parser can, and it is refused); a
#: numeric string is not a number.
Finite = Annotated[float, Field(strict=True), _same(finite)]
#: An ISO 4217 code with minor units; the OpenAPI document lists them.
Currency = Annotated[
    str, _same(currency), WithJsonSchema({"type": "string", "enum": list(currencies())})
]
#: Any JSON document tianping can freeze (evidence attached to a decision).
Document = Annotated[Any, _same(document)]
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_only(value: Any) -> Any:
    # An instant is an ISO 8601 string (or a datetime from Python): a bare number would
    # otherwise be read as seconds since 1970.
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise PydanticCustomError("invalid_input", "must be an ISO 8601 date (and time)")


#: An instant in the documented window (kept as sent; services convert to UTC). The pattern
#: tells clients the years; an offset that moves it out of the window is still refused.
Instant = Annotated[datetime, _schema(r"^20[0-9]{2}-"), BeforeValidator(_iso_only), _same(instant)]
#: A calendar date, ``YYYY-MM-DD``.
IsoDate = Annotated[date, BeforeValidator(_iso_only)]
#: An instant in a filter: ISO 8601, moved into the window (:func:`clamp`).
InstantFilter = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(clamp)]
