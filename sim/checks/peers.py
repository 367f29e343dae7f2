"""Independent reference simulators ("peers") of a two-stage tandem network.

The network is the simplest model of delayed hospital discharge:

* Patients arrive as a Poisson process (``arrival_rate`` per day).
* Stage 1, *acute*: ``acute_beds`` servers, unlimited FIFO queue for a bed,
  exponential length of stay with mean ``acute_mean_stay`` days.
* Stage 2, *care home*: ``care_home_places`` servers, no waiting room,
  exponential stay with mean ``care_home_mean_stay`` days. Every patient goes
  acute -> care home -> leaves.
* Blocking after service: a patient whose acute stay ends while every
  care-home place is full keeps (blocks) the acute bed until a place frees.
  Blocked patients move on in the order they became blocked. The blocked
  time is the discharge *delay*.

Only patients who arrive at or after ``warmup_days`` and leave the acute bed
before ``days`` (when the run stops) are counted in the means. Throughput
counts every patient leaving an acute bed in ``[warmup_days, days)``,
whenever they arrived, divided by ``days - warmup_days``.

Why these exist: they are written independently of the main SimPy model so
that its bed-blocking logic can be checked against (a) the ``ciw`` library,
which implements this kind of blocking (Type I blocking) itself, and
(b) a minimal hand-written ``heapq`` event loop, which is also the
pure-Python speed ceiling for benchmarks.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["TandemResult", "ciw_tandem", "heapq_tandem"]


@dataclass(frozen=True)
class TandemResult:
    """Summary of one replication of the tandem network."""

    patients: int  # patients counted (arrived after warm-up, left acute bed before end)
    mean_bed_wait: float  # mean days waited for an acute bed (queue before stage 1)
    mean_blocked: float  # mean days blocked in the acute bed after acute service
    throughput_per_day: float  # patients leaving the acute bed per day in [warmup_days, days)
    events: int  # simulated events processed (arrivals + acute ends + care-home departures)


def _check(arrival_rate: float, acute_mean_stay: float, acute_beds: int,
           care_home_mean_stay: float, care_home_places: int,
           days: float, warmup_days: float) -> None:
    if min(arrival_rate, acute_mean_stay, care_home_mean_stay) <= 0:
        raise ValueError("rates and mean stays must be positive")
    if acute_beds < 1 or care_home_places < 1:
        raise ValueError("need at least one acute bed and one care-home place")
    if not 0 <= warmup_days < days:
        raise ValueError("need 0 <= warmup_days < days")


def _mean(total: float, n: int) -> float:
    return total / n if n else float("nan")


def ciw_tandem(arrival_rate: float, acute_mean_stay: float, acute_beds: int,
               care_home_mean_stay: float, care_home_places: int,
               days: float, warmup_days: float, seed: int) -> TandemResult:
    """Simulate the tandem network with the ``ciw`` library.

    Node 1 is the acute stage (infinite queue), node 2 the care home (queue
    capacity 0), so ciw's Type I blocking holds a patient in node 1 after
    service until node 2 has room. ``ciw.seed`` sets global state (Python's
    ``random`` and ``ciw.rng``), so this is not thread-safe.

    In node-1 records ``waiting_time`` is the wait for a bed only (service
    start minus arrival), ``time_blocked`` is ``exit_date - service_end_date``
    and ``exit_date`` is when the bed is vacated.

    ``events`` is reconstructed, since ciw does not count events: arrivals
    generated + node-1 records (patients who left the acute bed) + node-2
    records (care-home departures). It omits acute service ends of patients
    still blocked at the end of the run.
    """
    import ciw  # optional dependency, imported lazily

    _check(arrival_rate, acute_mean_stay, acute_beds, care_home_mean_stay,
           care_home_places, days, warmup_days)
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=arrival_rate), None],
        service_distributions=[ciw.dists.Exponential(rate=1.0 / acute_mean_stay),
                               ciw.dists.Exponential(rate=1.0 / care_home_mean_stay)],
        number_of_servers=[acute_beds, care_home_places],
        queue_capacities=[float("inf"), 0],
        routing=[[0.0, 1.0], [0.0, 0.0]],
    )
    ciw.seed(seed)
    sim = ciw.Simulation(network)
    sim.simulate_until_max_time(days)
    records = sim.get_all_records(only=["service"])

    patients = 0
    wait_total = 0.0
    blocked_total = 0.0
    leaving = 0
    for rec in records:
        if rec.node != 1 or rec.exit_date >= days:  # the second test is only a guard
            continue
        if rec.exit_date >= warmup_days:
            leaving += 1
        if rec.arrival_date >= warmup_days:
            patients += 1
            wait_total += rec.waiting_time
            blocked_total += rec.time_blocked
    events = sim.nodes[0].number_accepted_individuals + len(records)
    return TandemResult(
        patients=patients,
        mean_bed_wait=_mean(wait_total, patients),
        mean_blocked=_mean(blocked_total, patients),
        throughput_per_day=leaving / (days - warmup_days),
        events=events,
    )


def _exponentials(rng: np.random.Generator, mean: float, batch: int = 4096) -> Iterator[float]:
    """Endless stream of exponential draws, generated in numpy batches."""
    while True:
        yield from rng.exponential(mean, batch).tolist()


_ARRIVAL, _ACUTE_END, _CARE_END = 0, 1, 2


def heapq_tandem(arrival_rate: float, acute_mean_stay: float, acute_beds: int,
                 care_home_mean_stay: float, care_home_places: int,
                 days: float, warmup_days: float, seed: int) -> TandemResult:
    """Simulate the tandem network with a minimal ``heapq`` event loop.

    Heap entries are ``(time, kind, arrived, started)``; the last two are only
    meaningful for acute service ends. Events at or after ``days`` are never
    processed. ``events`` is the number of events popped from the heap.
    """
    _check(arrival_rate, acute_mean_stay, acute_beds, care_home_mean_stay,
           care_home_places, days, warmup_days)
    rng = np.random.default_rng(seed)
    gap = _exponentials(rng, 1.0 / arrival_rate)
    acute_stay = _exponentials(rng, acute_mean_stay)
    care_stay = _exponentials(rng, care_home_mean_stay)

    heap: list[tuple[float, int, float, float]] = [(next(gap), _ARRIVAL, 0.0, 0.0)]
    bed_queue: deque[float] = deque()  # arrival times of patients waiting for a bed
    blocked: deque[tuple[float, float, float]] = deque()  # (arrived, started, service end)
    beds_busy = 0
    places_busy = 0
    events = 0
    patients = 0
    leaving = 0
    wait_total = 0.0
    blocked_total = 0.0

    def leave_acute(now: float, arrived: float, started: float, ended: float) -> None:
        """Move a patient from their acute bed into a care-home place."""
        nonlocal beds_busy, places_busy, patients, leaving, wait_total, blocked_total
        places_busy += 1
        heapq.heappush(heap, (now + next(care_stay), _CARE_END, 0.0, 0.0))
        if now >= warmup_days:
            leaving += 1
        if arrived >= warmup_days:
            patients += 1
            wait_total += started - arrived
            blocked_total += now - ended
        if bed_queue:  # the bed goes straight to the next patient waiting
            heapq.heappush(heap, (now + next(acute_stay), _ACUTE_END, bed_queue.popleft(), now))
        else:
            beds_busy -= 1

    while heap and heap[0][0] < days:
        now, kind, arrived, started = heapq.heappop(heap)
        events += 1
        if kind == _ARRIVAL:
            heapq.heappush(heap, (now + next(gap), _ARRIVAL, 0.0, 0.0))
            if beds_busy < acute_beds:
                beds_busy += 1
                heapq.heappush(heap, (now + next(acute_stay), _ACUTE_END, now, now))
            else:
                bed_queue.append(now)
        elif kind == _ACUTE_END:
            if places_busy < care_home_places:
                leave_acute(now, arrived, started, now)
            else:
                blocked.append((arrived, started, now))
        else:  # _CARE_END
            places_busy -= 1
            if blocked:
                leave_acute(now, *blocked.popleft())

    return TandemResult(
        patients=patients,
        mean_bed_wait=_mean(wait_total, patients),
        mean_blocked=_mean(blocked_total, patients),
        throughput_per_day=leaving / (days - warmup_days),
        events=events,
    )
