"""The metric catalogue: every metric's code name, unit, plain-English label, group and how it
is summarised across replications, declared once.

Metrics per pathway, per community service, per cause of delay or per weekday are declared as
families (``delayed_days_per_30d.{pathway}``) and expanded for a system's own pathways and
services by :func:`catalogue`, so a service added in config gets its metrics, units and labels
with no other change. The model computes only metrics declared here (an undeclared name is a
bug, caught at once); the summary, tables, charts and calibration read units and labels from
here; ``metrics.csv`` keeps the code names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from sim.core.params import SOCIAL_CARE, Params, Service

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SOURCES = {"hospital": "hospital patients", "community": "community referrals"}
"""Who asks for a community service, besides clients moving on from another service."""

PER = 30.0
"""Delayed days are reported per this many days, as well as in total."""


@dataclass(frozen=True)
class Metric:
    """One metric: ``name`` as in metrics.csv, ``unit``, ``label`` for people, ``group`` (a
    heading of the summary), ``summary`` (``mean``: mean and 95% CI over replications;
    ``total``: a count added over replications), ``percent`` (a fraction, at most 1, shown as
    a per cent) and ``lower`` (the smallest value it can take, e.g. 0, for an interval that
    respects it; None if unbounded)."""

    name: str
    unit: str
    label: str
    group: str
    summary: str = "mean"
    percent: bool = False
    lower: float | None = 0.0

    @property
    def upper(self) -> float | None:
        """The largest value it can take: 1 for a fraction shown as a per cent, else none."""
        return 1.0 if self.percent else None


DELAYS, FLOW, BEDS, TEAM, SERVICES, CHECKS = (
    "delays", "flow", "acute beds", "discharge team", "community services", "conservation")
COSTS = "costs"
"""What a run costs in pounds (sim.core.costs: worked out from the metrics and the prices)."""

POUNDS_30 = "£ per 30 days"
HARM = "harm"
MARKET, WORKFORCE = "care market", "care workforce"
"""Why community services keep patients waiting (sim.core.market, sim.core.workforce)."""
"""The harm of waiting (sim.core.params.Harm; defined in sim.core.metrics._harm_metrics)."""

_PER_30 = "bed-days per 30 days"
_DAYS = "days per discharged patient"

_FIXED: tuple[Metric, ...] = (
    Metric("arrivals_total", "patients", "patients who arrived (whole run)", CHECKS, "total"),
    Metric("discharged_total", "patients", "patients discharged (whole run)", CHECKS, "total"),
    Metric("diverted_total", "patients", "patients diverted (whole run)", CHECKS, "total"),
    Metric("died_total", "patients", "patients who died in hospital (whole run)", CHECKS, "total"),
    Metric("in_system_end", "patients", "patients in a bed or waiting for one at the end", CHECKS,
           "total"),
    Metric("conservation_error", "patients",
           "arrivals not accounted for as discharged, diverted, dead or still in", CHECKS, "total",
           lower=None),
    Metric("window_days", "days", "days measured", FLOW),
    Metric("arrivals", "patients", "arrivals", FLOW),
    Metric("admitted", "patients", "admissions to an acute bed", FLOW),
    Metric("discharged", "patients", "discharges", FLOW),
    Metric("diverted", "patients", "patients diverted for want of a bed", FLOW),
    Metric("bed_wait_share", "fraction of admissions", "admissions that waited for a bed", BEDS,
           percent=True),
    Metric("bed_wait_mean", "days", "mean wait for an acute bed", BEDS),
    Metric("diverted_share", "fraction of arrivals", "arrivals diverted", BEDS, percent=True),
    Metric("bed_queue_end", "people waiting", "people waiting for an acute bed at the end", BEDS),
    Metric("bed_queue_growth", "people per day",
           "growth of the queue for acute beds (slope of its midnight count)", BEDS, lower=None),
    Metric("bed_queue_grew", "fraction of replications",
           "replications whose queue for acute beds grew all run", BEDS, percent=True),
    Metric("delayed_days", "bed-days", "delayed-discharge bed-days", DELAYS),
    Metric("delayed_days_per_30d", _PER_30, "delayed-discharge bed-days per 30 days", DELAYS),
    Metric("delay_mean.all", _DAYS, "mean delay, all discharges", DELAYS),
    Metric("delay_p90.all", _DAYS, "90th percentile delay, all discharges", DELAYS),
    Metric("acute_occupied_beds", "beds", "acute beds occupied (time-average)", BEDS),
    Metric("acute_occupancy", "fraction of beds", "acute bed occupancy", BEDS, percent=True),
    Metric("fit_in_hospital_midnight", "patients",
           "medically fit patients in hospital at midnight", BEDS),
    Metric("fit_in_hospital_mean", "patients (time-average)",
           "medically fit patients in hospital (time-average)", BEDS),
    Metric("fit_in_hospital_share", "fraction of occupied beds",
           "occupied beds held by medically fit patients", BEDS, percent=True),
    Metric("long_stay_share", "fraction of occupied beds",
           "occupied beds held by patients in hospital 21 days or more", BEDS, percent=True),
    Metric("fit_discharged_next_day_share", "fraction of fit patients at midnight",
           "medically fit patients at midnight discharged by the next midnight", BEDS,
           percent=True),
    Metric("long_stay_delayed_so_far", "days (midnight census)",
           "days delayed so far, medically fit patients in hospital 21 days or more", DELAYS),
    Metric("delay_mean.long_stay", _DAYS,
           "mean delay of patients discharged after 21 days or more in hospital", DELAYS),
    Metric("weekend_discharge_ratio", "weekend-day / weekday discharges",
           "discharges on a weekend day relative to a weekday", BEDS),
    Metric("assessors_utilisation",
           "fraction of staff, all hours (an assessment paused overnight counts)",
           "discharge-team utilisation", TEAM, percent=True),
)


_PATIENTS_30 = "patients per 30 days"

_HARM: tuple[Metric, ...] = (
    Metric("harm.escalations", _PATIENTS_30, "escalations of need while delayed", HARM),
    Metric("harm.escalation_days", _PER_30,
           "bed-days after an escalation of need (on the escalated pathway)", HARM),
    Metric("harm.returns_to_unfit", _PATIENTS_30, "returns to medically unfit while delayed",
           HARM),
    Metric("harm.returns_to_unfit_share", "fraction of patients medically fit",
           "patients medically fit who became unfit again", HARM, percent=True),
    Metric("harm.unfit_again_days", _PER_30,
           "bed-days medically unfit again (unwell again; not delayed days)", HARM),
    Metric("harm.deaths_in_hospital", _PATIENTS_30, "deaths in hospital", HARM),
    Metric("harm.deaths_during_delay", _PATIENTS_30,
           "deaths in hospital after becoming medically fit", HARM),
    Metric("harm.deaths_during_delay_share", "fraction of deaths in hospital",
           "deaths in hospital that happened during a delay", HARM, percent=True),
    Metric("harm.readmissions", _PATIENTS_30, "readmissions within 30 days of a discharge",
           HARM),
    Metric("harm.readmission_share", "fraction of discharges",
           "discharges followed by a readmission", HARM, percent=True),
    Metric("harm.readmission_days", _PER_30, "bed-days of readmitted patients", HARM),
)


def causes(params: Params) -> dict[str, str]:
    """The causes a delayed day is attributed to, in the order they happen, with labels (the
    wait for each community service is a cause of its own)."""
    waits = {name: f"waiting for {name.replace('_', ' ')}" for name in params.services}
    return {"assessment": "waiting for the discharge team's assessment",
            "funding": "waiting for a council funding decision",
            "choice": "patient and family choosing", **waits,
            "equipment": "waiting for equipment or home adaptations",
            "summary": "waiting for the medical decision and discharge summary",
            "transfer": "transfer (transport and hand-over)",
            "rule": "weekend / hours rule of the receiving service"}


def social_care_causes(params: Params) -> list[str]:
    """The causes of delay attributed to social care, as England's delayed-transfer data did:
    the council's funding decision, the family's choice, and the wait for each service the
    council arranges (``funded_by: social_care``); every other cause is the NHS's."""
    return ["funding", "choice"] + [name for name, s in params.services.items()
                                    if s.funded_by == SOCIAL_CARE]


