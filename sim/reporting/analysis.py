"""Analyses of replication results: each takes tidy tables and returns a table. No drawing
(that is :mod:`sim.reporting.charts`) and no files (that is the experiment layer).

Scenario differences are paired: replication k of every scenario runs on the same random
numbers, so the difference is taken replication by replication and its 95% confidence interval
is far narrower than that of two independent means.

Levels (a scenario's mean) have the interval the run summary gives: cut at the bounds the
metric catalogue declares (no negative count of deaths, no share above 100%), with
``ci_at_bound`` saying where it was cut, and totals where it declares them
(:func:`sim.running.stats.summarise_metrics`). A difference from the baseline has no bound
(it can be negative) and is never cut. Each analysis takes the catalogue of the swept system
(``entries``); by default that of the default system, in which a metric of a service it does
not have is an unbounded mean.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from sim.core.catalogue import WEEKDAY_NAMES, Metric, catalogue
from sim.core.params import Params
from sim.running.stats import estimate, summarise_metrics

KEY_METRICS = ("delayed_days_per_30d", "delay_mean.all", "delay_mean.p1", "delay_mean.p3",
               "fit_in_hospital_midnight", "acute_occupancy", "bed_wait_mean",
               "cost.total", "cost.delayed_bed_days",
               "homecare.utilisation", "harm.escalations", "harm.escalation_days",
               "harm.returns_to_unfit", "harm.unfit_again_days", "harm.deaths_during_delay",
               "harm.readmissions", "harm.readmission_days")
"""The metrics of a scenario comparison, in the order shown (labels: the metric catalogue).
The harm metrics are zero unless the harm of waiting is switched on (``harm_comparison``)."""

HARM_METRICS = KEY_METRICS + (
    "harm.deaths_in_hospital", "harm.deaths_during_delay_share", "harm.returns_to_unfit_share",
    "harm.readmission_share", "harm.escalated_to.step_down", "harm.escalated_to.care_home",
    "step_down.wait_mean.hospital", "care_home.wait_mean.hospital")
"""The metrics of a harm comparison: the scenario comparison's, every count and share of the
harm, and the steps of the circle of harm (sim.reporting.charts.CIRCLE)."""

CURVE_METRICS = ("delayed_days_per_30d", "acute_occupancy", "delay_mean.p1")
"""The metrics of a response curve."""

FIXED_COLUMNS = ("job", "scenario", "replication", "metric", "value", "unit")
"""The columns of a collected sweep that are not swept settings."""


class AnalysisError(ValueError):
    """An analysis that does not fit the sweep it was asked to analyse."""


Catalogue = Mapping[str, Metric]
"""Metrics by code name, as :func:`sim.core.catalogue.catalogue` gives them."""


def _levels(tidy: pd.DataFrame, by: list[str], entries: Catalogue | None) -> pd.DataFrame:
    """Each metric's mean and bounded 95% CI per ``by`` group (see the module docstring)."""
    return summarise_metrics(tidy, entries if entries is not None else catalogue(Params()), by)


def paired_differences(tidy: pd.DataFrame, baseline: str = "baseline",
                       by: str = "scenario") -> pd.DataFrame:
    """For every ``by`` value and metric: mean difference from ``baseline`` over the replications
    both have, with its 95% CI (t-distribution on the paired differences)."""
    base = tidy[tidy[by] == baseline].set_index(["metric", "replication"])["value"]
    rows = []
    for (group, metric), g in tidy[tidy[by] != baseline].groupby([by, "metric"], sort=False):
        other = g.set_index("replication")["value"]
        try:
            reference = base.loc[metric]
        except KeyError:
            continue
        common = other.index.intersection(reference.index)
        e = estimate((other.loc[common] - reference.loc[common]).to_numpy())
        rows.append((group, metric, e.mean, e.low, e.high, e.n))
    return pd.DataFrame(rows, columns=[by, "metric", "difference", "diff_ci_low", "diff_ci_high",
                                       "pairs"])


def one_job_per(tidy: pd.DataFrame, key: str, name: str) -> None:
    """Refuse to pool jobs: each ``key`` value must be one job, or its replications would be
    averaged across different systems (and paired wrongly)."""
    if tidy.groupby([key, "replication", "metric"]).size().max() > 1:
        varied = [c for c in tidy.columns
                  if c not in (*FIXED_COLUMNS, key) and tidy[c].nunique() > 1]
        raise AnalysisError(f"analysis={name} needs one job per {key}; this sweep also varies "
                            + (", ".join(varied) or "something else") + ": sweep it separately")


