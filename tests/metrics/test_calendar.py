"""The marketplace calendar: festivals on their published days, campaigns from YAML, clear errors."""

from datetime import date

import pytest

from tianping.errors import InvalidInput, UsageError
from tianping.metrics.calendar import (
    default_calendar,
    load_calendar,
    lunar_to_gregorian,
    parse_calendar,
)

#: Spring Festival (lunar new year's day) as published by the Purple Mountain Observatory /
#: the State Council's holiday notices.
SPRING_FESTIVAL = {
    2000: date(2000, 2, 5),
    2008: date(2008, 2, 7),
    2010: date(2010, 2, 14),
    2020: date(2020, 1, 25),
    2021: date(2021, 2, 12),
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2030: date(2030, 2, 3),
}


@pytest.mark.parametrize(("year", "published"), sorted(SPRING_FESTIVAL.items()))
def test_spring_festival_falls_on_the_published_day(year, published):
    assert default_calendar().occurrence("spring_festival", year).peak == published


def test_lantern_festival_and_a_leap_year_day():
    assert lunar_to_gregorian(2024, 1, 15) == date(2024, 2, 24)  # Lantern Festival 2024
    assert lunar_to_gregorian(2023, 8, 15) == date(2023, 9, 29)  # Mid-Autumn 2023


def test_lunar_years_outside_the_table_are_refused_with_the_range():
    cal = default_calendar()
    for year in (1899, 2101):
        with pytest.raises(InvalidInput, match=f"known for 1900–2100 only, not {year}"):
            cal.occurrence("spring_festival", year)
    with pytest.raises(InvalidInput, match="has no day 01-31"):
        lunar_to_gregorian(2024, 1, 31)


def test_fixed_festivals_and_their_windows():
    cal = default_calendar()
    d11 = cal.occurrence("double11", 2023)
    assert (d11.peak, d11.start, d11.end, d11.days) == (
        date(2023, 11, 11), date(2023, 11, 1), date(2023, 11, 14), 14,
    )  # fmt: skip
    s = cal.occurrence("618", 2025)
    assert (s.peak, s.start, s.end) == (date(2025, 6, 18), date(2025, 6, 8), date(2025, 6, 21))
    sf = cal.occurrence("spring_festival", 2026)
    assert (sf.start, sf.end) == (date(2026, 2, 3), date(2026, 2, 24))


def test_aligned_windows_have_the_same_days_around_the_peak():
    last, this = default_calendar().aligned("spring_festival", 2024)
    assert (last.year, this.year) == (2023, 2024)
    assert last.days == this.days
    assert (last.peak - last.start) == (this.peak - this.start)
    # the lunar peak moves 19 days later in the Gregorian calendar
    assert (this.peak - last.peak).days == 365 + 19


def test_between_and_marks_cross_the_turn_of_the_year():
    cal = default_calendar()
    found = cal.between(date(2024, 12, 20), date(2025, 1, 20))
    assert [(o.key, o.year) for o in found] == [("spring_festival", 2025)]  # window from 15 Jan
    assert cal.marks(date(2024, 12, 20), date(2025, 1, 20)) == {}  # its peak is outside
    assert cal.marks(date(2024, 1, 1), date(2024, 12, 31)) == {
        "2024-02-10": "Spring Festival", "2024-06-18": "618", "2024-11-11": "Double 11",
    }  # fmt: skip


def test_an_unknown_event_suggests_the_one_meant():
    with pytest.raises(
        UsageError, match="no event 'double_11' in the calendar .did you mean 'double11'"
    ):
        default_calendar().event("double_11")


CAMPAIGNS = """\
events:
  double11: {before_days: 20}
campaigns:
  brand_day: {name: Brand day, date: "09-09", before_days: 2, after_days: 1}
  summer_sale:
    dates: [2023-07-20, 2024-07-18]
    after_days: 4
  lantern: {name: Lantern Festival, lunar: "01-15"}
"""


