"""Metrics of one run, computed from the patient log and the pools' time-weighted statistics.

Everything is measured over the window from the end of warm-up to the end of the run. A delayed
day is a bed-day between becoming medically fit and leaving the acute bed; a patient's delay is
split into causes by the times in :mod:`sim.core.patient`. The midnight count of medically fit
patients still in hospital is the figure the NHS publishes daily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np
import pandas as pd

from sim.core.calendar import WEEKEND, weekdays
from sim.core.catalogue import (PER, WEEKDAY_NAMES, catalogue, causes, social_care_causes,
                                sources)
from sim.core.params import Params
from sim.core.patient import CAUSE_OF_PHASE, PHASES, SERVICE

if TYPE_CHECKING:
    from sim.core.community import CommunityService
    from sim.core.market import Market
    from sim.core.resources import CapacityPool, TimeWeighted
    from sim.core.workforce import Roster

LONG_STAY = 21.0
"""Days in hospital from which a stay is long (NHS England's and QualityWatch's 21 days)."""


def _count_at(times_in: np.ndarray, times_out: np.ndarray, at: np.ndarray) -> np.ndarray:
    """How many intervals [in, out) contain each moment of ``at`` (NaN out = still open)."""
    t_in = np.sort(times_in[~np.isnan(times_in)])
    t_out = np.sort(times_out[~np.isnan(times_out)])
    return (np.searchsorted(t_in, at, side="right")
            - np.searchsorted(t_out, at, side="right")).astype(int)


def compute_daily(patients: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Counts at each simulated midnight, and the discharges of the day that follows it, in all
    and by pathway."""
    run = params.run
    days = np.arange(int(np.ceil(run.days)), dtype=float)
    arrival = patients["arrival"].to_numpy(float)
    bed = patients["bed"].to_numpy(float)
    fit = patients["fit"].to_numpy(float)
    left = patients["left"].to_numpy(float)
    diverted = patients["diverted"].to_numpy(bool)
    discharged = ~diverted & ~np.isnan(left)
    # A patient waits for a bed from arrival until given a bed or diverted.
    wait_end = np.where(np.isnan(bed), np.where(diverted, left, np.nan), bed)
    gone = _bed_left(patients)
    in_bed_left = np.where(np.isnan(bed), np.nan, gone)
    long_from = bed + LONG_STAY  # in hospital 21 days or more from then (NaN: no bed)
    # Medically fit: from fit to leaving, less any time medically unfit again.
    unfit_again = patients["unfit_again"].to_numpy(float)
    daily = pd.DataFrame({
        "day": days.astype(int),
        "weekday": weekdays(days),
        "warmup": days < run.warmup_days,
        "in_hospital": _count_at(bed, in_bed_left, days),
        "fit_in_hospital": _count_at(fit, np.where(np.isnan(fit), np.nan, gone), days)
        - _count_at(unfit_again, patients["unfit_again_end"].to_numpy(float), days),
        "waiting_for_bed": _count_at(arrival, wait_end, days),
        "long_stay": _count_at(long_from, np.where(in_bed_left < long_from, long_from,
                                                   in_bed_left), days),
    })
    discharge_day = np.floor(left[discharged]).astype(int)
    pathway = patients["pathway"].to_numpy(str)[discharged]
    n = len(days)
    daily["discharges"] = np.bincount(discharge_day, minlength=n)[:n]
    for k in params.pathways:
        daily[f"discharges_{k}"] = np.bincount(discharge_day[pathway == k], minlength=n)[:n]
    return daily


def _overlap(start: np.ndarray, end: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0.0, None)


def _bed_left(patients: pd.DataFrame) -> np.ndarray:
    """When each patient left the bed: discharged (``left``) or died (NaN: not yet)."""
    left = patients["left"].to_numpy(float)
    return np.where(np.isnan(left), patients["died"].to_numpy(float), left)


