"""Exact set algebra over a decision table's input space (pure).

A rule's condition is a *box*: one set per input dimension. Numeric dimensions hold an
:class:`Interval` (each end open or closed; integer dimensions are normalised to closed integer
ends), categorical and boolean dimensions hold a :class:`Values` set (finite, or the complement
of a finite set for open vocabularies such as categories). Everything here is interval
arithmetic, never sampling: two rules overlap exactly when every dimension's sets intersect,
and the inputs no rule covers are the domain minus the union of the boxes, computed by box
subtraction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

INF = math.inf


@dataclass(frozen=True, slots=True)
class Interval:
    """Numbers between ``lo`` and ``hi``; ``integer`` intervals hold whole numbers only.

    Integer intervals are kept closed at finite ends (``(2, 5)`` becomes ``[3, 4]``) so set
    operations on them are exact; an infinite end is always open.
    """

    lo: float
    lo_closed: bool
    hi: float
    hi_closed: bool
    integer: bool = False

    @staticmethod
    def make(lo: float, lo_closed: bool, hi: float, hi_closed: bool, integer: bool) -> Interval:
        """A normalised interval (integer ends made closed; infinite ends open)."""
        if integer:
            if math.isfinite(lo) and not lo_closed:
                lo, lo_closed = math.floor(lo) + 1, True
            elif math.isfinite(lo):
                lo = math.ceil(lo)
            if math.isfinite(hi) and not hi_closed:
                hi, hi_closed = math.ceil(hi) - 1, True
            elif math.isfinite(hi):
                hi = math.floor(hi)
        return Interval(lo, lo_closed and lo != -INF, hi, hi_closed and hi != INF, integer)

    @property
    def empty(self) -> bool:
        """Whether no value lies in the interval (an open point or lo above hi)."""
        return self.lo > self.hi or (self.lo == self.hi and not (self.lo_closed and self.hi_closed))

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the interval."""
        above = value > self.lo or (self.lo_closed and value == self.lo)
        return above and (value < self.hi or (self.hi_closed and value == self.hi))

    def intersect(self, other: Interval) -> Interval:
        """The values in both intervals."""
        lo, lo_c = _max_end((self.lo, self.lo_closed), (other.lo, other.lo_closed))
        hi, hi_c = _min_end((self.hi, self.hi_closed), (other.hi, other.hi_closed))
        return Interval.make(lo, lo_c, hi, hi_c, self.integer)

    def subtract(self, other: Interval) -> list[Interval]:
        """The parts of this interval outside ``other`` (at most two)."""
        if self.intersect(other).empty:
            return [] if self.empty else [self]
        parts = [
            Interval.make(self.lo, self.lo_closed, other.lo, not other.lo_closed, self.integer),
            Interval.make(other.hi, not other.hi_closed, self.hi, self.hi_closed, self.integer),
        ]
        return [p.intersect(self) for p in parts if not p.intersect(self).empty]

    def witness(self) -> float:
        """One number inside the (non-empty) interval."""
        if self.lo_closed:
            return _plain(self.lo)
        if self.hi_closed and self.lo == -INF:
            return _plain(self.hi)
        if math.isfinite(self.hi):
            return (self.lo + self.hi) / 2
        return _plain(self.lo + 1)

    def describe(self, name: str) -> str:
        """``name`` with its bounds, e.g. ``2000 <= amount_minor < 5000``."""
        if self.lo == self.hi:
            return f"{name} = {_plain(self.lo)}"
        if self.hi == INF and self.lo != -INF:
            return f"{name} {'>=' if self.lo_closed else '>'} {_plain(self.lo)}"
        left = f"{_plain(self.lo)} {'<=' if self.lo_closed else '<'} " if self.lo != -INF else ""
        right = f" {'<=' if self.hi_closed else '<'} {_plain(self.hi)}" if self.hi != INF else ""
        return f"{left}{name}{right}"