def pathway_label(key: str) -> str:
    """``p1`` -> ``pathway 1``; any other key as it is."""
    return f"pathway {key[1:]}" if key[:1] == "p" and key[1:].isdigit() else key


MARKET_SOURCES = {"handed_back": "clients handed back by a provider",
                  "moved": "clients moved out of a provider that closed"}
"""Who else asks for a service with a market: clients it placed before, placed again."""


def sources(params: Params, service: str) -> dict[str, str]:
    """Who asks for ``service``: hospital patients, community referrals, clients of any
    service whose ``then`` leads to it, and, in a market, clients placed again."""
    onward = {name: f"clients moving on from {name.replace('_', ' ')}"
              for name, s in params.services.items() if service in s.then}
    again = MARKET_SOURCES if params.services[service].market.enabled else {}
    return {**SOURCES, **onward, **again}


def _families(params: Params) -> Iterator[Metric]:
    for key in params.pathways:
        who = pathway_label(key)
        yield Metric(f"delayed_days_per_30d.{key}", _PER_30, f"delayed bed-days per 30 days, {who}",
                     DELAYS)
        yield Metric(f"delay_mean.{key}", _DAYS, f"mean delay, {who}", DELAYS)
        yield Metric(f"delay_p90.{key}", _DAYS, f"90th percentile delay, {who}", DELAYS)
        yield Metric(f"discharge_share.{key}", "fraction of discharges",
                     f"discharges on {who}", FLOW, percent=True)
    for cause, label in causes(params).items():
        yield Metric(f"delayed_days_per_30d.{cause}", _PER_30,
                     f"delayed bed-days per 30 days, {label}", DELAYS)
    yield Metric("delayed_days_per_30d.social_care", _PER_30,
                 "delayed bed-days per 30 days attributed to social care (waiting for "
                 + ", ".join(social_care_causes(params)).replace("_", " ") + ")", DELAYS)
    yield Metric("delayed_days_per_30d.nhs", _PER_30,
                 "delayed bed-days per 30 days attributed to the NHS (every other cause)",
                 DELAYS)
    for day in WEEKDAY_NAMES:
        yield Metric(f"delay_mean.fit_{day}", _DAYS, f"mean delay, medically fit on a {day}",
                     DELAYS)
    for name, service in params.services.items():
        what = name.replace("_", " ")
        yield Metric(f"{name}.in_use", service.unit, f"{what} in use (time-average)", SERVICES)
        yield Metric(f"{name}.utilisation", "fraction of capacity", f"{what} utilisation",
                     SERVICES, percent=True)
        yield Metric(f"{name}.queue_mean", "people waiting", f"people waiting for {what}",
                     SERVICES)
        yield Metric(f"{name}.queue_end", "people waiting",
                     f"people waiting for {what} at the end", SERVICES)
        yield Metric(f"{name}.queue_growth", "people per day",
                     f"growth of the queue for {what} (slope of its midnight count)", SERVICES,
                     lower=None)
        yield Metric(f"{name}.queue_grew", "fraction of replications",
                     f"replications whose queue for {what} grew all run", SERVICES, percent=True)
        yield Metric(f"{name}.requests_per_day", "requests per day",
                     f"requests for {what} (all sources)", SERVICES)
        yield Metric(f"{name}.granted_per_day", "requests per day",
                     f"requests for {what} granted", SERVICES)
        for source, label in sources(params, name).items():
            yield Metric(f"{name}.wait_mean.{source}", "days (censored at run end)",
                         f"mean wait for {what}, {label}", SERVICES)
        yield Metric(f"harm.escalated_to.{name}", _PATIENTS_30,
                     f"escalations of need to a pathway needing {what}", HARM)
        if service.market.enabled:
            yield from _market_family(name, service)
        if (service.staff is not None and service.staff.workforce.enabled) or (
                service.staffing.enabled and service.staffing.workforce.enabled):
            yield from _workforce_family(name)