def delay_phases(patients: pd.DataFrame, params: Params) -> dict[str, np.ndarray]:
    """Per patient, delayed days in the measured window by cause, in the order of
    :func:`sim.core.catalogue.causes` (NaN phase ends = the patient left the bed, or the run's
    end). The wait for a community service is attributed to the service the patient's pathway
    needs. Harm of waiting: days medically unfit again are not delayed days (they are taken out
    of the phase they fall in); a patient whose need escalated has the phases reached on the
    old pathway, from fit to the escalation (the wait then counted for the old service), and
    those on the new pathway from the escalation on."""
    lo, hi = params.run.warmup_days, params.run.days
    column = lambda name: patients[name].to_numpy(float)  # noqa: E731
    fit = column("fit")
    has_fit = ~np.isnan(fit)
    gone = _bed_left(patients)
    stop = np.where(np.isnan(gone), hi, gone)
    unfit_from, unfit_to = column("unfit_again"), column("unfit_again_end")

    def delayed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        days = _overlap(a, b, lo, hi)
        # (NaN where there was no episode: np.maximum and np.minimum keep it)
        unfit = np.nan_to_num(_overlap(np.maximum(a, unfit_from), np.minimum(b, unfit_to),
                                       lo, hi))
        return (days - unfit) * has_fit

    def attempt(start: np.ndarray, prefix: str, end: np.ndarray,
                service: np.ndarray) -> dict[str, np.ndarray]:
        """Delayed days by cause from ``start`` to ``end``, split at the phase times (columns
        ``prefix`` + phase; a phase not reached ends at ``end``)."""
        t = [start, *(np.fmin(np.where(np.isnan(x), end, x), end)
                      for x in (column(prefix + phase) for phase in PHASES[1:-1])), end]
        phases = {cause: np.zeros(len(fit)) for cause in causes(params)}
        for i, cause in enumerate(CAUSE_OF_PHASE.values()):
            days = delayed(t[i], t[i + 1])
            if cause == SERVICE:
                for name in params.services:
                    phases[name] += np.where(service == name, days, 0.0)
            else:
                phases[cause] += days
        return phases

    escalated = column("escalated")
    phases = attempt(np.where(np.isnan(escalated), np.nan_to_num(fit, nan=hi), escalated),
                     "", stop, patients["service"].to_numpy(str))
    if not np.isnan(escalated).all():  # the old pathway's phases, until the escalation
        before = attempt(np.nan_to_num(fit, nan=hi), "first_",
                         np.where(np.isnan(escalated), np.nan_to_num(fit, nan=hi), escalated),
                         patients["first_service"].to_numpy(str))
        phases = {cause: days + before[cause] for cause, days in phases.items()}
    assert list(phases) == list(causes(params))
    return phases


GREW_PEOPLE, GREW_SHARE = 10, 0.05
"""A queue grew all run when its midnight count rose, along its least-squares line over the
measured window, by at least this many people and this share of everyone who joined it in the
window: more joined than could be served. A queue in balance only wanders about its level: in 16
replications of the default system the largest rise was 1.8% of those who joined (step-down
beds), while jams rise by 15% or more (acute beds with 140 carers or 80 admissions a day,
step-down beds with 60 places)."""


def _discharged_next_day(patients: pd.DataFrame, lo: float, hi: float) -> float:
    """Of the medically fit patients in hospital at the window's midnights, the share
    discharged before the next midnight (NHS Confederation 2022: 42.7% a day). A patient fit at
    ``k`` measured midnights is discharged after the last of them, if discharged in the
    window; patients who died are counted at their midnights but never discharged."""
    fit = patients["fit"].to_numpy(float)
    gone = _bed_left(patients)
    a = np.maximum(fit, lo)
    b = np.minimum(np.where(np.isnan(gone), hi, gone), hi)
    keep = ~np.isnan(fit) & (b > a)
    midnights = np.ceil(b[keep]) - np.ceil(a[keep])
    left = patients["left"].to_numpy(float)[keep]
    discharged = (midnights >= 1) & (left < hi)  # NaN (still in, or died): False
    return float(discharged.sum() / midnights.sum()) if midnights.sum() else np.nan


