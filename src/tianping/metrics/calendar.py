"""The marketplace's calendar: Double 11, 618, Spring Festival and your own campaigns (pure).

An :class:`Event` recurs once a year on a peak day with a window around it: the days before
the peak (pre-sale, the New Year shopping before Spring Festival) and after it (the hangover,
the holiday). Its peak is fixed in the Gregorian calendar (Double 11 on 11 November, 618 on
18 June), fixed in the lunar calendar (Spring Festival on the first day of the first lunar
month, which moves between 21 January and 20 February), or a list of days (a campaign that
runs when the business decides).

Lunar dates come from ``borax`` (``docs/decisions.md``), whose table covers lunar years
1900–2100; a year outside it is refused with that range, never guessed.

A calendar file (YAML) adds campaigns and may change the built-in windows::

    events:
      double11: {before_days: 20}        # pre-sale from 22 October
    campaigns:
      brand_day: {name: Brand day, date: "09-09", before_days: 2, after_days: 1}
      summer_sale: {dates: [2023-07-20, 2024-07-18], after_days: 4}
      lantern: {name: Lantern Festival, lunar: "01-15"}

>>> cal = default_calendar()
>>> cal.occurrence("spring_festival", 2024).peak
datetime.date(2024, 2, 10)
>>> w = cal.occurrence("double11", 2024)
>>> w.start, w.end
(datetime.date(2024, 11, 1), datetime.date(2024, 11, 14))
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tianping import yamldoc
from tianping.errors import InvalidInput, UsageError

#: The lunar years the lunar table covers (inclusive).
LUNAR_YEARS = (1900, 2100)
#: How far a window may reach on either side of its peak.
MAX_WINDOW_DAYS = 60
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_MONTH_DAY = re.compile(r"^(\d{1,2})-(\d{1,2})$")


@dataclass(frozen=True, slots=True)
class Event:
    """A yearly event: how its peak day is found, and the window around the peak.

    Attributes:
        key: short name used on the command line (``double11``).
        name: what people call it (``Double 11``).
        rule: ``gregorian`` (``month``/``day`` every year), ``lunar`` (lunar ``month``/``day``)
            or ``dates`` (the peak days listed in ``dates``).
        month, day: the peak's month and day for ``gregorian`` and ``lunar`` rules.
        dates: the peak days of a ``dates`` rule, at most one per year.
        before_days, after_days: the window's days before and after the peak.
    """

    key: str
    name: str
    rule: str
    month: int = 0
    day: int = 0
    dates: tuple[date, ...] = ()
    before_days: int = 0
    after_days: int = 0

    def peak(self, year: int) -> date:
        """The peak day in Gregorian ``year``.

        Raises:
            InvalidInput: the event has no peak that year (a campaign that did not run, a
                lunar year outside :data:`LUNAR_YEARS`).
        """
        if self.rule == "gregorian":
            return date(year, self.month, self.day)
        if self.rule == "lunar":
            return lunar_to_gregorian(year, self.month, self.day)
        for d in self.dates:
            if d.year == year:
                return d
        ran = ", ".join(str(d.year) for d in self.dates)
        raise InvalidInput(
            f"{self.key} did not run in {year} (the calendar lists it in {ran})", field="year"
        )

    def years(self, first: int, last: int) -> list[int]:
        """The years in ``first..last`` (inclusive) in which the event has a peak."""
        if self.rule == "dates":
            return sorted({d.year for d in self.dates if first <= d.year <= last})
        if self.rule == "lunar":
            first, last = max(first, LUNAR_YEARS[0]), min(last, LUNAR_YEARS[1])
        return list(range(first, last + 1))


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One year's event: its peak day and its window ``start..end`` (inclusive)."""

    key: str
    name: str
    year: int
    peak: date
    start: date
    end: date

    @property
    def days(self) -> int:
        """Days in the window."""
        return (self.end - self.start).days + 1

    @property
    def label(self) -> str:
        """``Double 11 2024 (2024-11-01…2024-11-14)``."""
        return f"{self.name} {self.year} ({self.start}…{self.end})"


#: The marketplace's own festivals. Windows follow the simulator's festivals (ten pre-sale
#: days, three after) and, for Spring Festival, the New Year shopping fortnight before it and
#: the week's holiday after it, when parcels stop.
BUILTIN: tuple[Event, ...] = (
    Event("double11", "Double 11", "gregorian", 11, 11, before_days=10, after_days=3),
    Event("618", "618", "gregorian", 6, 18, before_days=10, after_days=3),
    Event("spring_festival", "Spring Festival", "lunar", 1, 1, before_days=14, after_days=7),
)