@dataclass(frozen=True, slots=True)
class Values:
    """A set of categorical values: ``values`` itself, or every value but them (``negated``)."""

    values: frozenset
    negated: bool = False

    @property
    def empty(self) -> bool:
        """Whether no value is in the set (an empty listing that is not negated)."""
        return not self.negated and not self.values

    def contains(self, value: object) -> bool:
        """Whether ``value`` is in the set (listed, or unlisted when negated)."""
        return (value in self.values) != self.negated

    def intersect(self, other: Values) -> Values:
        """The values in both sets, keeping ``not in`` sets negated."""
        if self.negated and other.negated:
            return Values(self.values | other.values, True)
        if self.negated:
            return Values(other.values - self.values)
        if other.negated:
            return Values(self.values - other.values)
        return Values(self.values & other.values)

    def complement(self) -> Values:
        """Every value not in this set."""
        return Values(self.values, not self.negated)

    def subtract(self, other: Values) -> list[Values]:
        """The part of this set outside ``other`` (empty list when nothing is left)."""
        rest = self.intersect(other.complement())
        return [] if rest.empty else [rest]

    def witness(self) -> object:
        """One member: the smallest listed value, or an unlisted name such as ``other``."""
        if not self.negated:
            return sorted(self.values, key=str)[0]
        n = 1
        while (other := "other" if n == 1 else f"other-{n}") in self.values:
            n += 1
        return other

    def describe(self, name: str) -> str:
        """The set as a condition on input ``name``, as a policy's messages show it."""
        shown = ", ".join(_show(v) for v in sorted(self.values, key=str))
        if self.negated:
            return f"{name} not in {{{shown}}}"
        if len(self.values) == 1:
            return f"{name} = {shown}"
        return f"{name} in {{{shown}}}"


Set = Interval | Values
Box = tuple[Set, ...]


def intersect(a: Box, b: Box) -> Box:
    """The box of inputs in both ``a`` and ``b``."""
    return tuple(x.intersect(y) for x, y in zip(a, b, strict=True))


def is_empty(box: Box) -> bool:
    """Whether some dimension of ``box`` holds no value (so no input lies in it)."""
    return any(s.empty for s in box)


def subtract(a: Box, b: Box) -> list[Box]:
    """``a`` minus ``b`` as disjoint boxes (at most two per dimension)."""
    if is_empty(intersect(a, b)):
        return [a]
    pieces: list[Box] = []
    kept = list(a)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        for part in x.subtract(y):
            pieces.append(tuple(kept[:i]) + (part,) + tuple(a[i + 1 :]))
        kept[i] = x.intersect(y)
    return pieces


def subtract_all(regions: list[Box], cutters: Sequence[Box], *, limit: int = 20000) -> list[Box]:
    """``regions`` minus the union of ``cutters``, as disjoint boxes.

    Raises:
        OverflowError: the remainder splits into more than ``limit`` boxes (a table far more
            fragmented than any hand-written policy).
    """
    for cutter in cutters:
        regions = [piece for r in regions for piece in subtract(r, cutter)]
        if len(regions) > limit:
            raise OverflowError(f"the input space splits into more than {limit} regions")
    return regions


def describe(box: Box, names: Sequence[str], domain: Box) -> str:
    """The box in words, leaving out the dimensions it does not restrict."""
    parts = [_shown(s, d).describe(n) for s, n, d in zip(box, names, domain, strict=True) if s != d]
    return ", ".join(parts) if parts else "every input"


def _shown(s: Set, d: Set) -> Set:
    """``s`` with the ends it shares with its domain left open, so they are not printed."""
    if not isinstance(s, Interval) or s.lo == s.hi:
        return s
    lo, lo_c = (-INF, False) if (s.lo, s.lo_closed) == (d.lo, d.lo_closed) else (s.lo, s.lo_closed)
    hi, hi_c = (INF, False) if (s.hi, s.hi_closed) == (d.hi, d.hi_closed) else (s.hi, s.hi_closed)
    return Interval(lo, lo_c, hi, hi_c, s.integer)


def witness(box: Box, names: Sequence[str]) -> dict[str, object]:
    """One input inside the (non-empty) box."""
    return {n: s.witness() for s, n in zip(box, names, strict=True)}


def exists_higher(low: Interval, high: Interval) -> bool:
    """Whether some value of ``high`` is strictly above some value of ``low`` (both non-empty)."""
    return high.hi > low.lo


def _max_end(a: tuple[float, bool], b: tuple[float, bool]) -> tuple[float, bool]:
    if a[0] != b[0]:
        return max(a, b, key=lambda e: e[0])
    return a[0], a[1] and b[1]


def _min_end(a: tuple[float, bool], b: tuple[float, bool]) -> tuple[float, bool]:
    if a[0] != b[0]:
        return min(a, b, key=lambda e: e[0])
    return a[0], a[1] and b[1]


def _plain(x: float) -> float | int:
    return int(x) if isinstance(x, float) and x.is_integer() else x


def _show(v: object) -> str:
    return "true" if v is True else "false" if v is False else str(v)