def _long_stay_delayed_so_far(patients: pd.DataFrame, lo: float, hi: float) -> float:
    """At the window's midnights, over the medically fit patients who have been in hospital 21
    days or more, the mean days since they became fit: the census that "patients in hospital
    over 3 weeks were delayed about 14 days on average" describes. A patient counted at the
    midnights d = a, a + 1, ..., a + n - 1 adds n and n (a - fit) + n (n - 1) / 2."""
    bed, fit = patients["bed"].to_numpy(float), patients["fit"].to_numpy(float)
    gone = _bed_left(patients)
    a = np.ceil(np.maximum(np.maximum(bed + LONG_STAY, fit), lo))
    b = np.minimum(np.where(np.isnan(gone), hi, gone), hi)
    keep = ~np.isnan(fit) & ~np.isnan(bed) & (b > a)
    a, n = a[keep], np.ceil(b[keep]) - a[keep]
    days = n * (a - fit[keep]) + n * (n - 1) / 2
    return float(days.sum() / n.sum()) if n.sum() else np.nan


def _growth(days: np.ndarray, counts: np.ndarray) -> float:
    """The least-squares slope of ``counts`` over ``days`` (people per day); 0 if too short."""
    if days.size < 2:
        return 0.0
    centred = days - days.mean()
    return float((centred * (counts - counts.mean())).sum() / (centred ** 2).sum())


def _grew(growth: float, window: float, joined: int) -> float:
    """1.0 if a queue with this slope grew all run (see :data:`GREW_PEOPLE`), else 0.0."""
    rise = growth * window
    return float(rise >= GREW_PEOPLE and rise >= GREW_SHARE * joined)


Add = Callable[[str, float], None]
"""Records one metric's value by name (its unit comes from the catalogue)."""


def compute_metrics(params: Params, patients: pd.DataFrame, daily: pd.DataFrame,
                    waits: pd.DataFrame, beds: "CapacityPool", assessors: "CapacityPool",
                    services: Mapping[str, "CommunityService"],
                    fit_in_hospital: "TimeWeighted",
                    rosters: Mapping[str, "Roster"] | None = None) -> pd.DataFrame:
    """The run's metrics as a tidy table: ``metric``, ``value``, ``unit`` (every metric is
    declared in :mod:`sim.core.catalogue`, which gives its unit)."""
    declared = catalogue(params)
    rows: list[tuple[str, float, str]] = []

    def add(name: str, value: float) -> None:
        rows.append((name, float(value), declared[name].unit))

    _conservation(add, patients, beds)
    _flow(add, params, patients)
    _delays(add, params, patients)
    _beds_and_census(add, params, patients, daily, beds, fit_in_hospital)
    add("assessors_utilisation", assessors.use.mean(params.run.days) / assessors.capacity
        if assessors.capacity else np.nan)
    for name, service in services.items():
        _service_metrics(add, params, name, service, waits, daily)
        if params.services[name].market.enabled:
            _market_metrics(add, params, name, service, waits)
        if rosters and name in rosters:
            _workforce_metrics(add, params, name, rosters[name])
    _harm_metrics(add, params, patients)
    return pd.DataFrame(rows, columns=["metric", "value", "unit"])


def _conservation(add: Add, patients: pd.DataFrame, beds: "CapacityPool") -> None:
    """Conservation over the whole run: every arrival is diverted, discharged, dead or still
    here, where "still here" is the bed pool's own count (in a bed or queueing for one), not
    the log's complement of the others: an error is a patient lost or counted twice."""
    discharged = _discharged(patients)
    diverted = patients["diverted"].to_numpy(bool)
    died = ~np.isnan(patients["died"].to_numpy(float))
    in_system_end = int(round(beds.in_use)) + len(beds.queue)
    add("arrivals_total", len(patients))
    add("discharged_total", discharged.sum())
    add("diverted_total", diverted.sum())
    add("died_total", died.sum())
    add("in_system_end", in_system_end)
    add("conservation_error", len(patients) - discharged.sum() - diverted.sum() - died.sum()
        - in_system_end)