def _market_family(name: str, service: Service) -> Iterator[Metric]:
    what = name.replace("_", " ")
    yield Metric(f"{name}.rounds_mean", "rounds per placement",
                 f"rounds of offers to {what} providers until a hospital patient is placed "
                 "(rounds when none had room count too)",
                 MARKET)
    yield Metric(f"{name}.handbacks_per_30d", _PATIENTS_30,
                 f"clients handed back by {what} providers", MARKET)
    yield Metric(f"{name}.moves_per_30d", _PATIENTS_30,
                 f"clients moved out of {what} providers that closed", MARKET)
    yield Metric(f"{name}.not_taking_share", "fraction of providers",
                 f"{what} providers not taking new clients (suspended or closed)", MARKET,
                 percent=True)
    if service.staffing.enabled:
        yield Metric(f"{name}.staffed_share", "fraction of capacity",
                     f"{what} places the providers' staff at work can look after", MARKET,
                     percent=True)
    for segment in service.market.segments:
        part = f"{what}, {segment.name.replace('_', ' ')}"
        yield Metric(f"{name}.{segment.name}.in_use", service.unit,
                     f"{part}: in use (time-average)", MARKET)
        yield Metric(f"{name}.{segment.name}.utilisation", "fraction of capacity",
                     f"{part}: utilisation", MARKET, percent=True)
        yield Metric(f"{name}.{segment.name}.wait_mean.hospital", "days (censored at run end)",
                     f"{part}: mean wait of hospital patients", MARKET)


