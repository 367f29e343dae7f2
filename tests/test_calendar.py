"""Opening-hours arithmetic, on exact, hand-checked cases (no randomness)."""

import pytest

from sim.core.calendar import Calendar
from sim.core.params import Window

WEEKDAYS_9_TO_17 = Window(True, [0, 1, 2, 3, 4], 9, 17)
H = 1 / 24


def test_next_open_inside_window_is_now():
    assert Calendar(WEEKDAYS_9_TO_17).next_open(10 * H) == pytest.approx(10 * H)


def test_next_open_before_opening_waits_for_nine():
    assert Calendar(WEEKDAYS_9_TO_17).next_open(1 + 3 * H) == pytest.approx(1 + 9 * H)


def test_friday_evening_waits_for_monday_morning():
    friday_18h = 4 + 18 * H
    assert Calendar(WEEKDAYS_9_TO_17).next_open(friday_18h) == pytest.approx(7 + 9 * H)


def test_saturday_waits_for_monday():
    assert Calendar(WEEKDAYS_9_TO_17).next_open(5.5) == pytest.approx(7 + 9 * H)


def test_disabled_rule_is_always_open():
    assert Calendar(Window(False, [0], 9, 10)).next_open(5.5) == 5.5


def test_open_time_pauses_overnight_and_at_weekends():
    cal = Calendar(WEEKDAYS_9_TO_17)
    # Friday 16:00 + 3 working hours = Monday 11:00.
    assert cal.add_open_time(4 + 16 * H, 3 * H) == pytest.approx(7 + 11 * H)
    # Wednesday 10:00 + 2 working days (16 h) = Friday 10:00.
    assert cal.add_open_time(2 + 10 * H, 16 * H) == pytest.approx(4 + 10 * H)


def test_open_time_of_whole_weeks_is_seven_days_later():
    cal = Calendar(WEEKDAYS_9_TO_17)
    assert cal.add_open_time(1 + 12 * H, 2 * 5 * 8 * H) == pytest.approx(15 + 12 * H)


def test_open_time_ending_exactly_at_close():
    cal = Calendar(WEEKDAYS_9_TO_17)
    assert cal.add_open_time(9 * H, 8 * H) == pytest.approx(17 * H)


def test_is_open():
    cal = Calendar(WEEKDAYS_9_TO_17)
    assert cal.is_open(9 * H) and not cal.is_open(17.5 * H) and not cal.is_open(5 + 12 * H)
