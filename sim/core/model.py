"""The hospital journey: admissions, acute beds, becoming medically fit, and every step of a
discharge until the bed is free.

A patient arrives (:mod:`sim.core.arrivals`), waits for an acute bed if none is free (or is
diverted after ``acute.max_wait_for_bed``), stays until medically fit, and from then on every
day in the bed is a delayed day. The steps of the discharge follow, each its own cause of
delay: the discharge summary (begun at once), the discharge team's assessment, the council's
funding decision and the family's choice, the wait for the community service the pathway needs
(:mod:`sim.core.community`: homecare, a step-down bed, a care-home place), equipment, the
transfer and the pathway's rule on which days and hours discharges may happen. Only then is
the bed freed. What each patient brings is drawn on arrival (:mod:`sim.core.sampling`).

The model knows nothing of configuration files, output files or plots: it takes a
:class:`~sim.core.params.Params` and a replication number, and returns a :class:`RunResult`.
"""

from __future__ import annotations

import gc
import math
from operator import attrgetter
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import simpy

from sim.core.arrivals import admissions
from sim.core.calendar import Calendar, is_weekend
from sim.core.community import Community, CommunityService
from sim.core.metrics import compute_daily, compute_metrics
from sim.core.params import Distribution, Params
from sim.core.patient import CAUSE_OF_PHASE, PHASES, HarmDraws, Needs, Patient, Request, logged
from sim.core.resources import CapacityPool, TimeWeighted
from sim.core.sampling import NEEDS, Draws
from sim.core.start import Change, Snapshot, StartPatient, check_change
from sim.core.streams import draw_one, length_biased_draw, replication_streams
from sim.core.workforce import Roster


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