def scenario_comparison(tidy: pd.DataFrame, baseline: str = "baseline",
                        metrics: tuple[str, ...] = KEY_METRICS,
                        entries: Catalogue | None = None) -> pd.DataFrame:
    """Every scenario against the baseline: for each metric, its mean and 95% CI (cut at the
    metric's bounds: ``ci_at_bound``), and the paired difference from the baseline with its
    95% CI (unbounded); the baseline first."""
    one_job_per(tidy, "scenario", "scenario_comparison")
    if baseline not in set(tidy["scenario"]):
        raise AnalysisError(f"analysis=scenario_comparison needs the scenario {baseline!r} in "
                            "the sweep, as the baseline")
    tidy = tidy[tidy["metric"].isin(metrics)]
    summary = _levels(tidy, ["scenario"], entries)
    table = summary.merge(paired_differences(tidy, baseline), on=["scenario", "metric"],
                          how="left")
    order = [baseline] + sorted(s for s in table["scenario"].unique() if s != baseline)
    table["scenario"] = pd.Categorical(table["scenario"], order, ordered=True)
    table["metric"] = pd.Categorical(table["metric"], list(metrics), ordered=True)
    table = table.sort_values(["metric", "scenario"]).reset_index(drop=True)
    table["scenario"] = table["scenario"].astype(str)
    table["metric"] = table["metric"].astype(str)
    return table[["metric", "unit", "scenario", "mean", "ci_low", "ci_high", "ci_at_bound",
                  "difference", "diff_ci_low", "diff_ci_high", "replications"]]


def response_curve(tidy: pd.DataFrame, parameter: str,
                   metrics: tuple[str, ...] = CURVE_METRICS,
                   entries: Catalogue | None = None) -> pd.DataFrame:
    """Mean and 95% CI (cut at the metric's bounds) of ``metrics`` at each value of the swept
    ``parameter``."""
    swept = [c for c in tidy.columns if c not in FIXED_COLUMNS]
    if parameter not in swept:
        raise AnalysisError(f"analysis response_curve: parameter={parameter!r} is not allowed: "
                            "one of the swept overrides " + (", ".join(swept) or
                                                             "(none: sweep a setting)"))
    one_job_per(tidy, parameter, "response_curve")
    summary = _levels(tidy[tidy["metric"].isin(metrics)], [parameter], entries)
    return summary.sort_values(["metric", parameter]).reset_index(drop=True)


def weekend_rules(tidy: pd.DataFrame, entries: Catalogue | None = None) -> pd.DataFrame:
    """Mean delay (95% CI, cut at 0) by the weekday on which patients became medically fit,
    per scenario."""
    one_job_per(tidy, "scenario", "weekend_rules")
    names = {f"delay_mean.fit_{d}": d for d in WEEKDAY_NAMES}
    summary = _levels(tidy[tidy["metric"].isin(names)], ["scenario"], entries)
    summary["weekday"] = pd.Categorical(summary["metric"].map(names), list(WEEKDAY_NAMES),
                                        ordered=True)
    summary = summary.sort_values(["scenario", "weekday"]).reset_index(drop=True)
    summary["weekday"] = summary["weekday"].astype(str)
    return summary[["scenario", "weekday", "mean", "ci_low", "ci_high", "ci_at_bound",
                    "replications"]]


def mser5(series: np.ndarray) -> int:
    """MSER-5 truncation point (White 1997), in observations of ``series``.

    The series is cut into batches of 5; the warm-up is the number of leading batches whose
    removal minimises the squared standard error of the mean of what remains (searched over the
    first half only, as the rule prescribes).
    """
    batches = np.asarray(series, dtype=float)
    batches = batches[: len(batches) // 5 * 5].reshape(-1, 5).mean(axis=1)
    n = len(batches)
    best, best_d = np.inf, 0
    for d in range(n // 2):
        rest = batches[d:]
        value = rest.var() / len(rest)
        if value < best:
            best, best_d = value, d
    return best_d * 5


def warmup(daily: pd.DataFrame, entries: Catalogue | None = None) -> tuple[pd.DataFrame, int]:
    """The daily midnight count of medically fit patients over replications (mean, 95% CI cut
    at 0, a centred 7-day moving average and the cumulative mean from day 0), and the MSER-5
    warm-up in days."""
    s = _levels(daily.rename(columns={"fit_in_hospital": "value"}).assign(
        metric="fit_in_hospital_midnight", unit="patients"), ["day"], entries)
    s = s.sort_values("day").reset_index(drop=True)
    s["weekly_mean"] = s["mean"].rolling(7, center=True).mean()
    s["cumulative_mean"] = s["mean"].cumsum() / np.arange(1, len(s) + 1)
    return s, mser5(s["mean"].to_numpy())