def _discharged(patients: pd.DataFrame) -> np.ndarray:
    """Patients who left the bed alive, for home or a service (not diverted, not dead)."""
    return ~patients["diverted"].to_numpy(bool) & ~np.isnan(patients["left"].to_numpy(float))


def _flow(add: Add, params: Params, patients: pd.DataFrame) -> None:
    """Arrivals, admissions, discharges and diversions in the measured window, and the waits
    for a bed of the window's arrivals not diverted (those still waiting at the end count,
    their wait censored there)."""
    lo, hi = params.run.warmup_days, params.run.days
    arrival = patients["arrival"].to_numpy(float)
    bed = patients["bed"].to_numpy(float)
    left = patients["left"].to_numpy(float)
    diverted = patients["diverted"].to_numpy(bool)
    in_window = (arrival >= lo) & (arrival < hi)
    add("window_days", hi - lo)
    add("arrivals", in_window.sum())
    add("admitted", ((bed >= lo) & (bed < hi)).sum())
    add("discharged", (_discharged(patients) & (left >= lo)).sum())
    add("diverted", (diverted & in_window).sum())
    waited_until = np.where(np.isnan(bed), hi, bed)
    bed_wait = (waited_until - arrival)[in_window & ~diverted]
    add("bed_wait_share", (bed_wait > 1e-12).mean() if bed_wait.size else 0.0)
    add("bed_wait_mean", bed_wait.mean() if bed_wait.size else 0.0)
    add("diverted_share", (diverted & in_window).sum() / max(in_window.sum(), 1))


def _delays(add: Add, params: Params, patients: pd.DataFrame) -> None:
    """Delayed bed-days in the window by pathway and by cause, and each discharged patient's
    delay: mean and 90th centile by pathway, mean by the weekday of becoming fit, and of long
    stays; the share of discharges by pathway."""
    lo, hi = params.run.warmup_days, params.run.days
    pathway = patients["pathway"].to_numpy(str)
    phases = delay_phases(patients, params)
    total = sum(phases.values())
    add("delayed_days", total.sum())
    add("delayed_days_per_30d", total.sum() / (hi - lo) * PER)
    for k in params.pathways:
        add(f"delayed_days_per_30d.{k}", total[pathway == k].sum() / (hi - lo) * PER)
    for cause, days in phases.items():
        add(f"delayed_days_per_30d.{cause}", days.sum() / (hi - lo) * PER)
    social = sum(phases[cause].sum() for cause in social_care_causes(params))
    add("delayed_days_per_30d.social_care", social / (hi - lo) * PER)
    add("delayed_days_per_30d.nhs", (total.sum() - social) / (hi - lo) * PER)

    left = patients["left"].to_numpy(float)
    out = _discharged(patients) & (left >= lo)
    delay = patients["delay"].to_numpy(float)[out]  # less any days medically unfit again
    delay_pathway = pathway[out]
    for label, mask in [("all", np.ones(delay.size, bool))] + [
            (k, delay_pathway == k) for k in params.pathways]:
        values = delay[mask]
        add(f"delay_mean.{label}", values.mean() if values.size else np.nan)
        add(f"delay_p90.{label}", np.percentile(values, 90) if values.size else np.nan)
    fit_weekday = weekdays(patients["fit"].to_numpy(float)[out])
    for day, label in enumerate(WEEKDAY_NAMES):
        values = delay[fit_weekday == day]
        add(f"delay_mean.fit_{label}", values.mean() if values.size else np.nan)
    for k in params.pathways:
        add(f"discharge_share.{k}", (delay_pathway == k).mean() if delay.size else np.nan)
    long = (left - patients["bed"].to_numpy(float))[out] >= LONG_STAY
    add("delay_mean.long_stay", delay[long].mean() if long.any() else np.nan)


