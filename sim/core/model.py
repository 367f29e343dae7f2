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
from operator import attrgetter
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import simpy

from sim.core.calendar import Calendar
from sim.core.market import Market, Placement, provider_sizes, staffing_posts
from sim.core.metrics import compute_daily, compute_metrics
from sim.core.params import HOME, Distribution, Params, Service
from sim.core.params import Market as MarketSettings
from sim.core.patient import (CAUSE_OF_PHASE, PHASES, HarmDraws, Needs, Patient, Request,
                              logged)
from sim.core.resources import CapacityPool, TimeWeighted
from sim.core.workforce import Roster
from sim.core.streams import (BATCH, choice_sampler, draw_one, length_biased_draw,
                         replication_streams, sampler, uniform_sampler)


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


NEEDS = [f.name for f in fields(Needs)]
"""The patient's attributes that a :class:`Needs` sets (and an escalation replaces)."""


def _rate(per_day: float) -> float:
    """The hazard rate (per day) of a daily probability: over d days, 1 - (1 - p)^d."""
    return -math.log1p(-per_day)


class _PlacementSampler:
    """Samplers of what a client brings to a service's market (:class:`Placement`), each from
    the stream ``prefix`` + its purpose."""

    def __init__(self, market: MarketSettings, rng: Any, prefix: str) -> None:
        segments = market.segments
        self.segment = (choice_sampler([g.demand for g in segments], rng[f"{prefix}_segment"])
                        if len(segments) > 1 else lambda: 0)
        self.complex_share = market.complex_share
        self.complex = (uniform_sampler(rng[f"{prefix}_complex"]) if market.complex_share > 0
                        else lambda: 1.0)
        self.clock = sampler(Distribution("exponential", 1.0), rng[f"{prefix}_clock"])
        self.pick = uniform_sampler(rng[f"{prefix}_pick"])

    def draw(self) -> Placement:
        return Placement(self.segment(), self.complex() < self.complex_share, self.clock(),
                         self.pick())


def _placements(params: Params, rng: Any, prefix: str) -> dict[str, _PlacementSampler]:
    """A placement sampler for each service with a market."""
    return {name: _PlacementSampler(s.market, rng, f"{prefix}{name}")
            for name, s in params.services.items() if s.market.enabled}


class _NeedsSampler:
    """Samplers of what a patient on a pathway needs once medically fit, each from the stream
    ``prefix`` + its purpose (prefix "": the streams ordinary admissions always had). A step a
    pathway does not have draws nothing, so switching a step on leaves the others' numbers."""

    def __init__(self, params: Params, rng: Any, prefix: str) -> None:
        self.pathways = params.pathways
        self.services = params.services
        self.transfer = {k: sampler(p.transfer, rng[f"{prefix}transfer_{k}"])
                         for k, p in params.pathways.items()}
        self.assessment = sampler(params.assessment.duration, rng[f"{prefix}assessment"])
        self.amount = {name: sampler(s.amount, rng[f"{prefix}{name}_amount"])
                       for name, s in params.services.items()}
        self.stay = {name: sampler(s.stay, rng[f"{prefix}{name}_stay"])
                     for name, s in params.services.items()}
        self.then = {name: (list(s.then),
                            choice_sampler(list(s.then.values()), rng[f"{prefix}{name}_then"]))
                     for name, s in params.services.items() if s.then}
        steps = {k: p for k, p in params.pathways.items()}
        self.summary = {k: sampler(p.summary, rng[f"{prefix}summary_{k}"])
                        for k, p in steps.items()}
        self.choice = {k: sampler(p.choice, rng[f"{prefix}choice_{k}"]) for k, p in steps.items()}
        self.funding = {k: (uniform_sampler(rng[f"{prefix}funded_{k}"]),
                            sampler(p.funding, rng[f"{prefix}funding_{k}"]))
                        for k, p in steps.items() if p.funded_share > 0}
        self.equipment = {k: (uniform_sampler(rng[f"{prefix}equipment_need_{k}"]),
                              sampler(p.equipment, rng[f"{prefix}equipment_{k}"]))
                          for k, p in steps.items() if p.equipment_share > 0}
        self.placement = _placements(params, rng, prefix)

    def _service(self, name: str) -> tuple[float, float, Placement | None]:
        """How much of service ``name`` a patient needs, for how long, and the placement."""
        amount, stay = self.amount[name](), self.stay[name]()
        placement = None
        if name in self.placement:
            placement = self.placement[name].draw()
            if placement.complex:
                amount *= self.services[name].market.complex_amount
        return amount, stay, placement

    def draw(self, k: str, needs: Needs | Patient) -> None:
        """Draw what a patient on pathway ``k`` needs into ``needs`` (a new :class:`Needs`, or
        a new patient, whose fields of the same names are those of a new :class:`Needs`)."""
        pathway = self.pathways[k]
        needs.pathway, needs.transfer = k, self.transfer[k]()
        if pathway.needs_assessment:
            needs.assessment = self.assessment()
        needs.summary, needs.choice = self.summary[k](), self.choice[k]()
        if k in self.funding:  # both drawn whoever pays, so a change of share moves nobody else
            funded, days = self.funding[k][0](), self.funding[k][1]()
            if funded < pathway.funded_share:
                needs.funding = days
        if k in self.equipment:
            needed, days = self.equipment[k][0](), self.equipment[k][1]()
            if needed < pathway.equipment_share:
                needs.equipment = days
        if pathway.service is not None:
            service = needs.service = pathway.service
            needs.amount, needs.stay, needs.placement = self._service(service)
            if needs.placement is not None:
                market = self.services[service].market
                needs.segment = market.segments[needs.placement.segment].name
                needs.complex = needs.placement.complex
            if service in self.then:
                names, choose = self.then[service]
                onward = names[choose()]
                if onward != HOME:
                    needs.onward = onward
                    needs.onward_amount, needs.onward_stay, needs.onward_placement = (
                        self._service(onward))


