"""Opening hours: when a discharge may happen, a service may start, or a team works.

Time is in days from a Monday 00:00: :func:`weekday` is the day of the week (0 = Monday) and
``24 * (t % 1)`` the hour; Saturday and Sunday (:data:`WEEKEND`) are the weekend, everywhere in
the model, its metrics and its timetables (:func:`is_weekend`). A :class:`Calendar` answers the
two questions the model asks of a weekly timetable: when is the next open moment, and when does
a piece of work that needs ``d`` days of open time finish. Both are computed directly, with no
polling process. Work goes at the window's ``weekend_cover`` pace at the weekend (fewer staff
on duty).
"""

from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np

from sim.core.params import Window

_WEEK = 7.0
WEEKEND = (5, 6)
"""Saturday and Sunday, as days of the week (0 = Monday)."""


def weekday(t: float) -> int:
    """The day of the week of time ``t`` (days from a Monday 00:00): 0 = Monday .. 6 = Sunday."""
    return math.floor(t) % 7


def is_weekend(t: float) -> bool:
    """Whether time ``t`` falls on a Saturday or a Sunday."""
    return math.floor(t) % 7 >= WEEKEND[0]


def weekdays(times: np.ndarray) -> np.ndarray:
    """:func:`weekday` of each of ``times`` (finite), as integers."""
    return np.floor(times).astype(int) % 7


class Calendar:
    """A weekly timetable of open periods, built from a :class:`Window`."""

    def __init__(self, window: Window) -> None:
        weekend = window.weekend_cover if window.enabled else 1.0
        self.always_open = (not window.enabled) or (
            len(window.days) == 7 and window.start_hour == 0 and window.end_hour == 24
            and weekend == 1.0)
        start, end = window.start_hour / 24.0, window.end_hour / 24.0
        # Open periods within one week, as (start, end) offsets in days from Monday 00:00, with
        # the pace of work in each; touching periods of the same pace are merged.
        periods = sorted((d + start, d + end, weekend if d in WEEKEND else 1.0)
                         for d in window.days)
        merged: list[tuple[float, float, float]] = []
        for a, b, pace in periods:
            if merged and a <= merged[-1][1] and pace == merged[-1][2]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]), pace)
            else:
                merged.append((a, b, pace))
        self._starts = [a for a, _, _ in merged]
        self._ends = [b for _, b, _ in merged]
        """The periods' starts and ends, apart, for a binary search of the period a moment is in."""
        self.paces = [pace for _, _, pace in merged]
        self.open_per_week = sum((b - a) * pace for a, b, pace in merged)
        """Work done in a week (days of work at the weekday pace)."""

    @property
    def periods(self) -> list[tuple[float, float]]:
        """The open periods of a week, as (start, end) in days from Monday 00:00."""
        return list(zip(self._starts, self._ends))

    def is_open(self, t: float) -> bool:
        if self.always_open:
            return True
        offset = t - math.floor(t / _WEEK) * _WEEK
        i = bisect_right(self._ends, offset)
        return i < len(self._ends) and self._starts[i] <= offset

    def next_open(self, t: float) -> float:
        """The earliest time >= t at which the calendar is open."""
        if self.always_open:
            return t
        week = math.floor(t / _WEEK) * _WEEK
        offset = t - week
        i = bisect_right(self._ends, offset)  # the first period that ends after the offset
        if i == len(self._ends):
            return week + _WEEK + self._starts[0]
        a = self._starts[i]
        return t if offset >= a else week + a

    def add_open_time(self, t: float, duration: float) -> float:
        """The time at which ``duration`` days of open time, starting at t, are complete."""
        if self.always_open or duration <= 0:
            return t + duration
        # Every 7-day span holds exactly one week's open time. Keep at least some work for the
        # walk below, so that work ending exactly at a closing time ends there, not at the next
        # opening.
        whole_weeks = math.floor(duration / self.open_per_week + 1e-9)
        remaining = duration - whole_weeks * self.open_per_week
        if remaining <= 1e-12:
            whole_weeks -= 1
            remaining += self.open_per_week
        t += whole_weeks * _WEEK
        t = self.next_open(t)
        week = math.floor(t / _WEEK) * _WEEK
        offset = t - week
        starts, ends, paces, n = self._starts, self._ends, self.paces, len(self._ends)
        i = bisect_right(ends, offset)
        if i == n:
            i = 0
        while True:
            a, b, pace = starts[i], ends[i], paces[i]
            start = offset if offset > a else a
            if remaining <= (b - start) * pace + 1e-12:
                return week + start + remaining / pace
            remaining -= (b - start) * pace
            i += 1
            if i == n:
                i, week = 0, week + _WEEK
            offset = starts[i]
