"""The patient-flow model: admissions, acute beds, discharge planning and community services.

A patient arrives (non-homogeneous Poisson admissions), waits for an acute bed if none is free
(or is diverted after ``acute.max_wait_for_bed``), stays until medically fit, and from then on
every day in the bed is a delayed day. Patients on pathways 1-3 are assessed by the discharge
team (working hours only), then wait for the community service their pathway needs - carer-hours
for a homecare package, a step-down bed, a care-home place - which they share, first come first
served, with referrals from the community. Then the transfer (medicines, transport) and the
pathway's rule on which days and hours discharges may happen. Only then is the bed freed.

The model knows nothing of configuration files, output files or plots: it takes a
:class:`~sim.core.params.Params` and a replication number, and returns a :class:`RunResult`.
"""

from __future__ import annotations

import gc
import math
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, Callable, Generator, Iterator

import numpy as np
import pandas as pd
import simpy

from sim.core.calendar import Calendar
from sim.core.metrics import compute_daily, compute_metrics
from sim.core.params import HOME, Distribution, Params
from sim.core.patient import Patient, Request
from sim.core.resources import CapacityPool, TimeWeighted
from sim.core.streams import (BATCH, batch_draw, choice_sampler, length_biased_draw,
                         replication_streams, sampler)


@dataclass
class RunResult:
    """What one replication returns: per-patient log, daily midnight counts and metrics."""

    replication: int
    patients: pd.DataFrame
    """One row per hospital patient: attributes and the times they moved on (NaN: not yet)."""
    daily: pd.DataFrame
    """One row per simulated midnight (warm-up included, flagged): counts in the hospital."""
    service_waits: pd.DataFrame
    """One row per request for a community service: service, source (hospital, step_down,
    community, initial), amount, the times requested, granted and released (NaN: not yet), and
    the planned stay once granted (days)."""
    metrics: pd.DataFrame
    """One row per metric: ``metric``, ``value``, ``unit``; measured after the warm-up."""

    def value(self, metric: str) -> float:
        """One metric's value, by name."""
        rows = self.metrics.loc[self.metrics["metric"] == metric, "value"]
        if rows.empty:
            raise KeyError(f"no metric named {metric!r}")
        return float(rows.iloc[0])