class _Draws:
    """Everything a patient gets on arrival, each purpose from its own stream: the pathway,
    the acute stay, the needs and, for each harm mechanism that is on, the patient's clocks
    (and the needs after an escalation, drawn whether or not it happens, so that scenarios
    compare on common random numbers). ``prefix`` "" is ordinary admissions; readmissions use
    "readmission." so that they do not shift the numbers ordinary admissions get."""

    def __init__(self, params: Params, rng: Any, prefix: str = "") -> None:
        pathways, harm = params.pathways, params.harm
        self.keys = list(pathways)
        self.pathway = choice_sampler([p.share for p in pathways.values()], rng[f"{prefix}pathway"])
        self.acute_stay = {k: sampler(p.acute_stay, rng[f"{prefix}acute_stay_{k}"])
                           for k, p in pathways.items()}
        self.needs = _NeedsSampler(params, rng, prefix)
        self.any_harm = harm.any
        unit = Distribution("exponential", 1.0)
        on = lambda enabled, make: make() if enabled else None  # noqa: E731
        self.death = on(harm.death.enabled, lambda: sampler(unit, rng[f"{prefix}harm_death"]))
        self.escalation = on(harm.escalation.enabled,
                             lambda: sampler(unit, rng[f"{prefix}harm_escalation"]))
        self.escalated = on(harm.escalation.enabled,
                            lambda: _NeedsSampler(params, rng, f"{prefix}escalated."))
        self.escalates_to = {k: (list(p.escalates_to), choice_sampler(
            list(p.escalates_to.values()), rng[f"{prefix}escalated.to_{k}"]))
            for k, p in pathways.items() if harm.escalation.enabled and p.escalates_to}
        self.unwell = on(harm.unwell_again.enabled,
                         lambda: sampler(unit, rng[f"{prefix}harm_unwell"]))
        self.unwell_days = on(harm.unwell_again.enabled, lambda: sampler(
            harm.unwell_again.duration, rng[f"{prefix}harm_unwell_duration"]))
        self.readmission = on(harm.readmission.enabled,
                              lambda: uniform_sampler(rng[f"{prefix}harm_readmission"]))

    def patient(self, id: int, now: float, readmission_of: int) -> tuple[Patient, HarmDraws | None]:
        k = self.keys[self.pathway()]
        p = Patient(id=id, arrival=now, pathway=k, acute_stay=self.acute_stay[k](), transfer=0.0,
                    readmission_of=readmission_of)
        self.needs.draw(k, p)
        if not self.any_harm:
            return p, None
        harm = HarmDraws()
        if self.death is not None:
            harm.death = self.death()
        if self.escalation is not None:
            harm.escalation = self.escalation()
            if k in self.escalates_to:
                names, choose = self.escalates_to[k]
                harm.escalated = Needs("", 0.0)
                self.escalated.draw(names[choose()], harm.escalated)
        if self.unwell is not None:
            harm.unwell, harm.unwell_days = self.unwell(), self.unwell_days()
        if self.readmission is not None:
            harm.readmission = (self.readmission(), self.readmission(), self.readmission())
        return p, harm


class _Arrivals:
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


def _callback(hold: "_Hold | None", step: Callable[[], None]) -> Callable[[Any], None]:
    """An event's callback that takes a patient's next ``step``; with ``hold``, only if the
    discharge attempt it belongs to has not been cut short since (death, escalation)."""
    if hold is None:
        return lambda _: step()
    attempt = hold.attempt
    return lambda _: step() if hold.attempt == attempt else None


class _Hold:
    """What a patient holds while waiting to leave (when harm is on): an assessor (``True``,
    or the pending request event), a service request (``request``; ``event`` while pending),
    the medically unfit episode, if any, and the discharge attempt its scheduled steps belong
    to."""

    __slots__ = ("assessor", "request", "event", "unfit_start", "unfit_end", "unfit", "attempt")

    def __init__(self) -> None:
        self.assessor: Any = None
        self.request: Request | None = None
        self.event: simpy.Event | None = None
        self.unfit_start = self.unfit_end = math.inf
        self.unfit = False
        self.attempt = 0
        """Raised when the discharge is cut short (death, escalation), so that the steps it
        had scheduled lapse."""


