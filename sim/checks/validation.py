"""Validation: the real model configured down to cases whose answer is known.

* M/M/c: Poisson admissions, exponential stays, c beds, everyone on pathway 0 with no rules and
  no transfer time. Mean wait for a bed, probability of waiting and mean occupied beds must match
  Erlang C.
* M/M/c/c: the same with diversion when no bed is free; the diverted share must match Erlang B.
* Little's law (L = lambda W) in the full default model: for the acute beds, for the medically
  fit patients still in hospital, and for each community service.
* A peer simulator: an acute stage feeding a care-home stage with no waiting room, where a
  patient who cannot move on keeps the acute bed (blocking after service), compared with ciw.

A case passes when the analytic or peer value lies inside the simulation's confidence interval
over replications. Where the reference is itself estimated (lambda W, or the peer's mean), the
interval is that of the difference - paired within a run for Little's law, Welch's for the
independent peer - placed around the simulated mean. The cases are judged together, so each
interval is at the Bonferroni level 1 - 0.01 / (number of cases): with 19 cases at 99% each, a
correct model would fail at least one about one time in six; this way, at most one in a hundred.
Each case also reports the interval's half-width, so a pass from a uselessly wide interval is
visible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from sim.core.model import simulate
from sim.core.params import Distribution, Params, override
from sim.running.stats import t_quantile

LEVEL = 0.99
"""The confidence that every case of a report holds at once (family-wise, by Bonferroni)."""


# ----------------------------------------------------------------------------- queueing formulas
def erlang_b(servers: int, load: float) -> float:
    """Probability that all ``servers`` are busy in M/M/c/c with offered ``load`` (lambda/mu)."""
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(servers: int, load: float) -> float:
    """Probability of waiting in M/M/c (needs load < servers)."""
    b = erlang_b(servers, load)
    rho = load / servers
    return b / (1.0 - rho * (1.0 - b))


def mmc_mean_wait(arrival_rate: float, mean_stay: float, servers: int) -> float:
    """Mean wait in queue of M/M/c: C / (c mu - lambda)."""
    load = arrival_rate * mean_stay
    return erlang_c(servers, load) / (servers / mean_stay - arrival_rate)


# ----------------------------------------------------------------------------- model reductions
_FLAT_DAY = [1.0] * 7
_FLAT_HOUR = [1.0] * 24
_NO_COMMUNITY = {
    f"services.{name}.{setting}": 0.0
    for name in ("homecare", "step_down", "care_home")
    for setting in ("community_referrals_per_day", "initial_utilisation")
}


PLAIN = {
    **{f"services.{name}.market.enabled": False for name in ("homecare", "step_down", "care_home")},
    "services.homecare.staff.workforce.enabled": False,
    "services.care_home.staffing.enabled": False,
    **{f"pathways.{k}.{step}": Distribution("fixed", 0.0)
       for k in ("p0", "p1", "p2", "p3") for step in ("summary", "choice")},
    **{f"pathways.{k}.{share}": 0.0
       for k in ("p0", "p1", "p2", "p3") for share in ("funded_share", "equipment_share")},
}
"""The mechanisms of why patients wait switched off: one first-come-first-served pool per
service that takes everyone it has room for, and no steps in hospital besides those set."""


def queue_params(arrival_rate: float, mean_stay: float, beds: int, days: float,
                 warmup_days: float, divert: bool = False, seed: int = 1) -> Params:
    """The model as M/M/c (or M/M/c/c with ``divert``): pathway 0 only, no rules, no steps,
    and the community services plain pools."""
    return override(Params(), {
        **PLAIN,
        "run.days": days, "run.warmup_days": warmup_days, "run.seed": seed,
        "admissions.per_day": arrival_rate, "admissions.day_of_week": _FLAT_DAY,
        "admissions.hour_of_day": _FLAT_HOUR,
        "acute.beds": beds, "acute.max_wait_for_bed": 0.0 if divert else None,
        "pathways.p0.share": 1.0, "pathways.p1.share": 0.0, "pathways.p2.share": 0.0,
        "pathways.p3.share": 0.0,
        "pathways.p0.acute_stay": Distribution("exponential", mean_stay),
        "pathways.p0.transfer": Distribution("fixed", 0.0),
        "pathways.p0.rule.enabled": False,
        **_NO_COMMUNITY,
    })


def tandem_params(arrival_rate: float, acute_mean_stay: float, acute_beds: int,
                  care_home_mean_stay: float, care_home_places: int, days: float,
                  warmup_days: float, seed: int = 1) -> Params:
    """The model as the tandem network of :mod:`sim.checks.peers`: everyone on pathway 3, assessed
    instantly, no rules or transfer time, care homes used by hospital patients only, as one
    first-come-first-served pool that takes everyone it has room for (ciw's node)."""
    return override(queue_params(arrival_rate, acute_mean_stay, acute_beds, days, warmup_days,
                                 seed=seed), {
        "pathways.p0.share": 0.0, "pathways.p3.share": 1.0,
        "pathways.p3.acute_stay": Distribution("exponential", acute_mean_stay),
        "pathways.p3.transfer": Distribution("fixed", 0.0),
        "pathways.p3.rule.enabled": False,
        "assessment.staff": 1, "assessment.duration": Distribution("fixed", 0.0),
        "assessment.hours.enabled": False,
        "services.care_home.capacity": care_home_places,
        "services.care_home.stay": Distribution("exponential", care_home_mean_stay),
    })


def tandem_measures(patients: pd.DataFrame, days: float, warmup_days: float) -> dict[str, float]:
    """The peers' measures from the model's patient log, with the peers' selection: patients who
    arrived after warm-up and left the acute bed before the end; throughput of all leavers."""
    left = patients["left"]
    counted = patients[(patients["arrival"] >= warmup_days) & left.notna()]
    leavers = ((left >= warmup_days) & (left < days)).sum()
    return {"mean_bed_wait": float((counted["bed"] - counted["arrival"]).mean()),
            "mean_blocked": float((counted["left"] - counted["fit"]).mean()),
            "throughput_per_day": float(leavers / (days - warmup_days))}


def littles_law(params: Params, replication: int) -> dict[str, tuple[float, float]]:
    """(L, lambda W) for each place in one run of the full model.

    L is the place's own time-weighted average over the measured window [warm-up, end]. lambda W
    comes from the logs: the entries in the window per day, times their mean time inside. That
    time is each entry's whole stay, not the part inside the window: the run goes on past the
    window (``DRAIN_DAYS``) so that acute stays are seen to the end (the few still in hospital
    then count until then: a lower bound), and community services log each stay when it starts.
    Little's law says the two have the same expectation in steady state; the window is a whole
    number of weeks so that the weekly cycle does not bias it.
    """
    from sim.core.model import Model, patient_table, request_table
    lo, hi = params.run.warmup_days, params.run.days
    model = Model(override(params, {"run.days": hi + DRAIN_DAYS}), replication)
    model.run(until=hi)
    places = {"acute beds": model.beds.use, "medically fit in hospital": model.fit_in_hospital,
              **{f"{name} (in use)": pool.use for name, pool in model.pools.items()}}
    time_average = {name: level.mean(hi) for name, level in places.items()}
    model.env.run(until=hi + DRAIN_DAYS)
    window = hi - lo
    p = patient_table(model.patients)
    out: dict[str, tuple[float, float]] = {}

    left = p["left"].fillna(hi + DRAIN_DAYS)
    admitted = (p["bed"] >= lo) & (p["bed"] < hi)
    out["acute beds"] = (time_average["acute beds"],
                         admitted.sum() / window * (left - p["bed"])[admitted].mean())
    fit = (p["fit"] >= lo) & (p["fit"] < hi)
    out["medically fit in hospital"] = (time_average["medically fit in hospital"],
                                       fit.sum() / window * (left - p["fit"])[fit].mean())
    w = request_table(model.requests)
    for service in model.pools:
        entered = w[(w["service"] == service) & (w["granted"] >= lo) & (w["granted"] < hi)]
        stay = (entered["released"] - entered["granted"]).fillna(entered["stay"])
        out[f"{service} (in use)"] = (time_average[f"{service} (in use)"],
                                      len(entered) / window * (stay * entered["amount"]).mean())
    return out


DRAIN_DAYS = 400.0
"""Days simulated after the window so that stays that began inside it are seen to their end
(the fitted pathway-1 acute stays have a long tail: about 1 in 1,000 lasts over 260 days)."""


# ----------------------------------------------------------------------------- the cases
@dataclass(frozen=True)
class Case:
    """One validation comparison: the simulated mean with the standard error and degrees of
    freedom of its t-interval, so that the report can choose the level."""

    case: str
    quantity: str
    reference: float
    reference_kind: str  # "analytic (Erlang B/C)", "lambda x W", "peer (ciw)"
    simulated: float
    std_error: float
    df: float
    replications: int

    def half_width(self, level: float) -> float:
        return t_quantile(self.df, 0.5 + level / 2.0) * self.std_error


def _case(case: str, quantity: str, reference: float, kind: str, simulated: float,
          spread: Sequence[float] | np.ndarray) -> Case:
    """A case whose interval is the one-sample t-interval of ``spread`` (the per-replication
    values, or paired differences), placed around ``simulated``."""
    x = np.asarray(spread, dtype=float)
    return Case(case, quantity, float(reference), kind, float(simulated),
                float(x.std(ddof=1) / math.sqrt(x.size)), x.size - 1.0, x.size)


def queue_cases(replications: int = 20, seed: int = 1,
                workers: Callable | None = None) -> list[Case]:
    """Erlang C (M/M/c) at utilisation 0.5 and 0.9, and Erlang B (M/M/c/c) at two loads."""
    mapper = workers or map
    cases: list[Case] = []
    for label, rate, stay, beds, days in [("M/M/c, utilisation 0.5", 1.0, 5.0, 10, 16000.0),
                                          ("M/M/c, utilisation 0.9", 1.8, 5.0, 10, 16000.0)]:
        params = queue_params(rate, stay, beds, days, 200.0, seed=seed)
        runs = list(mapper(simulate, [params] * replications, range(replications)))
        load = rate * stay
        for quantity, metric, reference in [
                ("mean wait for a bed (days)", "bed_wait_mean", mmc_mean_wait(rate, stay, beds)),
                ("probability of waiting", "bed_wait_share", erlang_c(beds, load)),
                ("mean occupied beds", "acute_occupied_beds", load)]:
            x = [r.value(metric) for r in runs]
            cases.append(_case(label, quantity, reference, "analytic (Erlang C)", np.mean(x), x))
    for label, rate, stay, beds in [("M/M/c/c, load 5 on 8 beds", 1.0, 5.0, 8),
                                    ("M/M/c/c, load 8.36 on 10 beds (Monks et al. 2016)",
                                     8.36 / 5.0, 5.0, 10)]:
        params = queue_params(rate, stay, beds, 4000.0, 200.0, divert=True, seed=seed)
        runs = list(mapper(simulate, [params] * replications, range(replications)))
        x = [r.value("diverted_share") for r in runs]
        cases.append(_case(label, "share of admissions diverted", erlang_b(beds, rate * stay),
                           "analytic (Erlang B)", np.mean(x), x))
    return cases


def little_cases(params: Params | None = None, replications: int = 10,
                 workers: Callable | None = None) -> list[Case]:
    """Little's law in the full default model, for every place that holds patients."""
    params = params or Params()
    mapper = workers or map
    runs = list(mapper(littles_law, [params] * replications, range(replications)))
    cases = []
    for place in runs[0]:
        ls = np.array([r[place][0] for r in runs])
        lws = np.array([r[place][1] for r in runs])
        # Both sides are estimates from the same run: the interval is that of the paired
        # difference L - lambda W, placed around the mean of L.
        cases.append(_case(f"Little's law, default model: {place}", "L, time-average number",
                           lws.mean(), "lambda x W", ls.mean(), ls - lws))
    return cases


PEER_LOADS = [  # (label, arrival rate, acute mean stay, acute beds, care-home mean stay, places,
    #  days): the heavier load runs longer because its acute queue inherits the care homes'
    #  congestion and its mean wait converges slowly.
    ("tandem, light blocking (care homes 77% full)", 1.0, 5.0, 8, 20.0, 26, 16000.0),
    ("tandem, heavy blocking (care homes 87% full)", 1.0, 5.0, 9, 20.0, 23, 40000.0),
]


def _peer_run(args: tuple) -> dict[str, float]:
    from sim.checks.peers import ciw_tandem
    rate, stay, beds, home_stay, places, days, warmup, seed = args
    r = ciw_tandem(rate, stay, beds, home_stay, places, days, warmup, seed)
    return {"mean_bed_wait": r.mean_bed_wait, "mean_blocked": r.mean_blocked,
            "throughput_per_day": r.throughput_per_day}


def _model_tandem(args: tuple) -> dict[str, float]:
    rate, stay, beds, home_stay, places, days, warmup, replication = args
    params = tandem_params(rate, stay, beds, home_stay, places, days, warmup)
    return tandem_measures(simulate(params, replication).patients, days, warmup)


def peer_cases(replications: int = 60, warmup_days: float = 500.0,
               workers: Callable | None = None) -> list[Case]:
    """The model against ciw on the tandem network with blocking after service."""
    mapper = workers or map
    cases = []
    for label, rate, stay, beds, home_stay, places, days in PEER_LOADS:
        args = [(rate, stay, beds, home_stay, places, days, warmup_days, k)
                for k in range(replications)]
        ours = list(mapper(_model_tandem, args))
        peer = list(mapper(_peer_run, [a[:-1] + (1000 + a[-1],) for a in args]))
        for quantity, key in [("mean blocked days per patient", "mean_blocked"),
                              ("mean wait for an acute bed (days)", "mean_bed_wait"),
                              ("throughput (patients per day)", "throughput_per_day")]:
            a = np.array([o[key] for o in ours])
            b = np.array([p[key] for p in peer])
            # Two independent samples: the interval of the difference of the means (Welch),
            # placed around our mean, so the peer's mean must lie inside it.
            se2 = a.var(ddof=1) / a.size + b.var(ddof=1) / b.size
            df = se2 ** 2 / ((a.var(ddof=1) / a.size) ** 2 / (a.size - 1)
                             + (b.var(ddof=1) / b.size) ** 2 / (b.size - 1))
            cases.append(Case(label, quantity, float(b.mean()), "peer (ciw)", float(a.mean()),
                              math.sqrt(se2), float(df), a.size))
    return cases


def report_table(cases: Sequence[Case], level: float = LEVEL) -> pd.DataFrame:
    """The report: one row per case, each interval at the Bonferroni level that makes ``level``
    the confidence that all of them hold together."""
    case_level = 1.0 - (1.0 - level) / len(cases)
    rows = []
    for c in cases:
        half = c.half_width(case_level)
        rows.append({"case": c.case, "quantity": c.quantity, "reference_kind": c.reference_kind,
                     "reference": c.reference, "simulated_mean": c.simulated,
                     "ci_low": c.simulated - half, "ci_high": c.simulated + half,
                     "half_width": half, "ci_level": case_level,
                     "replications": c.replications,
                     "pass": c.simulated - half <= c.reference <= c.simulated + half})
    return pd.DataFrame(rows)


def run_all(replications: int = 20, workers: Callable | None = None) -> pd.DataFrame:
    """Every validation case, as the report table."""
    cases = queue_cases(replications, workers=workers)
    cases += peer_cases(3 * replications, workers=workers)
    cases += little_cases(LITTLE_PARAMS, replications=replications, workers=workers)
    return report_table(cases)


LITTLE_PARAMS = override(Params(), {"run.warmup_days": 52 * 7.0,
                                    "run.days": (52 + 3 * 52) * 7.0})
"""The default system, measured over 156 weeks after a warm-up of 52: care-home stays average
801 days, so a one-year window is too short for the care homes' L and lambda W to settle; and the
longest acute stays (hundreds of days) are not yet in the beds after the default 112-day
warm-up, which biases L (by about a bed of 488) but not lambda W."""