def _beds_and_census(add: Add, params: Params, patients: pd.DataFrame, daily: pd.DataFrame,
                     beds: "CapacityPool", fit_in_hospital: "TimeWeighted") -> None:
    """The acute beds' occupancy, the midnight census (medically fit patients, long stays),
    the queue for beds, and weekend discharges against weekday ones."""
    lo, hi = params.run.warmup_days, params.run.days
    measured = daily[~daily["warmup"]]
    add("acute_occupied_beds", beds.use.mean(hi))
    add("acute_occupancy", beds.use.mean(hi) / beds.capacity)
    add("fit_in_hospital_midnight", measured["fit_in_hospital"].mean())
    add("fit_in_hospital_mean", fit_in_hospital.mean(hi))
    occupied = measured["in_hospital"].sum()
    add("fit_in_hospital_share", measured["fit_in_hospital"].sum() / occupied if occupied else 0.0)
    add("long_stay_share", measured["long_stay"].sum() / occupied if occupied else 0.0)
    add("fit_discharged_next_day_share", _discharged_next_day(patients, lo, hi))
    add("long_stay_delayed_so_far", _long_stay_delayed_so_far(patients, lo, hi))
    bed, left = patients["bed"].to_numpy(float), patients["left"].to_numpy(float)
    diverted = patients["diverted"].to_numpy(bool)
    died = ~np.isnan(patients["died"].to_numpy(float))
    add("bed_queue_end", int((~diverted & np.isnan(bed) & np.isnan(left) & ~died).sum()))
    growth = _growth(measured["day"].to_numpy(float), measured["waiting_for_bed"].to_numpy(float))
    add("bed_queue_growth", growth)
    arrival = patients["arrival"].to_numpy(float)
    add("bed_queue_grew", _grew(growth, hi - lo, ((arrival >= lo) & (arrival < hi)).sum()))
    weekend = measured["weekday"].isin(WEEKEND)
    on_weekdays = measured[~weekend]["discharges"].mean()
    at_weekends = measured[weekend]["discharges"].mean()
    add("weekend_discharge_ratio", at_weekends / on_weekdays if on_weekdays else np.nan)


def _service_metrics(add: Add, params: Params, name: str, service: "CommunityService",
                     waits: pd.DataFrame, daily: pd.DataFrame) -> None:
    """A community service in the window: units in use and utilisation, its queue (mean, at
    the end, and whether it grew all run), requests and grants a day, and the mean wait by
    where the requests came from (a withdrawn request waited until then)."""
    lo, hi = params.run.warmup_days, params.run.days
    requested = waits["requested"].to_numpy(float)
    granted = waits["granted"].to_numpy(float)
    ended = np.where(np.isnan(granted), waits["cancelled"].to_numpy(float), granted)
    wait = np.nan_to_num(ended, nan=hi) - requested
    size = service.size.mean(hi)
    add(f"{name}.in_use", service.use.mean(hi))
    add(f"{name}.utilisation", service.use.mean(hi) / size if size else np.nan)
    add(f"{name}.queue_mean", service.waiting.mean(hi))
    add(f"{name}.queue_end", len(service.queue))
    mine = (waits["service"] == name).to_numpy()
    midnights = daily.loc[~daily["warmup"], "day"].to_numpy(float)
    waiting = _count_at(requested[mine], ended[mine], midnights)
    growth = _growth(midnights, waiting.astype(float))
    joined = int(((requested >= lo) & mine).sum())
    add(f"{name}.queue_growth", growth)
    add(f"{name}.queue_grew", _grew(growth, hi - lo, joined))
    add(f"{name}.requests_per_day", joined / (hi - lo))
    add(f"{name}.granted_per_day", int(((granted >= lo) & (granted < hi) & mine).sum())
        / (hi - lo))
    for source in sources(params, name):
        mask = ((waits["service"] == name) & (waits["source"] == source)).to_numpy() & (
            requested >= lo)
        if mask.any():
            add(f"{name}.wait_mean.{source}", wait[mask].mean())