def test_a_calendar_file_adds_campaigns_and_changes_windows(tmp_path):
    path = tmp_path / "calendar.yaml"
    path.write_text(CAMPAIGNS, encoding="utf-8")
    cal = load_calendar(path)
    assert cal.keys == ("double11", "618", "spring_festival", "brand_day", "summer_sale", "lantern")
    assert cal.occurrence("double11", 2024).start == date(2024, 10, 22)
    brand = cal.occurrence("brand_day", 2025)
    assert (brand.name, brand.start, brand.end) == (
        "Brand day",
        date(2025, 9, 7),
        date(2025, 9, 10),
    )
    summer = cal.occurrence("summer_sale", 2024)
    assert (summer.peak, summer.end, summer.name) == (
        date(2024, 7, 18),
        date(2024, 7, 22),
        "summer_sale",
    )
    assert cal.occurrence("lantern", 2024).peak == date(2024, 2, 24)
    with pytest.raises(
        InvalidInput, match="summer_sale did not run in 2025 .the calendar lists it in 2023, 2024"
    ):
        cal.occurrence("summer_sale", 2025)
    assert load_calendar(None) == load_calendar("") == default_calendar()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("campaign:\n  x: {date: 01-01}\n", "cal.yaml:1: unknown key 'campaign' (did you mean 'campaigns'?)"),
        ("events:\n  doubel11: {before_days: 3}\n", "cal.yaml:2: unknown key 'events.doubel11' (did you mean 'double11'?)"),
        ("events:\n  618: {before_day: 3}\n", "cal.yaml:2: unknown key 'events.618.before_day' (did you mean 'before_days'?)"),
        ("events:\n  double11: {before_days: -1}\n", "cal.yaml:2: before_days must be a whole number of days from 0 to 60, not -1"),
        ("campaigns:\n  sale: {date: 02-30}\n", "cal.yaml:2: '02-30' is not a day of the year"),
        ("campaigns:\n  sale: {lunar: 13-01}\n", "cal.yaml:2: '13-01' is not a lunar month-day like 09-09"),
        ("campaigns:\n  sale:\n    dates: [2024-01-05, 2024-03-01]\n", "cal.yaml:3: two days in 2024; a campaign peaks once a year"),
        ("campaigns:\n  sale:\n    dates: [2024-13-05]\n", "cal.yaml: not valid YAML: month must be in 1..12"),
        ("campaigns:\n  sale:\n    dates: ['2024-13-05']\n", "cal.yaml:3: '2024-13-05' is not a day (YYYY-MM-DD)"),
        ("campaigns:\n  sale: {date: 01-01, dates: [2024-01-01]}\n", "cal.yaml:2: campaign 'sale' needs exactly one of date"),
        ("campaigns:\n  sale: {name: Sale}\n", "cal.yaml:2: campaign 'sale' needs exactly one of date"),
        ("campaigns:\n  double11: {date: 11-11}\n", "cal.yaml:2: campaign 'double11' has the name of a built-in event"),
        ("campaigns:\n  Big-Sale: {date: 11-11}\n", "cal.yaml:2: campaign key 'Big-Sale' must be lower-case"),
        ("campaigns:\n  a: {date: 01-01}\n  a: {date: 02-01}\n", "cal.yaml:3:3: not valid YAML: duplicate key 'a'"),
        ("- 1\n", "cal.yaml: expected a mapping with events and campaigns"),
    ],
)  # fmt: skip
def test_a_bad_calendar_file_is_named_at_its_line(tmp_path, text, message):
    path = tmp_path / "cal.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput) as err:
        load_calendar(path)
    assert message in str(err.value).replace(str(tmp_path) + "/", "")


def test_a_missing_calendar_file_is_named(tmp_path):
    with pytest.raises(UsageError, match="no calendar file .*nope.yaml"):
        load_calendar(tmp_path / "nope.yaml")


def test_parse_calendar_of_nothing_is_the_built_in_calendar():
    assert parse_calendar(None) == default_calendar()
