"""Canonical JSON: one byte string per value, so a frozen copy can be hashed and compared.

Evidence attached to a decision and every audit row are stored as this text together with its
SHA-256; the same value always serialises to the same bytes (sorted keys, no spaces, UTF-8,
dates in ISO 8601, decimals as strings, NaN and infinities as ``null``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from typing import Any

from tianping.errors import InvalidInput


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dicts with string keys, lists, str, int, float, bool, None.

    >>> plain({"b": (1, 2.5), "a": float("nan")})
    {'b': [1, 2.5], 'a': None}
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(v) for v in value]
        return sorted(items, key=dumps) if isinstance(value, set | frozenset) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | Fraction):
        return str(value)
    if isinstance(value, Enum):
        return plain(value.value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return plain(value.tolist())
    if hasattr(value, "item"):
        return plain(value.item())
    raise InvalidInput(f"cannot freeze a value of type {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    """The canonical JSON text of ``value``.

    >>> dumps({"b": 1, "a": [True, None, "天"]})
    '{"a":[true,null,"天"],"b":1}'
    """
    return json.dumps(
        plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def sha256(text: str) -> str:
    """Hex SHA-256 of the UTF-8 bytes of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class Frozen:
    """A frozen copy: the canonical text and its digest."""

    content: str
    sha256: str

    @classmethod
    def of(cls, value: Any) -> Frozen:
        """``value`` frozen: its canonical JSON text and that text's SHA-256."""
        text = dumps(value)
        return cls(text, sha256(text))

    def intact(self) -> bool:
        """True when the text still hashes to the recorded digest."""
        return sha256(self.content) == self.sha256