def _workforce_family(name: str) -> Iterator[Metric]:
    what = name.replace("_", " ")
    yield Metric(f"{name}.staff_in_post", "carers (time-average)", f"{what} staff in post",
                 WORKFORCE)
    yield Metric(f"{name}.vacancy_rate", "fraction of posts", f"{what} posts vacant", WORKFORCE,
                 percent=True)
    yield Metric(f"{name}.staff_off_sick", "carers (time-average)", f"{what} staff off sick",
                 WORKFORCE)
    yield Metric(f"{name}.joiners_per_year", "carers a year", f"{what} staff who joined",
                 WORKFORCE)
    yield Metric(f"{name}.leavers_per_year", "carers a year", f"{what} staff who left",
                 WORKFORCE)


def _cost_family(params: Params) -> Iterator[Metric]:
    for name in params.services:
        what = name.replace("_", " ")
        yield Metric(f"cost.{name}.used", POUNDS_30, f"cost of {what} used (as spot purchases)",
                     COSTS)
        yield Metric(f"cost.{name}.provided", POUNDS_30,
                     f"cost of {what} provided (its capacity, as block contracts)", COSTS)
    yield Metric("cost.delayed_bed_days", POUNDS_30, "cost of delayed bed-days", COSTS)
    yield Metric("cost.discharge_team", POUNDS_30, "cost of the discharge team", COSTS)
    yield Metric("cost.programmes", POUNDS_30,
                 "cost of programmes switched on (seven-day working)", COSTS)
    yield Metric("cost.total", POUNDS_30,
                 "total cost: delayed bed-days, capacity provided, the discharge team and "
                 "programmes", COSTS)


def catalogue(params: Params) -> dict[str, Metric]:
    """Every metric of a system with these pathways and services, by code name."""
    return {m.name: m for m in (*_FIXED, *_families(params), *_HARM, *_cost_family(params))}


def describe(name: str, params: Params | None = None) -> Metric:
    """The catalogue entry of ``name`` (for the default system if no params are given); a name
    that is not declared gets itself as its label, so that a table never loses a row."""
    entry = catalogue(params or Params()).get(name)
    return entry if entry is not None else Metric(name, "", name, "other", lower=None)