def _market_metrics(add: Add, params: Params, service: str, market: "Market",
                    waits: pd.DataFrame) -> None:
    """A market's friction in the measured window: rounds of offers per hospital placement,
    clients handed back or moved by a closing provider (per 30 days), the share of providers
    not taking clients, and each segment's utilisation and hospital patients' wait."""
    lo, hi = params.run.warmup_days, params.run.days
    per = PER / (hi - lo)
    mine = (waits["service"] == service).to_numpy()
    requested = waits["requested"].to_numpy(float)
    granted = waits["granted"].to_numpy(float)
    ended = np.where(np.isnan(granted), waits["cancelled"].to_numpy(float), granted)
    wait = np.nan_to_num(ended, nan=hi) - requested
    source = waits["source"].to_numpy(str)
    placed = mine & (source == "hospital") & (granted >= lo) & (granted < hi)
    add(f"{service}.rounds_mean",
        waits["rounds"].to_numpy(float)[placed].mean() if placed.any() else np.nan)
    asked = mine & (requested >= lo) & (requested < hi)
    add(f"{service}.handbacks_per_30d", (asked & (source == "handed_back")).sum() * per)
    add(f"{service}.moves_per_30d", (asked & (source == "moved")).sum() * per)
    add(f"{service}.not_taking_share", market.not_taking.mean(hi) / len(market.providers))
    if params.services[service].staffing.enabled:
        size = market.size.mean(hi)
        add(f"{service}.staffed_share", market.staffed.mean(hi) / size if size else np.nan)
    segment = waits["segment"].to_numpy(str)
    for g, settings in enumerate(params.services[service].market.segments):
        size = market.segment_size[g].mean(hi)
        add(f"{service}.{settings.name}.in_use", market.segment_use[g].mean(hi))
        add(f"{service}.{settings.name}.utilisation",
            market.segment_use[g].mean(hi) / size if size else np.nan)
        hospital = asked & (source == "hospital") & (segment == settings.name)
        add(f"{service}.{settings.name}.wait_mean.hospital",
            wait[hospital].mean() if hospital.any() else np.nan)


def _workforce_metrics(add: Add, params: Params, service: str,
                       roster: "Roster") -> None:
    """A workforce in the measured window: carers in post and off sick (time-averages), the
    share of posts vacant, and carers who joined and left (a year)."""
    lo, hi = params.run.warmup_days, params.run.days
    posts = len(roster.posts)
    in_post = roster.in_post.mean(hi)
    add(f"{service}.staff_in_post", in_post)
    add(f"{service}.vacancy_rate", 1.0 - in_post / posts if posts else np.nan)
    add(f"{service}.staff_off_sick", roster.sick.mean(hi))
    per_year = 365.0 / (hi - lo)
    for name, times in (("joiners", roster.joined), ("leavers", roster.left)):
        t = np.asarray(times, dtype=float)
        add(f"{service}.{name}_per_year", ((t >= lo) & (t < hi)).sum() * per_year)


