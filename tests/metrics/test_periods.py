from datetime import date

import pytest

from tianping.errors import UsageError
from tianping.metrics.periods import days_in_window, period_end, period_start


@pytest.mark.parametrize(
    ("day", "grain", "start", "end"),
    [
        (date(2024, 6, 19), "day", date(2024, 6, 19), date(2024, 6, 19)),
        (date(2024, 6, 19), "week", date(2024, 6, 17), date(2024, 6, 23)),
        (date(2024, 2, 10), "month", date(2024, 2, 1), date(2024, 2, 29)),
        (date(2023, 12, 31), "month", date(2023, 12, 1), date(2023, 12, 31)),
        (date(2024, 11, 11), "year", date(2024, 1, 1), date(2024, 12, 31)),
    ],
)
def test_period_bounds(day, grain, start, end):
    assert period_start(day, grain) == start
    assert period_end(start, grain) == end


def test_days_in_window_clips_both_edges():
    assert days_in_window(date(2024, 1, 1), "month", date(2024, 1, 10), date(2024, 1, 20)) == 11
    assert days_in_window(date(2024, 1, 1), "month", date(2024, 3, 1), date(2024, 3, 2)) == 0


def test_unknown_grain():
    with pytest.raises(UsageError, match="unknown grain"):
        period_start(date(2024, 1, 1), "fortnight")
