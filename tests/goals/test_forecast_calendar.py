"""Goal forecasts with the marketplace calendar as a known effect: festivals do not bend the line."""

from datetime import date

import numpy as np
import pytest

from tianping.goals.forecast import calendar_forecast, linear_forecast, status
from tianping.goals.service import exposures
from tianping.metrics.calendar import default_calendar
from tianping.metrics.periods import period_end

MONTHS = [date(2024, m, 1) for m in range(4, 12)]  # April to November 2024: 618 and Double 11


def _history(rng=None):
    """Monthly GMV: 100 + 2 a month, the festival months lifted by their window's share."""
    cal = default_calendar()
    values = []
    for i, m in enumerate(MONTHS):
        end = period_end(m, "month")
        lift = 60 * cal.exposure("double11", m, end) + 30 * cal.exposure("618", m, end)
        noise = 0.0 if rng is None else rng.normal(0, 0.5)
        values.append(100 + 2 * i + lift + noise)
    return values


def test_a_festival_at_the_end_of_the_history_no_longer_looks_like_growth():
    values = _history()
    deadline = date(2025, 3, 31)  # March: no festival
    events = exposures(default_calendar(), MONTHS, deadline, "month")
    plain = linear_forecast(MONTHS, values, deadline)
    fc = calendar_forecast(MONTHS, values, deadline, events)
    # the line alone through November's Double 11 overshoots the trend's 100 + 2 * 11.97
    trend = 100 + 2 * (deadline - MONTHS[0]).days / 30.5
    assert plain > trend + 5
    assert fc.value == pytest.approx(trend, abs=0.3)
    effects = dict(fc.effects)
    assert effects["double11"] == pytest.approx(60, abs=1)
    assert effects["618"] == pytest.approx(30, abs=1)
    assert fc.unseen == ()


def test_the_deadline_month_gets_the_festival_it_holds():
    values = _history(np.random.default_rng(1))
    fc = calendar_forecast(MONTHS, values, date(2025, 11, 30),
                           exposures(default_calendar(), MONTHS, date(2025, 11, 30), "month"))  # fmt: skip
    trend = 100 + 2 * (date(2025, 11, 30) - MONTHS[0]).days / 30.5
    assert fc.value == pytest.approx(trend + 60 * 14 / 30, abs=2)


def test_an_event_the_history_never_saw_is_reported_not_guessed():
    values = _history()
    deadline = date(2025, 2, 28)  # Spring Festival 2025 window 15 Jan - 5 Feb
    events = exposures(default_calendar(), MONTHS, deadline, "month")
    s = status(100.0, 150.0, MONTHS[0], deadline, MONTHS[-1], list(zip(MONTHS, values, strict=True)), events)  # fmt: skip
    assert s.unseen_events == ("spring_festival",)
    assert {k for k, _ in s.calendar_effects} == {"double11", "618"}


def test_too_few_periods_for_an_effect_keep_the_plain_line():
    days, values = MONTHS[-3:], [104.0, 106.0, 150.0]
    events = exposures(default_calendar(), days, date(2025, 3, 31), "month")
    fc = calendar_forecast(days, values, date(2025, 3, 31), events)
    assert fc.effects == ()  # three points cannot carry a line and an effect with a residual
    assert fc.value == pytest.approx(linear_forecast(days, values, date(2025, 3, 31)))