@dataclass(frozen=True, slots=True)
class Calendar:
    """The events a marketplace plans around (built-in festivals and its campaigns)."""

    events: tuple[Event, ...] = BUILTIN

    @property
    def keys(self) -> tuple[str, ...]:
        """Every event's key, in the calendar's order."""
        return tuple(e.key for e in self.events)

    def event(self, key: str) -> Event:
        """The event named ``key``; a clear error naming the known keys otherwise."""
        for e in self.events:
            if e.key == key:
                return e
        raise UsageError(
            f"no event {key!r} in the calendar{yamldoc.hint(key, self.keys)}", field="event"
        )

    def occurrence(self, key: str, year: int) -> Occurrence:
        """Event ``key`` in Gregorian ``year``: its peak and window."""
        e = self.event(key)
        peak = e.peak(year)
        return Occurrence(
            e.key,
            e.name,
            year,
            peak,
            peak - timedelta(days=e.before_days),
            peak + timedelta(days=e.after_days),
        )

    def aligned(self, key: str, year: int) -> tuple[Occurrence, Occurrence]:
        """Event ``key`` in ``year - 1`` and in ``year``: the windows an aligned comparison
        sets side by side, day by day from the start (the same offsets from the peak)."""
        return self.occurrence(key, year - 1), self.occurrence(key, year)

    def between(self, first: date, last: date) -> list[Occurrence]:
        """Every occurrence whose window overlaps ``first..last``, by start day."""
        found = []
        for e in self.events:
            for year in e.years(first.year - 1, last.year + 1):
                o = self.occurrence(e.key, year)
                if o.start <= last and o.end >= first:
                    found.append(o)
        return sorted(found, key=lambda o: (o.start, o.key))

    def exposure(self, key: str, first: date, last: date) -> float:
        """The share of the days ``first..last`` inside a window of event ``key`` (0 to 1).

        >>> default_calendar().exposure("double11", date(2024, 11, 1), date(2024, 11, 30))
        0.4666666666666667
        """
        days = (last - first).days + 1
        inside = set()
        for o in self.between(first, last):
            if o.key == key:
                lo, hi = max(o.start, first), min(o.end, last)
                inside.update(range(lo.toordinal(), hi.toordinal() + 1))
        return len(inside) / days if days > 0 else 0.0

    def marks(self, first: date, last: date) -> dict[str, str]:
        """``{ISO peak day: name}`` for every peak inside ``first..last``: a chart's marks."""
        return {
            o.peak.isoformat(): o.name for o in self.between(first, last) if first <= o.peak <= last
        }


def default_calendar() -> Calendar:
    """The built-in festivals only."""
    return Calendar()


def lunar_to_gregorian(year: int, month: int, day: int) -> date:
    """The Gregorian day of lunar ``month``/``day`` in the lunar year starting in ``year``.

    >>> lunar_to_gregorian(2025, 1, 1)
    datetime.date(2025, 1, 29)

    Raises:
        InvalidInput: ``year`` outside :data:`LUNAR_YEARS`, or no such lunar day.
    """
    from borax.calendars.lunardate import InvalidLunarDateError, LunarDate

    if not LUNAR_YEARS[0] <= year <= LUNAR_YEARS[1]:
        raise InvalidInput(
            f"lunar dates are known for {LUNAR_YEARS[0]}–{LUNAR_YEARS[1]} only, not {year}",
            field="year",
        )
    try:
        return LunarDate(year, month, day).to_solar_date()
    except (InvalidLunarDateError, ValueError):
        raise InvalidInput(
            f"lunar year {year} has no day {month:02d}-{day:02d}", field="lunar"
        ) from None


def load_calendar(path: str | Path | None) -> Calendar:
    """The calendar of a YAML file: the built-in events, changed and added to by the file
    (the built-in events alone when ``path`` is empty or None).

    Raises:
        UsageError: the file cannot be read.
        InvalidInput: not YAML, an unknown key, a bad date or window: ``FILE:LINE: what``.
    """
    if not path:
        return default_calendar()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"no calendar file {path}", field="calendar") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read calendar file {path}: {exc}", field="calendar") from None
    return parse_calendar(yamldoc.read(text, source=str(path), strict=True), str(path), text)


def parse_calendar(data: Any, source: str = "calendar", text: str | None = None) -> Calendar:
    """A calendar from a parsed YAML document (see the module's docstring for the keys).

    >>> cal = parse_calendar({"campaigns": {"brand_day": {"date": "09-09"}}})
    >>> cal.occurrence("brand_day", 2024).peak
    datetime.date(2024, 9, 9)
    """
    if data is None:
        return Calendar()
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{source}: expected a mapping with events and campaigns", field=source)
    for key in data:
        if key not in ("events", "campaigns"):
            raise yamldoc.unknown_key(source, text, [key], ("events", "campaigns"))
    events = {e.key: e for e in BUILTIN}
    for key, spec in _mapping(data, "events", source, text).items():
        key = str(key)  # YAML reads 618 as a number
        if key not in events:
            raise yamldoc.unknown_key(source, text, ["events", key], events)
        events[key] = _window(events[key], spec, ["events", key], source, text, extra=())
    for key, spec in _mapping(data, "campaigns", source, text).items():
        at = ["campaigns", key]
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidInput(
                f"{yamldoc.where(source, text, at)}: campaign key {key!r} must be lower-case "
                "letters, digits and _ (starting with a letter, at most 40)",
                field=f"campaigns.{key}",
            )
        if key in events:
            raise InvalidInput(
                f"{yamldoc.where(source, text, at)}: campaign {key!r} has the name of a "
                "built-in event; change its window under events instead",
                field=f"campaigns.{key}",
            )
        events[key] = _campaign(key, spec, at, source, text)
    return Calendar(tuple(events.values()))


