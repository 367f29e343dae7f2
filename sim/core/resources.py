"""Capacity pools that record their own use: acute beds, carer-hours, step-down and care-home
places, assessors.

A :class:`CapacityPool` holds a finite capacity (beds, places, or carer-hours per week) and a
first-come-first-served queue of requests, each for an amount. A request is granted as soon as
it is at the head of the queue and fits in the free capacity. The pool integrates its level and
queue length over time, so that time-weighted occupancy and queue length come from the pool
itself and not from counters spread through the model. Capacity can be changed during a run
(:meth:`CapacityPool.set_capacity`), for recruitment, turnover or a provider failure.
"""

from __future__ import annotations

from collections import deque

import simpy

_EPS = 1e-9


class TimeWeighted:
    """Integral of a piecewise-constant level over time, restartable at the end of warm-up."""

    __slots__ = ("level", "last", "area", "start", "peak")

    def __init__(self, level: float = 0.0, start: float = 0.0) -> None:
        self.level, self.last, self.area, self.start, self.peak = level, start, 0.0, start, level

    def set(self, t: float, level: float) -> None:
        self.area += self.level * (t - self.last)
        self.level, self.last = level, t
        if level > self.peak:
            self.peak = level

    def restart(self, t: float) -> None:
        self.set(t, self.level)
        self.area, self.start = 0.0, t

    def mean(self, t: float) -> float:
        """Time-average of the level from the (re)start to t."""
        if t <= self.start:
            return self.level
        return (self.area + self.level * (t - self.last)) / (t - self.start)


class Constant:
    """A level that never changes, read as a :class:`TimeWeighted` is (a pool's capacity)."""

    __slots__ = ("level", "peak")

    def __init__(self, level: float) -> None:
        self.level = self.peak = level

    def mean(self, t: float) -> float:
        return self.level

    def restart(self, t: float) -> None:
        """Nothing to forget."""


class CapacityPool:
    """A finite capacity granted first come, first served, in amounts."""

    def __init__(self, env: simpy.Environment, name: str, capacity: float) -> None:
        self.env = env
        self.name = name
        self.capacity = float(capacity)
        self.in_use = 0.0
        self.queue: deque[tuple[float, simpy.Event, object]] = deque()
        """The requests waiting: amount, the event granting it, and who asked (or None)."""
        self.use = TimeWeighted()
        self.waiting = TimeWeighted()

    def try_take(self, amount: float = 1.0) -> bool:
        """Take ``amount`` now if nobody is queueing and it is free; no event is needed then."""
        if not self.queue and self.in_use + amount <= self.capacity + _EPS:
            self._take(amount)
            return True
        return False

    def request(self, amount: float = 1.0, owner: object = None) -> simpy.Event:
        """Join the queue: an event that succeeds when ``amount`` has been granted; ``owner``
        names who asked, to withdraw it by (:meth:`cancel_owner`). (Call :meth:`try_take`
        first: a request made while capacity is free waits for the next grant.)"""
        event = self.env.event()
        self.queue.append((amount, event, owner))
        self.waiting.set(self.env.now, len(self.queue))
        self._grant()
        return event

    def cancel(self, event: simpy.Event) -> None:
        """Withdraw a request that has not been granted (a patient diverted elsewhere)."""
        self._cancel(1, event)

    def cancel_owner(self, owner: object) -> None:
        """Withdraw the request ``owner`` made, if it is still waiting."""
        self._cancel(2, owner)

    def _cancel(self, field: int, key: object) -> None:
        for item in self.queue:
            if item[field] is key:
                self.queue.remove(item)
                self.waiting.set(self.env.now, len(self.queue))
                self._grant()
                return

    def release(self, amount: float = 1.0) -> None:
        self.in_use -= amount
        if self.in_use < _EPS:
            self.in_use = 0.0
        self.use.set(self.env.now, self.in_use)
        self._grant()

    def set_capacity(self, capacity: float) -> None:
        """Change the capacity now; places in use are not taken away, only not re-granted."""
        self.capacity = float(capacity)
        self._grant()

    def restart_statistics(self) -> None:
        """Forget the time-weighted statistics so far (called at the end of warm-up)."""
        self.use.restart(self.env.now)
        self.waiting.restart(self.env.now)

    def drop_pending(self) -> None:
        """The run is over: the requests still queueing will not be granted, and forget what
        their grant would have done (it refers back to the model: see ``Model.run``)."""
        for _, event, _ in self.queue:
            event.callbacks = []

    def _take(self, amount: float) -> None:
        self.in_use += amount
        self.use.set(self.env.now, self.in_use)

    def _grant(self) -> None:
        granted = False
        while self.queue and self.in_use + self.queue[0][0] <= self.capacity + _EPS:
            amount, event, _ = self.queue.popleft()
            self._take(amount)
            event.succeed()
            granted = True
        if granted:
            self.waiting.set(self.env.now, len(self.queue))
