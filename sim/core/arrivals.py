"""Arrivals: emergency admissions whose rate follows the day of the week, the hour of the day
and the season, and any stream of arrivals at times a function gives (community referrals).

Admissions invert the cumulative admission rate at a running sum of unit exponentials, which is
exact for any piecewise-constant profile; each arrival is one SimPy timeout whose callback
schedules the next, so no generator process is kept per stream.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import simpy

from sim.core.params import Params
from sim.core.streams import BATCH


class Arrivals:
    """Arrivals at the times ``next_time(now)`` returns, each calling ``arrive``, until ``end``
    (an object, not two closures that call each other: those would be a reference cycle that
    only the cycle collector frees, and it would hold the model)."""

    __slots__ = ("env", "next_time", "end", "arrive")

    def __init__(self, env: simpy.Environment, next_time: Callable[[float], float], end: float,
                 arrive: Callable[[], None]) -> None:
        self.env, self.next_time, self.end, self.arrive = env, next_time, end, arrive

    def start(self) -> None:
        now = self.env.now
        t = self.next_time(now)
        if t < self.end:
            self.env.timeout(t - now).callbacks.append(self._arrival)

    def _arrival(self, _: object) -> None:
        self.arrive()
        self.start()


class AdmissionRate:
    """The piecewise-constant admission rate, by hour of the week and day of the year, with its
    cumulative integral hour by hour.

    Only a year of hours is held at a time (a window that moves forward as admissions are
    drawn), so memory does not grow with the run's length; the running sum is carried from one
    window to the next in the same order of additions, so every admission time is the same, to
    the last bit, as from one cumulative sum over the whole run.
    """

    WINDOW = 365 * 24
    """Hours held at a time."""

    def __init__(self, params: Params, days: float) -> None:
        a = params.admissions
        self._admissions = a
        self._weekly = np.array([a.per_day * a.day_of_week[h // 24] * a.hour_of_day[h % 24]
                                 for h in range(168)], dtype=float)
        self.hours = max(1, math.ceil(days * 24.0))
        self._none = not self._weekly.any()  # no admissions at all: nothing to invert
        self._load(0, 0.0)

    def hour_rates(self, start: int, stop: int) -> np.ndarray:
        """The rate (admissions per day) in each hour from ``start`` to ``stop``."""
        a = self._admissions
        hours = np.arange(start, stop)
        day_of_year = (hours // 24) % 365
        in_winter = (day_of_year >= a.winter_start) & (day_of_year < a.winter_end)
        return self._weekly[hours % 168] * np.where(in_winter, a.winter_multiplier, 1.0)

    @property
    def per_day(self) -> np.ndarray:
        """The rate in every hour of the run (built on demand, for checks)."""
        return self.hour_rates(0, self.hours)

    @property
    def cumulative(self) -> np.ndarray:
        """The expected admissions by the end of every hour of the run (on demand, for checks)."""
        return np.cumsum(self.per_day / 24.0)

    def _load(self, start: int, before: float) -> None:
        """Hold the window of hours from ``start``, after ``before`` expected admissions."""
        self._start, self._before = start, before
        self._rates = self.hour_rates(start, min(start + self.WINDOW, self.hours))
        steps = self._rates / 24.0
        steps[0] = before + steps[0]  # so the running sum continues exactly
        self._cumulative = np.cumsum(steps)  # expected admissions by each hour's end

    def inverse(self, targets: np.ndarray) -> np.ndarray:
        """The times (days) at which the expected number of admissions reaches ``targets`` (in
        increasing order, as the model draws them); infinity beyond the last hour."""
        times = np.full(targets.shape, np.inf)
        pending = np.arange(targets.size)
        while pending.size and not self._none:
            hour = np.searchsorted(self._cumulative, targets[pending], side="right")
            inside = hour < self._cumulative.size
            h = hour[inside]
            before = np.where(h > 0, self._cumulative[h - 1], self._before)
            times[pending[inside]] = ((self._start + h) / 24.0
                                      + (targets[pending[inside]] - before) / self._rates[h])
            pending = pending[~inside]
            end = self._start + self._cumulative.size
            if not pending.size or end >= self.hours:
                break
            self._load(end, float(self._cumulative[-1]))  # targets beyond: the next window
        return times



def admissions(env: simpy.Environment, params: Params, rng: np.random.Generator,
               arrive: Callable[[], None]) -> None:
    """Start the admissions of a run: ``arrive`` is called at each admission's time, a batch
    of arrival times drawn from ``rng`` at a time, from the clock's start until ``run.days``."""
    rate = AdmissionRate(params, params.run.days)
    times: list[float] = []
    cumulative = 0.0

    def next_time(now: float) -> float:
        nonlocal cumulative
        while True:
            if not times:
                targets = cumulative + np.cumsum(rng.exponential(1.0, BATCH))
                cumulative = float(targets[-1])
                times.extend(rate.inverse(targets).tolist()[::-1])
            t = times.pop()
            if t >= now:  # (before: a run that starts later in the week, from a snapshot)
                return t

    Arrivals(env, next_time, params.run.days, arrive).start()