class Model:
    """One replication of the discharge system, built on a SimPy environment.

    Pathways and community services are tables in the parameters: the model has one process for
    every pathway and one for every service, with no branch for any particular one.
    """

    def __init__(self, params: Params, replication: int = 0) -> None:
        self.params = params
        self.replication = replication
        self.env = simpy.Environment()
        self._started = False
        rng = replication_streams(params.run.seed, replication)
        self._rng = rng
        pathways = params.pathways

        self.beds = CapacityPool(self.env, "acute_beds", params.acute.beds)
        self.fit_in_hospital = TimeWeighted()  # medically fit patients still in a bed
        self.assessors = CapacityPool(self.env, "assessors", params.assessment.staff)
        self.pools = {name: CapacityPool(self.env, name, service.size)
                      for name, service in params.services.items()}
        self.rules = {key: Calendar(p.rule) for key, p in pathways.items()}
        self.team_hours = Calendar(params.assessment.hours)

        self._pathway_keys = list(pathways)
        self._pathway = choice_sampler([p.share for p in pathways.values()], rng["pathway"])
        self._acute_stay = {k: sampler(p.acute_stay, rng[f"acute_stay_{k}"])
                            for k, p in pathways.items()}
        self._transfer = {k: sampler(p.transfer, rng[f"transfer_{k}"]) for k, p in pathways.items()}
        self._assessment = sampler(params.assessment.duration, rng["assessment"])
        self._amount = {name: sampler(s.amount, rng[f"{name}_amount"])
                        for name, s in params.services.items()}
        self._stay = {name: sampler(s.stay, rng[f"{name}_stay"])
                      for name, s in params.services.items()}
        self._then = {name: (list(s.then), choice_sampler(list(s.then.values()), rng[f"{name}_then"]))
                      for name, s in params.services.items() if s.then}

        self.patients: list[Patient] = []
        self.requests: list[Request] = []
        """Every request for a community service, in the order made."""

    # ------------------------------------------------------------------ running
    def run(self, until: float | None = None) -> RunResult | None:
        """Simulate ``run.days`` days and measure everything after ``run.warmup_days``.

        With ``until``, stop there and return nothing (``env.run`` can carry on): for checks
        that read the model's state part-way through.
        """
        if self._started:
            raise RuntimeError("a Model runs once: continue a stopped run with model.env.run()")
        self._started = True
        run = self.params.run
        self._fill_community_services()
        self.env.process(self._admissions())
        for service in self.params.services:
            self.env.process(self._community_referrals(service))
        if run.warmup_days > 0:
            self.env.run(until=run.warmup_days)
        for pool in (self.beds, self.assessors, *self.pools.values()):
            pool.restart_statistics()
        self.fit_in_hospital.restart(self.env.now)
        with _fewer_gc_pauses():
            if until is not None:
                self.env.run(until=until)
                return None
            self.env.run(until=run.days)
        return self._result()

    def _result(self) -> RunResult:
        patients = patient_table(self.patients, until=self.env.now)
        waits = request_table(self.requests)
        daily = compute_daily(patients, self.params)
        metrics = compute_metrics(self.params, patients, daily, waits, self.beds,
                                  self.assessors, self.pools, self.fit_in_hospital)
        return RunResult(self.replication, patients, daily, waits, metrics)

    # ------------------------------------------------------------------ admissions
    def _admissions(self) -> Generator:
        """Admissions by inverting the cumulative admission rate at the running sum of unit
        exponentials (exact for any profile), a batch of arrival times at a time."""
        end = self.params.run.days
        rate = _AdmissionRate(self.params, end)
        rng, cumulative = self._rng["admissions"], 0.0
        while True:
            targets = cumulative + np.cumsum(rng.exponential(1.0, BATCH))
            cumulative = float(targets[-1])
            for t in rate.inverse(targets).tolist():
                if t >= end:
                    return
                yield self.env.timeout(t - self.env.now)
                patient = self._new_patient()
                self.patients.append(patient)
                self.env.process(self._hospital_stay(patient))

    def _new_patient(self) -> Patient:
        k = self._pathway_keys[self._pathway()]
        pathway = self.params.pathways[k]
        p = Patient(id=len(self.patients), arrival=self.env.now, pathway=k,
                    acute_stay=self._acute_stay[k](), transfer=self._transfer[k]())
        if pathway.needs_assessment:
            p.assessment = self._assessment()
        if pathway.service is not None:
            p.service = pathway.service
            p.amount, p.stay = self._amount[p.service](), self._stay[p.service]()
            if p.service in self._then:
                names, choose = self._then[p.service]
                onward = names[choose()]
                if onward != HOME:
                    p.onward = onward
                    p.onward_amount, p.onward_stay = self._amount[onward](), self._stay[onward]()
        return p

    # ------------------------------------------------------------------ the acute stay
    def _hospital_stay(self, p: Patient) -> Generator:
        env = self.env
        if not self.beds.try_take():
            bed = self.beds.request()
            limit = self.params.acute.max_wait_for_bed
            if limit is None:
                yield bed
            else:
                if limit > 0:
                    yield bed | env.timeout(limit)
                if not bed.triggered:
                    self.beds.cancel(bed)
                    p.diverted, p.left = True, env.now
                    return
        p.bed = env.now
        yield env.timeout(p.acute_stay)
        p.fit = env.now
        self.fit_in_hospital.set(env.now, self.fit_in_hospital.level + 1)

        assess_in_hospital = self.params.assessment.in_hospital
        needs_assessment = self.params.pathways[p.pathway].needs_assessment
        if needs_assessment and assess_in_hospital:
            yield from self._assess(p.assessment)
        p.assessed = env.now

        if p.service:
            request = yield from self._request(p.service, "hospital", p.amount)
        p.ready = env.now
        # Transfer, then the first moment the pathway's rule allows: one wait for both.
        p.transferred = env.now + p.transfer
        leaves = self.rules[p.pathway].next_open(p.transferred)
        if leaves > env.now:
            yield env.timeout(leaves - env.now)
        p.left = env.now
        self.beds.release()
        self.fit_in_hospital.set(env.now, self.fit_in_hospital.level - 1)

        if needs_assessment and not assess_in_hospital:
            env.process(self._assess(p.assessment))
        if p.service:
            if p.service in self._then:
                env.process(self._stay_then_onward(request, p.stay, p.onward, p.onward_amount,
                                                   p.onward_stay))
            else:
                self._hold(request, p.stay)

    def _assess(self, duration: float) -> Generator:
        """An assessment by one of the discharge team, in the team's working hours: the patient
        joins the team's queue when the team is at work, and the work pauses out of hours."""
        opens = self.team_hours.next_open(self.env.now)
        if opens > self.env.now:
            yield self.env.timeout(opens - self.env.now)
        if not self.assessors.try_take():
            yield self.assessors.request()
        now = self.env.now
        done = self.team_hours.add_open_time(self.team_hours.next_open(now), duration)
        if done > now:
            yield self.env.timeout(done - now)
        self.assessors.release()

    # ------------------------------------------------------------------ community services
    def _request(self, service: str, source: str, amount: float) -> Generator[Any, Any, Request]:
        """Wait for ``amount`` of a community service; returns the granted request."""
        request = self._log_request(service, source, amount)
        pool = self.pools[service]
        if not pool.try_take(amount):
            yield pool.request(amount)
        request.granted = self.env.now
        return request

    def _log_request(self, service: str, source: str, amount: float) -> Request:
        """A new request in the log, made now; the caller records when it is granted."""
        request = Request(service, source, amount, self.env.now)
        self.requests.append(request)
        return request

    def _release(self, request: Request) -> None:
        self.pools[request.service].release(request.amount)
        request.released = self.env.now

    def _hold(self, request: Request, days: float) -> None:
        """Use a granted request for ``days``, then free it (an event, not a process)."""
        request.stay = days
        self.env.timeout(days).callbacks.append(lambda _: self._release(request))

    def _stay_then_onward(self, request: Request, days: float, onward: str, amount: float,
                          onward_days: float) -> Generator:
        """A stay in a service with a next step (a step-down bed): one who needs another service
        next waits for it in this service's place, which is freed only once that is granted."""
        request.stay = days  # plus any wait for the onward service
        yield self.env.timeout(days)
        if onward:
            granted = yield from self._request(onward, request.service, amount)
            self._hold(granted, onward_days)
        self._release(request)

    def _community_referrals(self, service: str) -> Generator:
        """People referred to a service from the community, competing with hospital patients."""
        settings = self.params.services[service]
        per_day = settings.community_referrals_per_day
        if per_day <= 0 or not math.isfinite(1.0 / per_day):
            return  # none, or so rare that the mean gap overflows: none in any run
        rng = self._rng
        gap = sampler(Distribution("exponential", 1.0 / per_day), rng[f"{service}_referrals"])
        amount = sampler(settings.amount, rng[f"{service}_referral_amount"])
        stay = sampler(settings.stay, rng[f"{service}_referral_stay"])
        end = self.params.run.days
        while True:
            t = self.env.now + gap()
            if t >= end:
                return
            yield self.env.timeout(t - self.env.now)
            self._community_client(service, amount(), stay())

    def _community_client(self, service: str, amount: float, days: float) -> None:
        """A community referral: waits its turn for the service, uses it, frees it."""
        request = self._log_request(service, "community", amount)

        def start(_: object = None) -> None:
            request.granted = self.env.now
            self._hold(request, days)

        pool = self.pools[service]
        if pool.try_take(amount):
            start()
        else:
            pool.request(amount).callbacks.append(start)

    def _fill_community_services(self) -> None:
        """Start community services part-full, as a real system is on the first day.

        Each service is filled to ``initial_utilisation`` of its capacity with clients whose
        remaining time is drawn from the equilibrium residual distribution of the stay (a
        length-biased stay times a uniform), so the services start near their steady state and
        a short warm-up suffices even for care homes where residents stay for years.
        """
        for name, service in self.params.services.items():
            pool, rng = self.pools[name], self._rng[f"initial_{name}"]
            target = service.initial_utilisation * pool.capacity
            fixed_amount = service.amount.kind == "fixed"
            while True:
                amount = (float(service.amount.mean) if fixed_amount
                          else float(batch_draw(service.amount, rng, 1)[0]))
                if pool.in_use + amount > target + 1e-9 or amount <= 0:
                    break
                assert pool.try_take(amount)
                request = self._log_request(name, "initial", amount)
                request.granted = self.env.now
                self._hold(request, _residual_stay(service.stay, rng))