class Model:
    """One replication of the discharge system, built on a SimPy environment.

    Pathways and community services are tables in the parameters: the model has one patient flow
    for every pathway and one for every service, with no branch for any particular one. The flow
    is a chain of steps, each scheduled as a callback of a SimPy event (a timeout, a grant),
    not a SimPy process: a patient costs a few events and no generator.
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
        self.pools: dict[str, CapacityPool | Market] = {}
        """Each community service: one first-come-first-served pool, or a market of providers."""
        self.rosters: dict[str, Roster] = {}
        """The posts of each service whose workforce comes and goes."""
        for name, service in params.services.items():
            if service.market.enabled:
                self.pools[name] = self._market(name, service)
            else:
                self.pools[name] = CapacityPool(self.env, name, service.size)
        self.rules = {key: Calendar(p.rule) for key, p in pathways.items()}
        in_hospital = params.assessment.in_hospital
        self._assessed_in_hospital = {k: p.needs_assessment and in_hospital
                                      for k, p in pathways.items()}
        self._assessed_at_home = {k: p.needs_assessment and not in_hospital
                                  for k, p in pathways.items()}
        """Pathways whose patients the discharge team assesses before they leave, and after."""
        self.team_hours = Calendar(params.assessment.hours)
        self.ward_hours = Calendar(params.ward.hours)
        self.funding_hours = Calendar(params.funding.hours)
        self.panel = Calendar(params.funding.panel)

        self._draws = _Draws(params, rng)
        self._community_placements = _placements(params, rng, "referral.")
        self._again_placements = _placements(params, rng, "handback.")
        """What community referrals, and clients handed back, bring to a market."""
        harm = params.harm
        self._readmission_draws = (_Draws(params, rng, "readmission.")
                                   if harm.readmission.enabled else None)
        """Readmissions draw from streams of their own, so ordinary admissions keep theirs."""
        # The harm of waiting: daily probabilities as hazard rates (0: the mechanism is off).
        self._death_acute = _rate(harm.death.acute_per_day) if harm.death.enabled else 0.0
        self._death_delayed = _rate(harm.death.delayed_per_day) if harm.death.enabled else 0.0
        self._unwell_rate = _rate(harm.unwell_again.per_day) if harm.unwell_again.enabled else 0.0
        self._escalation_rate = {k: _rate(p.escalation_per_day) if harm.escalation.enabled
                                 and p.escalates_to else 0.0 for k, p in pathways.items()}

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
        with _cycle_collector_paused():
            for roster in self.rosters.values():
                roster.start()
            self._provider_events()
            self._fill_community_services()
            self._admissions()
            for service in self.params.services:
                self._community_referrals(service)
            if run.warmup_days > 0:
                self.env.run(until=run.warmup_days)
            for pool in (self.beds, self.assessors, *self.pools.values(),
                         *self.rosters.values()):
                pool.restart_statistics()
            self.fit_in_hospital.restart(self.env.now)
            if until is not None:
                self.env.run(until=until)
                return None
            self.env.run(until=run.days)
            result = self._result()
            self._drop_pending_events()
            return result

    def _drop_pending_events(self) -> None:
        """Forget the events still scheduled when the run ends, and what they would have done:
        they hold the model in reference cycles (the model's pools hold the events, the events'
        callbacks the model), so that only the cycle collector could free a finished run, in
        about 0.4 s. Freed at once instead by reference counting. The queues keep their
        requests (what was still waiting is part of the result)."""
        self.env._queue.clear()  # SimPy keeps its future events in this list (simpy 4)
        for pool in (self.beds, self.assessors, *self.pools.values()):
            pool.drop_pending()

    def _result(self) -> RunResult:
        patients = patient_table(self.patients, until=self.env.now)
        waits = request_table(self.requests)
        daily = compute_daily(patients, self.params)
        metrics = compute_metrics(self.params, patients, daily, waits, self.beds,
                                  self.assessors, self.pools, self.fit_in_hospital, self.rosters)
        return RunResult(self.replication, patients, daily, waits, metrics)

    # ------------------------------------------------------------------ markets
    def _market(self, name: str, service: Service) -> Market:
        """The service's providers, with their places or carers' hours, and its workforce."""
        settings = service.market
        capacities, posts = provider_sizes(service)
        market = Market(self.env, name, settings, capacities, Calendar(settings.hours))
        market.on_hand_back = self._place_again
        if service.staff is not None and service.staff.workforce.enabled:
            flat = market.providers
            roster = Roster(self.env, service.staff.workforce, [n for row in posts for n in row],
                            self._rng[f"{name}_workforce"])
            hours, stretch = service.staff.hours_each, service.staff.workforce.stretch
            rng = self._rng[f"{name}_handback"]
            roster.on_change = lambda j, working: market.set_capacity(
                flat[j], working * hours, stretch, rng)
            self.rosters[name] = roster
        if service.staffing.enabled:
            flat, each = market.providers, service.staffing.places_per_post
            posts = [n for row in staffing_posts(service, capacities) for n in row]
            if service.staffing.workforce.enabled:
                roster = Roster(self.env, service.staffing.workforce, posts,
                                self._rng[f"{name}_staffing"])
                roster.on_change = lambda j, working: market.set_staffed(flat[j], working * each)
                self.rosters[name] = roster
            else:  # every post filled, always
                for provider, n in zip(flat, posts):
                    market.set_staffed(provider, n * each)
        return market

    def _provider_events(self) -> None:
        """Schedule each market's closures, and its providers' suspensions at random."""
        end = self.params.run.days
        for name, service in self.params.services.items():
            settings, market = service.market, self.pools[name]
            if not isinstance(market, Market):
                continue
            for roster_provider, provider in enumerate(market.providers):
                if name in self.rosters:  # the staff at work at the start
                    working = self.rosters[name].working[roster_provider]
                    if service.staffing.enabled:
                        market.set_staffed(provider, working * service.staffing.places_per_post)
                    else:
                        provider.resize(nominal=working * service.staff.hours_each)
            market._changed_size()
            segment = {g.name: i for i, g in enumerate(settings.segments)}
            for closure in settings.closures:
                provider = market.segments[segment[closure.segment]][closure.provider]
                act = market.close if closure.moves_clients else market.suspend
                if closure.start < end and closure.days > 0:
                    self.env.timeout(closure.start).callbacks.append(
                        lambda _, act=act, provider=provider, days=closure.days: act(provider, days))
            if settings.suspensions_per_year > 0:
                rng = self._rng[f"{name}_suspensions"]
                mean_gap = 365.0 / settings.suspensions_per_year
                days = sampler(settings.suspension, rng)
                for provider in market.providers:
                    self._suspend_later(market, provider, rng.exponential(mean_gap), mean_gap,
                                        days, rng)

    def _suspend_later(self, market: Market, provider: Any, after: float, mean_gap: float,
                       days: Callable[[], float], rng: np.random.Generator) -> None:
        """The provider is suspended ``after`` days from now, and again after each suspension
        ends (gaps exponential with mean ``mean_gap``)."""
        if self.env.now + after >= self.params.run.days:
            return

        def suspend(_: object) -> None:
            length = days()
            market.suspend(provider, length)
            self._suspend_later(market, provider, length + rng.exponential(mean_gap), mean_gap,
                                days, rng)

        self.env.timeout(after).callbacks.append(suspend)

    # ------------------------------------------------------------------ admissions
    def _admissions(self) -> None:
        """Admissions by inverting the cumulative admission rate at the running sum of unit
        exponentials (exact for any profile), a batch of arrival times at a time."""
        rate = _AdmissionRate(self.params, self.params.run.days)
        rng = self._rng["admissions"]
        times: list[float] = []
        cumulative = 0.0

        def next_time(_: float) -> float:
            nonlocal cumulative
            if not times:
                targets = cumulative + np.cumsum(rng.exponential(1.0, BATCH))
                cumulative = float(targets[-1])
                times.extend(rate.inverse(targets).tolist()[::-1])
            return times.pop()

        _Arrivals(self.env, next_time, self.params.run.days,
                  lambda: self._admit(self._draws)).start()

    def _admit(self, draws: "_Draws", readmission_of: int = -1) -> None:
        """A patient arrives now, with attributes drawn from ``draws``."""
        patient, harm = draws.patient(len(self.patients), self.env.now, readmission_of)
        self.patients.append(patient)
        self._arrive(patient, harm)

    # ------------------------------------------------------------------ the acute stay
    def _later(self, days: float, hold: "_Hold | None", step: Callable[[], None]) -> None:
        """Take the patient's next ``step`` ``days`` from now (unless cut short: see
        :meth:`_when`)."""
        self.env.timeout(days).callbacks.append(_callback(hold, step))

    @staticmethod
    def _when(event: simpy.Event, hold: "_Hold | None", step: Callable[[], None]) -> None:
        """Take the patient's next ``step`` when ``event`` happens; with ``hold``, only if the
        discharge attempt it belongs to has not been cut short since (death, escalation)."""
        event.callbacks.append(_callback(hold, step))

    def _arrive(self, p: Patient, harm: HarmDraws | None) -> None:
        """The patient takes a free bed, or waits for one (and is diverted after
        ``acute.max_wait_for_bed``)."""
        if self.beds.try_take():
            self._in_bed(p, harm)
            return
        bed = self.beds.request()
        limit = self.params.acute.max_wait_for_bed
        bed.callbacks.append(lambda _: self._in_bed(p, harm))
        if limit is None:
            return

        def divert(_: object = None) -> None:
            if not bed.triggered:  # (granted at this very moment: the patient takes it)
                self.beds.cancel(bed)
                p.diverted, p.left = True, self.env.now

        if limit > 0:
            self.env.timeout(limit).callbacks.append(divert)
        else:
            divert()

    def _in_bed(self, p: Patient, harm: HarmDraws | None) -> None:
        p.bed = self.env.now
        if harm is not None and harm.death < self._death_acute * p.acute_stay:
            # dies before medically fit
            self._later(harm.death / self._death_acute, None, lambda: self._die(p, None))
            return
        self._later(p.acute_stay, None, lambda: self._medically_fit(p, harm))

    def _medically_fit(self, p: Patient, harm: HarmDraws | None) -> None:
        p.fit = now = self.env.now
        self.fit_in_hospital.set(now, self.fit_in_hospital.level + 1)
        if harm is None:
            self._discharge(p, None, lambda request: self._leave(p, harm, request))
        else:
            self._discharge_with_harm(p, harm, _Hold(),
                                      lambda request: self._leave(p, harm, request))

    def _leave(self, p: Patient, harm: HarmDraws | None, request: Request | None) -> None:
        """The patient leaves the bed now: D2A's assessment begins, and the service's use."""
        p.left = now = self.env.now
        self.beds.release()
        self.fit_in_hospital.set(now, self.fit_in_hospital.level - 1)
        if harm is not None and self._readmission_draws is not None:
            self._maybe_readmit(p, harm)

        if self._assessed_at_home[p.pathway]:
            self._assess(p.assessment, None, lambda: None)
        if p.service:
            assert request is not None
            if self.params.services[p.service].then:
                self._stay_then_onward(request, p.stay, p.onward, p.onward_amount,
                                       p.onward_stay, p.onward_placement)
            else:
                self._begin_use(request, p.stay)

    def _discharge(self, p: Patient, hold: "_Hold | None",
                   done: Callable[[Request | None], None]) -> None:
        """From medically fit (or an escalation of need) to the moment the patient may leave:
        the assessment, the funding decision and the family's choice, the wait for the
        pathway's service, then equipment, the discharge summary (both under way since
        earlier), the transfer and the rule; then ``done`` is called with the service's granted
        request (None if the pathway needs none). With ``hold``, records what the patient
        holds, so that it can be let go (harm of waiting). With discharge to assess
        (``assessment.in_hospital: false``) the assessment, funding and choice happen after the
        patient has left."""
        summary_done = self._summary_done(p)
        decide = lambda: self._decide(p, hold, summary_done, done)  # noqa: E731
        if self._assessed_in_hospital[p.pathway]:
            self._assess(p.assessment, hold, decide)
        else:
            decide()

    def _decide(self, p: Patient, hold: "_Hold | None", summary_done: float,
                done: Callable[[Request | None], None]) -> None:
        """Assessed: the funding decision, then the patient's and family's choice (one wait
        for both), then the wait for the pathway's service."""
        env = self.env
        in_hospital = self.params.assessment.in_hospital
        p.assessed = t = now = env.now
        if in_hospital and not math.isnan(p.funding):
            prepared = self.funding_hours.add_open_time(self.funding_hours.next_open(t),
                                                        p.funding)
            t = self.panel.next_open(prepared)
        p.funded = t
        if in_hospital:
            t += p.choice
        p.chosen = t
        if t <= now:
            self._wait_for_service(p, hold, summary_done, done)
            return

        def chosen() -> None:
            p.chosen = env.now  # now + (t - now) may miss t by a rounding error
            p.funded = min(p.funded, p.chosen)
            self._wait_for_service(p, hold, summary_done, done)

        self._later(t - now, hold, chosen)

    def _wait_for_service(self, p: Patient, hold: "_Hold | None", summary_done: float,
                          done: Callable[[Request | None], None]) -> None:
        if not p.service:
            self._go_when_allowed(p, hold, summary_done, None, done)
            return

        def granted(request: Request) -> None:
            p.rounds = request.rounds
            self._go_when_allowed(p, hold, summary_done, request, done)

        self._request(p.service, "hospital", p.amount, hold, p.placement, summary_done, p.stay,
                      p.id, then=granted)

    def _go_when_allowed(self, p: Patient, hold: "_Hold | None", summary_done: float,
                         request: Request | None, done: Callable[[Request | None], None]) -> None:
        """The service is ready: equipment and the summary if they are not done yet, the
        transfer, then the first moment the pathway's rule allows: one wait for all."""
        env = self.env
        p.ready = now = env.now
        equipment = math.nan if math.isnan(p.equipment) else p.assessed + p.equipment
        p.equipped = equipment if equipment > now else now
        p.summarised = summary_done if summary_done > p.equipped else p.equipped
        p.transferred = p.summarised + p.transfer
        rule = self.rules[p.pathway]
        if (hold is not None and hold.unfit_end > now
                and hold.unfit_start < rule.next_open(p.transferred)):
            # unfit when due to go: transfer again once fit (and the summary is written)
            p.transferred = max(p.summarised, hold.unfit_end) + p.transfer
        leaves = rule.next_open(p.transferred)
        if leaves <= now:
            done(request)
            return

        def go() -> None:
            # now + (leaves - now) may miss leaves by a rounding error: keep the order exact
            p.transferred = min(p.transferred, env.now)
            p.summarised = min(p.summarised, p.transferred)
            p.equipped = min(p.equipped, p.summarised)
            done(request)

        self._later(leaves - now, hold, go)

    def _summary_done(self, p: Patient) -> float:
        """When the ward will have made the medical decision and written the discharge summary
        for work begun now (now, if the pathway needs none)."""
        now = self.env.now
        if p.summary <= 0:
            return now
        return self.ward_hours.add_open_time(self.ward_hours.next_open(now), p.summary)

    def _assess(self, duration: float, hold: "_Hold | None", then: Callable[[], None]) -> None:
        """An assessment by one of the discharge team, in the team's working hours: the patient
        joins the team's queue when the team is at work, and the work pauses out of hours;
        then ``then``."""
        now = self.env.now
        opens = self.team_hours.next_open(now)
        if opens > now:
            self._later(opens - now, hold, lambda: self._join_assessors(duration, hold, then))
        else:
            self._join_assessors(duration, hold, then)

    def _join_assessors(self, duration: float, hold: "_Hold | None",
                        then: Callable[[], None]) -> None:
        if self.assessors.try_take():
            self._assessing(duration, hold, then)
            return
        event = self.assessors.request()
        if hold is not None:
            hold.assessor = event
        self._when(event, hold, lambda: self._assessing(duration, hold, then))

    def _assessing(self, duration: float, hold: "_Hold | None", then: Callable[[], None]) -> None:
        if hold is not None:
            hold.assessor = True
        now = self.env.now
        done = self.team_hours.add_open_time(self.team_hours.next_open(now), duration)

        def finish() -> None:
            self.assessors.release()
            if hold is not None:
                hold.assessor = None
            then()

        if done > now:
            self._later(done - now, hold, finish)
        else:
            finish()

    # ------------------------------------------------------------------ the harm of waiting
    def _discharge_with_harm(self, p: Patient, harm: HarmDraws, hold: _Hold,
                             done: Callable[[Request | None], None]) -> None:
        """:meth:`_discharge`, exposed from medically fit to leaving to death, escalation of
        need and an unfit episode, at times set now from the patient's clocks (drawn on
        arrival): an event at cumulative hazard E of a rate r comes E / r days on. A death or
        an escalation cuts the discharge short: what the patient holds is let go, the steps
        scheduled lapse, and the patient dies (``done`` is not called) or starts again."""
        env, now, end = self.env, self.env.now, self.params.run.days

        def at(t: float, action: Callable[[], None]) -> None:
            if t < end:
                self._later(t - env.now, None, action)

        def finished(request: Request | None) -> None:
            self._fit_again(hold)  # (an episode that ends at this very moment)
            done(request)

        def cut_short(cause: str) -> None:
            if not (math.isnan(p.left) and math.isnan(p.died)):
                return  # left or died already
            self._let_go(hold)
            if cause == "death":
                self._die(p, hold)
                return
            assert harm.escalated is not None
            self._escalate(p, harm.escalated)
            self._discharge(p, hold, finished)

        if self._death_delayed > 0:
            remaining = harm.death - self._death_acute * p.acute_stay
            at(now + remaining / self._death_delayed, lambda: cut_short("death"))
        rate = self._escalation_rate[p.pathway]
        if rate > 0 and harm.escalated is not None:
            at(now + harm.escalation / rate, lambda: cut_short("escalation"))
        if self._unwell_rate > 0:
            hold.unfit_start = now + harm.unwell / self._unwell_rate
            hold.unfit_end = hold.unfit_start + harm.unwell_days
            at(hold.unfit_start, lambda: self._unfit_again(p, hold))
            at(hold.unfit_end, lambda: self._fit_again(hold))
        self._discharge(p, hold, finished)

    def _unfit_again(self, p: Patient, hold: _Hold) -> None:
        """The patient, still in hospital, becomes medically unfit until ``hold.unfit_end``."""
        if math.isnan(p.left) and math.isnan(p.died):
            p.unfit_again, p.unfit_again_end = self.env.now, hold.unfit_end
            hold.unfit = True
            self.fit_in_hospital.set(self.env.now, self.fit_in_hospital.level - 1)

    def _fit_again(self, hold: _Hold) -> None:
        if hold.unfit:
            hold.unfit = False
            self.fit_in_hospital.set(self.env.now, self.fit_in_hospital.level + 1)

    def _let_go(self, hold: _Hold) -> None:
        """Free (or withdraw the request for) the assessor and service place the patient holds;
        the steps the discharge had scheduled lapse."""
        now = self.env.now
        hold.attempt += 1
        if hold.assessor is not None:
            if hold.assessor is True or hold.assessor.triggered:
                self.assessors.release()
            else:
                self.assessors.cancel(hold.assessor)
        request = hold.request
        if request is not None:
            if hold.event is not None and not hold.event.triggered:
                self._withdraw(request, hold.event)
            else:  # granted (perhaps this very moment): freed unused
                if math.isnan(request.granted):
                    request.granted = now
                request.stay = 0.0
                self._end_use(request)
        hold.assessor = hold.request = hold.event = None

    def _die(self, p: Patient, hold: _Hold | None) -> None:
        """The patient dies in the bed: it is freed (and what the patient held, by the caller)."""
        now = self.env.now
        p.died = now
        self.beds.release()
        if hold is not None and hold.unfit:
            hold.unfit = False
            p.unfit_again_end = now
        elif not math.isnan(p.fit):
            self.fit_in_hospital.set(now, self.fit_in_hospital.level - 1)

    def _escalate(self, p: Patient, needs: Needs) -> None:
        """The patient's need escalates now to ``needs`` (drawn on arrival): the phase ends
        reached so far are kept as ``first_*``, and the discharge starts again."""
        now = self.env.now
        p.escalated, p.escalated_from, p.first_service = now, p.pathway, p.service
        for phase in PHASES[1:-1]:  # those set ahead and not reached are not kept
            reached = getattr(p, phase)
            setattr(p, f"first_{phase}", reached if reached <= now else math.nan)
            setattr(p, phase, math.nan)
        for name in NEEDS:
            setattr(p, name, getattr(needs, name))

    def _maybe_readmit(self, p: Patient, harm: HarmDraws) -> None:
        """At discharge: the patient may come back as a new admission within the window."""
        r = self.params.harm.readmission
        incomplete, readmitted, when = harm.readmission
        now = self.env.now
        weekend = math.floor(now) % 7 >= 5
        p.incomplete_discharge = incomplete < (r.incomplete_share_weekend if weekend
                                               else r.incomplete_share)
        chance = (r.probability * (r.incomplete_relative_risk if p.incomplete_discharge else 1.0)
                  * (r.weekend_relative_risk if weekend else 1.0))
        if readmitted < chance:
            # exponential of mean r.mean_days cut at r.within_days, by inversion
            days = -r.mean_days * math.log1p(when * math.expm1(-r.within_days / r.mean_days))
            if now + days < self.params.run.days:
                draws = self._readmission_draws
                self.env.timeout(days).callbacks.append(lambda _: self._admit(draws, p.id))

    # ------------------------------------------------------------------ community services
    def _request(self, service: str, source: str, amount: float, hold: "_Hold | None",
                 placement: Placement | None, complete_from: float, stay: float, patient: int,
                 then: Callable[[Request], None]) -> None:
        """Wait for ``amount`` of a community service (placed with a provider if it has a
        market: ``placement``, with the summary written from ``complete_from``; -inf: no
        summary to wait for); then ``then`` is called with the granted request, whose use of
        ``stay`` days (NaN: not known yet) begins when the caller says."""
        request = self._log_request(service, source, amount, placement, patient)
        pool = self.pools[service]
        if hold is not None:
            hold.request = request
        if isinstance(pool, Market):
            assert placement is not None
            event = pool.place(request, placement, complete_from)
        else:
            event = None if pool.try_take(amount) else pool.request(amount)

        def granted() -> None:
            if hold is not None:
                hold.event = None
            request.granted = self.env.now
            if not math.isnan(stay):
                request.stay = stay
            then(request)

        if event is None:
            granted()
            return
        if hold is not None:
            hold.event = event
        self._when(event, hold, granted)

    def _log_request(self, service: str, source: str, amount: float,
                     placement: Placement | None = None, patient: int = -1) -> Request:
        """A new request in the log, made now; the caller records when it is granted."""
        request = Request(service, source, amount, self.env.now, patient, placement=placement)
        self.requests.append(request)
        return request

    def _release(self, request: Request) -> None:
        """The request's use ends now: its capacity is free (unless it was handed back and
        placed again, or freed already)."""
        if request.moved_to is not None or not math.isnan(request.released):
            return
        pool = self.pools[request.service]
        if isinstance(pool, Market):
            pool.release(request)
        else:
            pool.release(request.amount)
        request.released = self.env.now

    def _begin_use(self, request: Request, days: float) -> None:
        """The client's use of a granted service begins now, for ``days``: the use of the
        request as placed last, if its provider handed it back or closed since; if that is not
        granted yet, the client waits at home and uses what is left of ``days`` once it is."""
        while request.moved_to is not None:
            request = request.moved_to
        if math.isnan(request.granted):
            request.stay = days
            request.ends = self.env.now + days  # held from the grant by _place_again
        else:
            self._hold(request, days)

    def _end_use(self, request: Request) -> None:
        """The client's use of a service ends now, wherever the client was placed last:
        released, or, if still being placed again after a hand-back, withdrawn."""
        while request.moved_to is not None:
            request = request.moved_to
        if math.isnan(request.granted):
            self._withdraw(request)
        else:
            self._release(request)

    def _withdraw(self, request: Request, event: simpy.Event | None = None) -> None:
        """Withdraw a request not yet granted (``event``: its wait in a pool)."""
        pool = self.pools[request.service]
        if isinstance(pool, Market):
            pool.withdraw(request)
        elif event is not None:
            pool.cancel(event)
        request.cancelled = self.env.now

    def _hold(self, request: Request, days: float) -> None:
        """Use a granted request for ``days``, then free it (an event, not a process)."""
        request.stay = days
        request.ends = self.env.now + days
        self.env.timeout(days).callbacks.append(lambda _: self._release(request))

    def _stay_then_onward(self, request: Request, days: float, onward: str, amount: float,
                          onward_days: float, placement: Placement | None = None) -> None:
        """A stay in a service with a next step (a step-down bed): one who needs another service
        next waits for it in this service's place, which is freed only once that is granted."""
        request.stay = days  # plus any wait for the onward service
        request.ends = self.env.now + days

        def moved_on(granted: Request) -> None:
            self._hold(granted, onward_days)
            self._end_use(request)

        def stay_ends() -> None:
            if onward:
                self._request(onward, request.service, amount, None, placement, -math.inf,
                              math.nan, request.patient, then=moved_on)
            else:
                self._end_use(request)

        self._later(days, None, stay_ends)

    def _place_again(self, request: Request, why: str) -> None:
        """A provider handed the client back (``why``: "handed_back") or closed ("moved"): the
        client, at home or in the community, is placed again, in the same segment, with new
        luck, for the rest of the stay. A hospital patient who has not yet left keeps the date
        and goes home to wait."""
        now = self.env.now
        request.released = now
        name = request.service
        service = self.params.services[name]
        again = self._log_request(name, why, request.amount, patient=request.patient)
        request.moved_to = again
        remaining = request.ends - now if not math.isnan(request.ends) else request.stay
        again.stay = max(0.0, remaining)
        again.ends = request.ends
        old = request.placement
        fresh = self._again_placements[name].draw()
        again.placement = Placement(old.segment, old.complex, fresh.clock, fresh.pick)
        market = self.pools[name]
        assert isinstance(market, Market)

        def start(_: object = None) -> None:
            again.granted = self.env.now
            if not math.isnan(again.ends) and not service.then:  # its use had begun
                self._hold(again, max(0.0, again.ends - self.env.now))

        event = market.place(again, again.placement)
        if event is None:
            start()
        else:
            event.callbacks.append(start)

    def _community_referrals(self, service: str) -> None:
        """People referred to a service from the community, competing with hospital patients."""
        settings = self.params.services[service]
        per_day = settings.community_referrals_per_day
        if per_day <= 0 or not math.isfinite(1.0 / per_day):
            return  # none, or so rare that the mean gap overflows: none in any run
        rng = self._rng
        # Gaps of mean 1/per_day, drawn as unit exponentials times the mean (what numpy does
        # inside, so the same numbers): a rare referral's mean gap may exceed what a
        # user-given Distribution allows.
        unit_gap, mean_gap = sampler(Distribution("exponential", 1.0),
                                     rng[f"{service}_referrals"]), 1.0 / per_day
        gap = lambda: unit_gap() * mean_gap  # noqa: E731
        amount = sampler(settings.amount, rng[f"{service}_referral_amount"])
        stay = sampler(settings.stay, rng[f"{service}_referral_stay"])
        placement = self._community_placements.get(service)
        _Arrivals(self.env, lambda now: now + gap(), self.params.run.days,
                  lambda: self._community_client(service, amount(), stay(), placement.draw()
                                                 if placement is not None else None)).start()

    def _community_client(self, service: str, amount: float, days: float,
                          placement: Placement | None = None) -> None:
        """A community referral: waits its turn for the service (or is placed by its market),
        uses it, frees it."""
        if placement is not None and placement.complex:
            amount *= self.params.services[service].market.complex_amount
        request = self._log_request(service, "community", amount, placement)
        request.stay = days

        def start(_: object = None) -> None:
            request.granted = self.env.now
            self._hold(request, days)

        pool = self.pools[service]
        if isinstance(pool, Market):
            event = pool.place(request, placement)
            if event is None:
                start()
            else:
                event.callbacks.append(start)
        elif pool.try_take(amount):
            start()
        else:
            pool.request(amount).callbacks.append(start)

    def _fill_community_services(self) -> None:
        """Start community services part-full, as a real system is on the first day.

        Each service is filled to ``initial_utilisation`` of its capacity (of each provider's,
        in a market) with clients whose remaining time is drawn from the equilibrium residual
        distribution of the stay (a length-biased stay times a uniform), so the services start
        near their steady state and a short warm-up suffices even for care homes where
        residents stay for years.
        """
        for name, service in self.params.services.items():
            pool, rng = self.pools[name], self._rng[f"initial_{name}"]
            places = pool.providers if isinstance(pool, Market) else [pool]
            for place in places:
                target = service.initial_utilisation * place.capacity
                while True:
                    amount = draw_one(service.amount, rng)
                    if place.in_use + amount > target + 1e-9 or amount <= 0:
                        break
                    request = self._log_request(name, "initial", amount)
                    if isinstance(pool, Market):
                        request.placement = Placement(place.segment, False, 0.0, 0.0)
                        assert pool.take_at(place, request)
                    else:
                        assert pool.try_take(amount)
                    request.granted = self.env.now
                    self._hold(request, _residual_stay(service.stay, rng))