def _mapping(data: Mapping, key: str, source: str, text: str | None) -> Mapping:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(
            f"{yamldoc.where(source, text, [key])}: {key} must be a mapping by key", field=key
        )
    return value


_WINDOW_KEYS = ("name", "before_days", "after_days")
_PEAK_KEYS = ("date", "lunar", "dates")


def _window(event: Event, spec: Any, at: list, source: str, text, *, extra) -> Event:
    dotted = ".".join(str(p) for p in at)
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"{yamldoc.where(source, text, at)}: expected a mapping", field=dotted)
    for k in spec:
        if k not in (*_WINDOW_KEYS, *extra):
            raise yamldoc.unknown_key(source, text, [*at, k], (*_WINDOW_KEYS, *extra))
    changes: dict[str, Any] = {}
    if "name" in spec:
        name = spec["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 60:
            raise InvalidInput(
                f"{yamldoc.where(source, text, [*at, 'name'])}: name must be text of 1-60 "
                "characters",
                field=f"{dotted}.name",
            )
        changes["name"] = name.strip()
    for k in ("before_days", "after_days"):
        if k in spec:
            v = spec[k]
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_WINDOW_DAYS:
                raise InvalidInput(
                    f"{yamldoc.where(source, text, [*at, k])}: {k} must be a whole number of "
                    f"days from 0 to {MAX_WINDOW_DAYS}, not {v!r}",
                    field=f"{dotted}.{k}",
                )
            changes[k] = v
    return replace(event, **changes)


def _campaign(key: str, spec: Any, at: list, source: str, text) -> Event:
    dotted = ".".join(at)
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"{yamldoc.where(source, text, at)}: expected a mapping", field=dotted)
    given = [k for k in _PEAK_KEYS if k in spec]
    if len(given) != 1:
        raise InvalidInput(
            f"{yamldoc.where(source, text, at)}: campaign {key!r} needs exactly one of date "
            f"(MM-DD every year), lunar (lunar MM-DD) or dates (a list of days)"
            + (f"; found {', '.join(given)}" if given else ""),
            field=dotted,
        )
    rule = given[0]
    where = yamldoc.where(source, text, [*at, rule])
    if rule == "dates":
        event = Event(key, key, "dates", dates=_dates(spec["dates"], where, f"{dotted}.dates"))
    else:
        month, day = _month_day(spec[rule], where, f"{dotted}.{rule}", lunar=rule == "lunar")
        event = Event(key, key, "gregorian" if rule == "date" else "lunar", month, day)
    return _window(event, spec, at, source, text, extra=(rule,))


def _month_day(value: Any, where: str, field: str, *, lunar: bool) -> tuple[int, int]:
    found = _MONTH_DAY.match(str(value).strip())
    month, day = (int(found[1]), int(found[2])) if found else (0, 0)
    last = 30 if lunar else 31
    if not (1 <= month <= 12 and 1 <= day <= last):
        kind = "a lunar month-day" if lunar else "a month-day"
        raise InvalidInput(f"{where}: {value!r} is not {kind} like 09-09", field=field)
    if not lunar:
        try:
            date(2024, month, day)  # a leap year: 02-29 is allowed, 02-30 is not
        except ValueError:
            raise InvalidInput(
                f"{where}: {value!r} is not a day of the year", field=field
            ) from None
    return month, day


def _dates(value: Any, where: str, field: str) -> tuple[date, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{where}: dates must be a list of days (YYYY-MM-DD)", field=field)
    days = []
    for item in value:
        try:
            day = (
                date(item.year, item.month, item.day)
                if isinstance(item, date)
                else date.fromisoformat(str(item))
            )
        except ValueError:
            raise InvalidInput(
                f"{where}: {item!r} is not a day (YYYY-MM-DD)", field=field
            ) from None
        if any(d.year == day.year for d in days):
            raise InvalidInput(
                f"{where}: two days in {day.year}; a campaign peaks once a year (give the "
                "other run a key of its own)",
                field=field,
            )
        days.append(day)
    return tuple(sorted(days))