REQUEST_COLUMNS = [f.name for f in fields(Request)]
"""The columns of the request log (:attr:`RunResult.service_waits`)."""


def _residual_stay(dist: Distribution, rng: np.random.Generator) -> float:
    """Remaining stay of someone found in service at a random moment: a length-biased stay
    times a uniform (the equilibrium residual-life distribution)."""
    return length_biased_draw(dist, rng) * float(rng.random())


class _AdmissionRate:
    """The piecewise-constant admission rate, by hour of the week and day of the year, with its
    cumulative integral over every hour of the run."""

    def __init__(self, params: Params, days: float) -> None:
        a = params.admissions
        weekly = np.array([a.per_day * a.day_of_week[h // 24] * a.hour_of_day[h % 24]
                           for h in range(168)], dtype=float)
        hours = np.arange(max(1, math.ceil(days * 24.0)))
        in_winter = ((hours // 24) % 365 >= a.winter_start) & ((hours // 24) % 365 < a.winter_end)
        self.per_day = weekly[hours % 168] * np.where(in_winter, a.winter_multiplier, 1.0)
        self.cumulative = np.cumsum(self.per_day / 24.0)  # expected admissions by each hour's end

    def inverse(self, targets: np.ndarray) -> np.ndarray:
        """The times (days) at which the expected number of admissions reaches ``targets``;
        infinity beyond the last hour."""
        hour = np.searchsorted(self.cumulative, targets, side="right")
        inside = hour < self.cumulative.size
        h = hour[inside]
        before = np.where(h > 0, self.cumulative[h - 1], 0.0)
        times = np.full(targets.shape, np.inf)
        times[inside] = h / 24.0 + (targets[inside] - before) / self.per_day[h]
        return times


@contextmanager
def _fewer_gc_pauses() -> Iterator[None]:
    """Run with Python's cycle collector called less often: a run allocates many small objects
    that die young, and collecting them every 700 allocations costs about 15% of the run."""
    threshold = gc.get_threshold()
    gc.set_threshold(100_000, threshold[1], threshold[2])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def patient_table(patients: list[Patient], until: float = math.inf) -> pd.DataFrame:
    """The patient log as a table, one row per patient, with each patient's delay (days from
    medically fit to leaving the bed; NaN while still in hospital) split by cause. A transfer
    that would end after ``until`` (the end of the run) has not happened: NaN."""
    names = [f.name for f in fields(Patient)]
    table = pd.DataFrame([[getattr(p, n) for n in names] for p in patients], columns=names)
    kinds = {"id": int, "pathway": str, "service": str, "onward": str, "diverted": bool}
    table = table.astype({n: kinds.get(n, float) for n in names})
    table["transferred"] = table["transferred"].where(table["transferred"] <= until)
    table["delay"] = table["left"] - table["fit"]
    table["delay_assessment"] = table["assessed"] - table["fit"]
    table["delay_service"] = table["ready"] - table["assessed"]
    table["delay_transfer"] = table["transferred"] - table["ready"]
    table["delay_rule"] = table["left"] - table["transferred"]
    return table


def request_table(requests: list[Request]) -> pd.DataFrame:
    """The log of requests for community services as a table, one row per request."""
    return pd.DataFrame([[getattr(r, c) for c in REQUEST_COLUMNS] for r in requests],
                        columns=REQUEST_COLUMNS).astype(
        {c: str if c in ("service", "source") else float for c in REQUEST_COLUMNS})


def simulate(params: Params, replication: int = 0) -> RunResult:
    """Run one replication of the model; replication k has its own random streams."""
    result = Model(params, replication).run()
    assert result is not None
    return result