def _harm_metrics(add: Add, params: Params,
                  patients: pd.DataFrame) -> None:
    """The harm of waiting (:class:`sim.core.params.Harm`) in the measured window, counts and
    bed-days per 30 days; all 0 (shares NaN) when its mechanisms are off.

    - escalations: patients whose need escalated in the window; ``escalated_to.{service}``
      those whose new pathway needs that service (the community demand escalation adds);
      ``escalation_days``: bed-days in the window from an escalation until the patient left the
      bed (or died, or the run ended): the time spent on the escalated pathway.
    - returns_to_unfit: patients who became medically unfit again in the window;
      ``unfit_again_days``: bed-days in the window spent unfit again (not delayed days);
      ``returns_to_unfit_share``: of the patients who became medically fit in the window, the
      share who became unfit again (Jasinarachchi et al. 2009: 7 of 58 delayed patients).
    - deaths_in_hospital: deaths in an acute bed in the window; deaths_during_delay those after
      becoming medically fit; ``deaths_during_delay_share`` the second as a share of the first
      (Jasinarachchi et al. 2009: 5 of 18).
    - readmissions: readmissions arriving in the window; ``readmission_days`` the bed-days in
      the window of readmitted patients' stays; ``readmission_share``: of the patients
      discharged from the window's start until ``within_days`` before its end (so that every
      readmission is seen), the share readmitted.

    The net effect of the harm on every other metric (delays, occupancy, waits) is the paired
    difference between a scenario with the harm on and the same one with it off.
    """
    window = _Window(params, patients)
    _escalations(add, params, window)
    _unfit_again(add, window)
    _deaths(add, window)
    _readmissions(add, params, window)


class _Window:
    """The measured window's bounds and a patient log's columns, for the harm's metrics."""

    def __init__(self, params: Params, patients: pd.DataFrame) -> None:
        self.lo, self.hi = params.run.warmup_days, params.run.days
        self.per = PER / (self.hi - self.lo)
        self.patients = patients
        gone = _bed_left(patients)
        self.stop = np.where(np.isnan(gone), self.hi, gone)

    def column(self, name: str) -> np.ndarray:
        return self.patients[name].to_numpy(float)

    def inside(self, t: np.ndarray) -> np.ndarray:
        return (t >= self.lo) & (t < self.hi)  # (NaN: False)


def _escalations(add: Add, params: Params, w: _Window) -> None:
    escalated = w.column("escalated")
    service = w.patients["service"].to_numpy(str)
    escalations = w.inside(escalated)
    add("harm.escalations", escalations.sum() * w.per)
    for name in params.services:
        add(f"harm.escalated_to.{name}", (escalations & (service == name)).sum() * w.per)
    add("harm.escalation_days", np.nansum(_overlap(escalated, w.stop, w.lo, w.hi)) * w.per)


def _unfit_again(add: Add, w: _Window) -> None:
    unfit = w.column("unfit_again")
    fit_inside = w.inside(w.column("fit"))
    add("harm.returns_to_unfit", w.inside(unfit).sum() * w.per)
    add("harm.returns_to_unfit_share", (fit_inside & ~np.isnan(unfit)).sum() / fit_inside.sum()
        if fit_inside.any() else np.nan)
    add("harm.unfit_again_days",
        np.nansum(_overlap(unfit, w.column("unfit_again_end"), w.lo, w.hi)) * w.per)


def _deaths(add: Add, w: _Window) -> None:
    dead = w.inside(w.column("died"))
    during_delay = dead & ~np.isnan(w.column("fit"))
    add("harm.deaths_in_hospital", dead.sum() * w.per)
    add("harm.deaths_during_delay", during_delay.sum() * w.per)
    add("harm.deaths_during_delay_share",
        during_delay.sum() / dead.sum() if dead.any() else np.nan)


def _readmissions(add: Add, params: Params, w: _Window) -> None:
    of = w.patients["readmission_of"].to_numpy(int)
    readmitted = of >= 0
    add("harm.readmissions", (readmitted & w.inside(w.column("arrival"))).sum() * w.per)
    add("harm.readmission_days",
        np.nansum(_overlap(w.column("bed"), w.stop, w.lo, w.hi)[readmitted]) * w.per)
    left = w.column("left")
    seen = ~w.patients["diverted"].to_numpy(bool) & (left >= w.lo) & (
        left < w.hi - params.harm.readmission.within_days)
    came_back = np.isin(w.patients["id"].to_numpy(int), of[readmitted])
    add("harm.readmission_share", (seen & came_back).sum() / seen.sum() if seen.any() else np.nan)