REQUEST_COLUMNS = logged(Request)
PATIENT_COLUMNS = logged(Patient)
"""The columns of the request log (:attr:`RunResult.service_waits`) and the patient log."""


def _residual_stay(dist: Distribution, rng: np.random.Generator) -> float:
    """Remaining stay of someone found in service at a random moment: a length-biased stay
    times a uniform (the equilibrium residual-life distribution)."""
    return length_biased_draw(dist, rng) * float(rng.random())


class _AdmissionRate:
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


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Run with Python's cycle collector paused: a run allocates many small objects, most of
    which die young and are freed as soon as they are done with (no cycles), while each pass of
    the collector walks every object alive, the model's and the libraries'. Paused, a default
    run takes about 8% less CPU than with the collector called every 100,000 allocations (and
    15% less than every 700). A finished run leaves no cycles to collect
    (:meth:`Model._drop_pending_events`)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def patient_table(patients: list[Patient], until: float = math.inf) -> pd.DataFrame:
    """The patient log as a table, one row per patient, with each patient's delay (days from
    medically fit to leaving the bed; NaN while still in hospital) split by cause. A transfer
    that would end after ``until`` (the end of the run) has not happened: NaN."""
    columns = _columns(patients, PATIENT_COLUMNS, {
        "id": int, "pathway": str, "service": str, "onward": str, "diverted": bool,
        "escalated_from": str, "first_service": str, "readmission_of": int,
        "incomplete_discharge": bool, "segment": str, "complex": bool, "rounds": int})
    # Steps whose end was set ahead (the funding panel, the summary, the transfer) and falls
    # after the run's end have not happened yet.
    for phase in ("funded", "chosen", "equipped", "summarised", "transferred"):
        times = columns[phase]
        columns[phase] = np.where(times <= until, times, np.nan)
    # Days medically unfit again (harm of waiting), up to the run's end: not delayed days.
    end = columns["unfit_again_end"] = np.minimum(columns["unfit_again_end"], until)  # NaN stays
    unfit = end - columns["unfit_again"]
    columns["unfit_again_days"] = unfit = np.where(np.isnan(unfit), 0.0, unfit)
    columns["delay"] = columns["left"] - columns["fit"] - unfit
    for before, (phase, cause) in zip(PHASES, CAUSE_OF_PHASE.items()):
        columns[f"delay_{cause}"] = columns[phase] - columns[before]
    return pd.DataFrame(columns)


def request_table(requests: list[Request]) -> pd.DataFrame:
    """The log of requests for community services as a table, one row per request."""
    return pd.DataFrame(_columns(requests, REQUEST_COLUMNS, {
        "service": str, "source": str, "patient": int, "segment": str, "provider": int,
        "rounds": int}), columns=REQUEST_COLUMNS)


def _columns(records: list[Any], names: list[str], kinds: dict[str, type]) -> dict[str, np.ndarray]:
    """A column for each of ``names`` of the records, of the type in ``kinds`` (float if not
    named), built column by column (several times faster than a table built row by row)."""
    n = len(records)
    columns = {}
    for name in names:
        kind = kinds.get(name, float)
        values = map(attrgetter(name), records)
        columns[name] = (np.array(list(values), dtype=object) if kind is str
                         else np.fromiter(values, dtype=kind, count=n))
    return columns


def simulate(params: Params, replication: int = 0) -> RunResult:
    """Run one replication of the model; replication k has its own random streams."""
    result = Model(params, replication).run()
    assert result is not None
    return result