def _rate(per_day: float) -> float:
    """The hazard rate (per day) of a daily probability: over d days, 1 - (1 - p)^d."""
    return -math.log1p(-per_day)


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

    def __init__(self, params: Params, replication: int = 0, start: Snapshot | None = None,
                 changes: tuple[Change, ...] = ()) -> None:
        self.params = params
        self.replication = replication
        self.start = start
        """Who is in the hospital and the services at the start (None: the usual empty
        hospital and services filled to their ``initial_utilisation``). With one, the clock
        starts at the snapshot's weekday (time 0 is a Monday 00:00)."""
        for change in changes:
            check_change(change, params.services)
        self.changes = tuple(changes)
        """Capacities set on a day of the run, counted from its start."""
        self.env = simpy.Environment(initial_time=float(start.weekday) if start else 0.0)
        self._started = False
        rng = replication_streams(params.run.seed, replication)
        self._rng = rng
        pathways = params.pathways

        self.beds = CapacityPool(self.env, "acute_beds", params.acute.beds)
        self.fit_in_hospital = TimeWeighted()  # medically fit patients still in a bed
        self.assessors = CapacityPool(self.env, "assessors", params.assessment.staff)
        self.community = Community(self.env, params, rng)
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

        self._draws = Draws(params, rng)
        harm = params.harm
        self._readmission_draws = (Draws(params, rng, "readmission.")
                                   if harm.readmission.enabled else None)
        """Readmissions draw from streams of their own, so ordinary admissions keep theirs."""
        # The harm of waiting: daily probabilities as hazard rates (0: the mechanism is off).
        self._death_acute = _rate(harm.death.acute_per_day) if harm.death.enabled else 0.0
        self._death_delayed = _rate(harm.death.delayed_per_day) if harm.death.enabled else 0.0
        self._unwell_rate = _rate(harm.unwell_again.per_day) if harm.unwell_again.enabled else 0.0
        self._escalation_rate = {k: _rate(p.escalation_per_day) if harm.escalation.enabled
                                 and p.escalates_to else 0.0 for k, p in pathways.items()}

        self.patients: list[Patient] = []
        self._assessed_already: set[int] = set()
        """Patients of a snapshot whose discharge starts after the assessment."""

    @property
    def pools(self) -> dict[str, CommunityService]:
        """Each community service, by name."""
        return self.community.services

    @property
    def rosters(self) -> dict[str, Roster]:
        """The posts of each service whose workforce (or staffing) comes and goes."""
        return self.community.rosters

    @property
    def requests(self) -> list[Request]:
        """Every request for a community service, in the order made."""
        return self.community.requests

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
            start = self.start
            self.community.start(None if start is None else start.services)
            if start is not None:
                self._start_patients(start)
            self._schedule_changes()
            admissions(self.env, self.params, self._rng["admissions"],
                       lambda: self._admit(self._draws))
            self.community.start_referrals()
            if run.warmup_days > self.env.now:
                self.env.run(until=run.warmup_days)
            self.beds.restart_statistics()
            self.assessors.restart_statistics()
            self.community.restart_statistics()
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
        self.beds.drop_pending()
        self.assessors.drop_pending()
        self.community.drop_pending()

    def _result(self) -> RunResult:
        patients = patient_table(self.patients, until=self.env.now)
        waits = request_table(self.requests)
        daily = compute_daily(patients, self.params)
        metrics = compute_metrics(self.params, patients, daily, waits, self.beds,
                                  self.assessors, self.pools, self.fit_in_hospital, self.rosters)
        return RunResult(self.replication, patients, daily, waits, metrics)

    # ------------------------------------------------------------------ admissions
    def _admit(self, draws: Draws, readmission_of: int = -1) -> None:
        """A patient arrives now, with attributes drawn from ``draws``."""
        patient, harm = draws.patient(len(self.patients), self.env.now, readmission_of)
        self.patients.append(patient)
        self._arrive(patient, harm)

    # ------------------------------------------------------------------ starting from a snapshot
    def _start_patients(self, start: Snapshot) -> None:
        """Put the snapshot's patients in their beds now: each not yet fit stays on for the
        rest of an acute stay drawn given the days already stayed; each fit starts the steps
        of the discharge it still has ahead, its delay counted from when it became fit."""
        draws = Draws(self.params, self._rng, "snapshot.")
        pathways = self.params.pathways
        keys = list(pathways)
        rng = self._rng["snapshot.start"]
        now = self.env.now
        for sp in start.patients:
            if len(self.patients) >= self.params.acute.beds:
                raise ValueError(f"snapshot: more patients than acute.beds="
                                 f"{self.params.acute.beds}")
            p, harm = draws.patient(len(self.patients), now, -1)
            k = sp.pathway
            sp = self._in_band(sp, rng)
            if sp.fit:
                if k is None:
                    k = p.pathway
                fit_days = sp.fit_days
                if fit_days is None or math.isnan(fit_days):
                    fit_days = self._fit_for(sp.days_in, pathways[k].acute_stay, rng)
                days_in, stay = sp.days_in, sp.days_in - fit_days
                remaining = 0.0
            else:
                k, days_in, stay = self._stay_so_far(sp, k, keys, rng)
                remaining = stay - days_in
            if k != p.pathway:
                p = self._on_pathway(p, k, draws)
            if sp.complex is not None and p.placement is not None and p.complex != sp.complex:
                factor = self.params.services[p.service].market.complex_amount
                p.amount = p.amount * factor if sp.complex else p.amount / factor
                p.complex = p.placement.complex = sp.complex
            p.acute_stay = stay
            p.arrival = p.bed = now - days_in
            self.beds.try_take()
            self.patients.append(p)
            if harm is not None:  # the harm clocks run from now: the stay so far is past
                harm.death += self._death_acute * (stay - remaining)
            if not sp.fit:
                if harm is not None and harm.death < self._death_acute * stay:
                    self._later((harm.death - self._death_acute * days_in) / self._death_acute,
                                None, lambda p=p: self._die(p, None))  # before medically fit
                else:
                    self._later(remaining, None,
                                lambda p=p, harm=harm: self._medically_fit(p, harm))
                continue
            p.fit = now - fit_days
            self.fit_in_hospital.set(now, self.fit_in_hospital.level + 1)
            self._resume_discharge(p, harm, sp.waiting_for)
        for _ in range(start.waiting_for_bed):  # in the queue for a bed, in this order
            self._admit(draws)

    def _stay_so_far(self, sp: StartPatient, k: str | None, keys: list[str],
                     rng: np.random.Generator) -> tuple[str, float, float]:
        """A patient not yet fit: the pathway (drawn if not known), the days in so far
        (drawn if not known) and the whole acute stay, drawn given the days in so far.

        Days in known: pathway and stay drawn together until the stay exceeds them (so an
        unknown pathway is drawn given the stay so far). Not known: a patient found in a bed
        at a random moment: a length-biased stay, with a uniform part of it gone."""
        pathways = self.params.pathways
        shares = np.array([pathways[j].share for j in keys])
        if math.isnan(sp.days_in):
            if k is None:
                weights = shares * np.array([pathways[j].acute_stay.mean for j in keys])
                k = keys[int(rng.choice(len(keys), p=weights / weights.sum()))]
            stay = length_biased_draw(pathways[k].acute_stay, rng)
            return k, stay * float(rng.random()), stay
        d = sp.days_in
        for _ in range(10_000):
            j = k if k is not None else keys[int(rng.choice(len(keys), p=shares / shares.sum()))]
            stay = draw_one(pathways[j].acute_stay, rng)
            if stay > d:
                return j, d, stay
        # stayed far longer than the distribution allows: a memoryless remainder
        j = k if k is not None else keys[int(np.argmax(shares))]
        return j, d, d + float(rng.exponential(max(pathways[j].acute_stay.mean, 1e-9)))

    @staticmethod
    def _in_band(sp: StartPatient, rng: np.random.Generator) -> StartPatient:
        """The patient with days in drawn within its band (if it has one)."""
        if math.isnan(sp.days_in_to):
            return sp
        lo, hi = sp.days_in, sp.days_in_to
        days = (lo + float(rng.exponential(max(lo / 2.0, 3.5))) if math.isinf(hi)
                else lo + (hi - lo) * float(rng.random()))
        return replace(sp, days_in=days, days_in_to=math.nan)

    @staticmethod
    def _fit_for(days_in: float, stay: Distribution, rng: np.random.Generator) -> float:
        """Days since medically fit of a fit patient ``days_in`` days in: the days in less an
        acute stay drawn shorter than them (a uniform part of them if none is drawn)."""
        for _ in range(1000):
            acute = draw_one(stay, rng)
            if acute <= days_in:
                return days_in - acute
        return days_in * float(rng.random())

    @staticmethod
    def _on_pathway(p: Patient, k: str, draws: Draws) -> Patient:
        """The patient with what pathway ``k`` needs (a patient of the snapshot whose pathway
        is known), drawn afresh."""
        fresh = Patient(id=p.id, arrival=p.arrival, pathway=k, acute_stay=p.acute_stay,
                        transfer=0.0)
        draws.needs.draw(k, fresh)
        return fresh

    def _resume_discharge(self, p: Patient, harm: HarmDraws | None, waiting_for: str) -> None:
        """A patient fit at the snapshot: the discharge's steps from the one it waits for."""
        steps = ("", "assessment", "funding", "choice")
        if waiting_for in steps:
            if waiting_for in ("funding", "choice"):
                p.assessment = 0.0
                if waiting_for == "choice":
                    p.funding = math.nan
            if not waiting_for or waiting_for == "assessment":
                self._discharge_fit(p, harm)
                return
        else:  # the service or later: assessed, funded and chosen already
            p.assessment, p.funding, p.choice = 0.0, math.nan, 0.0
            if waiting_for not in ("service",):  # the service is arranged already
                p.service, p.onward = "", ""
        self._discharge_fit(p, harm, skip_assessment=True)

    def _discharge_fit(self, p: Patient, harm: HarmDraws | None,
                       skip_assessment: bool = False) -> None:
        leave = lambda request: self._leave(p, harm, request)  # noqa: E731
        if skip_assessment:
            self._assessed_already.add(p.id)
        if harm is not None:
            self._discharge_with_harm(p, harm, _Hold(), leave)
        else:
            self._discharge(p, None, leave)

    # ------------------------------------------------------------------ dated changes
    def _schedule_changes(self) -> None:
        """Set each dated change's capacity on its day (from the run's start)."""
        for change in self.changes:
            at = self.env.now + change.day
            if at < self.params.run.days:
                self.env.timeout(change.day).callbacks.append(
                    lambda _, c=change: self._apply(c))

    def _apply(self, change: Change) -> None:
        if change.setting == "acute.beds":
            self.beds.set_capacity(change.value)
            return
        name = change.setting.split(".")[1]
        staff = self.params.services[name].staff
        size = change.value * staff.hours_each if staff is not None else change.value
        self.community.set_size(name, size)

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
                self.community.stay_then_onward(request, p.stay, p.onward, p.onward_amount,
                                                p.onward_stay, p.onward_placement)
            else:
                self.community.begin_use(request, p.stay)

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
        if self._assessed_already and p.id in self._assessed_already:
            self._assessed_already.discard(p.id)  # (a snapshot's patient, assessed before it)
            decide()
        elif self._assessed_in_hospital[p.pathway]:
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

        request, event = self.community.ask(p.service, "hospital", p.amount, p.placement,
                                            summary_done, p.id)
        stay = p.stay
        if hold is not None:
            hold.request = request

        def granted() -> None:
            if hold is not None:
                hold.event = None
            self.community.granted(request, stay)
            p.rounds = request.rounds
            self._go_when_allowed(p, hold, summary_done, request, done)

        if event is None:
            granted()
            return
        if hold is not None:
            hold.event = event
        self._when(event, hold, granted)

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
                self.community.withdraw(request)
            else:  # granted (perhaps this very moment): freed unused
                if math.isnan(request.granted):
                    request.granted = now
                request.stay = 0.0
                self.community.end_use(request)
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
        weekend = is_weekend(now)
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

REQUEST_COLUMNS = logged(Request)
PATIENT_COLUMNS = logged(Patient)
"""The columns of the request log (:attr:`RunResult.service_waits`) and the patient log."""


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


def simulate(params: Params, replication: int = 0, start: Snapshot | None = None,
             changes: tuple[Change, ...] = ()) -> RunResult:
    """Run one replication of the model; replication k has its own random streams. With
    ``start``, from a snapshot (no warm-up: see :mod:`sim.core.start`); ``changes``: dated
    capacities."""
    result = Model(params, replication, start, changes).run()
    assert result is not None
    return result
