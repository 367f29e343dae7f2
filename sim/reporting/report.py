"""Reporting: the short human-readable summary of a run, and writing its tables to files.

Every number in the summary states its unit, the number of replications, and its 95%
confidence interval across replications.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from sim.running.files import write_csv, write_csv_tables
from sim.core.catalogue import causes, pathway_label
from sim.core.params import Params
from sim.running.runner import Replications


def pathway_title(key: str, params: Params) -> str:
    """A pathway as people read it: ``pathway 1: homecare`` (``home`` if it needs no service)."""
    service = params.pathways[key].service
    return f"{pathway_label(key).capitalize()}: {(service or 'home').replace('_', ' ')}"



def _fmt(value: float, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


AT_BOUND = "†"
"""Marks an interval cut at the smallest value its quantity can take (see below the summary)."""


def _cell(summary: pd.DataFrame, metric: str, digits: int = 1, scale: float = 1.0) -> str:
    row = summary.loc[summary["metric"] == metric]
    if row.empty:
        return "-"
    r = row.iloc[0]
    text = _fmt(r["mean"] * scale, digits)
    if r["replications"] > 1 and not math.isnan(r["ci_low"]):
        text += f" [{_fmt(r['ci_low'] * scale, digits)}, {_fmt(r['ci_high'] * scale, digits)}]"
        if r.get("ci_at_bound", False):
            text += AT_BOUND
    return text


def _interval_note(lines: list[str]) -> list[str]:
    """A note under the summary if any interval was cut at its bound."""
    if not any(AT_BOUND in line for line in lines):
        return []
    return [f"{AT_BOUND} The 95% interval would reach below the smallest value the quantity can "
            "take (0), so it is cut there: too few replications for a useful interval of this "
            "quantity; run more (`run.replications`).", ""]


def queue_warnings(results: Replications) -> list[str]:
    """One line for each queue that grew all run (see ``*queue_grew`` in
    :mod:`sim.core.metrics`), with its figures: more joined it than could be served, so its
    waits, and the delays behind it, depend on how long the run is."""
    m = results.metrics
    per_run = m.pivot_table(index="replication", columns="metric", values="value")
    n = len(per_run)
    mean = lambda metric: float(per_run[metric].mean()) if metric in per_run else math.nan  # noqa: E731
    window = mean("window_days")
    queues = [("acute beds", "bed_queue", mean("arrivals") / window, "arrived",
               mean("admitted") / window, "were admitted")]
    queues += [(name.replace("_", " "), name, mean(f"{name}.requests_per_day"), "asked for it",
                mean(f"{name}.granted_per_day"), "got it")
               for name in results.params.services]
    lines = []
    for label, key, joined, joined_words, served, served_words in queues:
        grew_metric = f"{key}_grew" if key == "bed_queue" else f"{key}.queue_grew"
        if grew_metric not in per_run or not (per_run[grew_metric] > 0).any():
            continue
        prefix = "bed_queue_" if key == "bed_queue" else f"{key}.queue_"
        grew = int((per_run[grew_metric] > 0).sum())
        lines.append(
            f"the queue for {label} grew all run in {grew} of {n} replication"
            f"{'s' if n > 1 else ''}: {mean(prefix + 'end'):,.0f} people waiting at the end, "
            f"{mean(prefix + 'growth'):+,.1f} a day; {joined:,.1f} a day {joined_words} and "
            f"{served:,.1f} {served_words}: more than its capacity can serve, so its waits (and "
            "the delays behind it) grow with the run's length")
    return lines


def summary_markdown(results: Replications, name: str) -> str:
    """The run's summary as Markdown: delays by pathway and cause, beds, services, conservation."""
    s = results.summary()
    run = results.params.run
    n = len(results.runs)
    c = lambda metric, digits=1, scale=1.0: _cell(s, metric, digits, scale)  # noqa: E731
    interval = "mean [95% CI] over" if n > 1 else "single run,"
    lines = [
        f"# Delayed discharge: {name}",
        "",
        f"{run.measured_days:g} simulated days after a {run.warmup_days:g}-day warm-up; "
        f"{interval} {n} replication{'s' if n > 1 else ''} (root seed {run.seed}).",
        "",
    ]
    warnings = queue_warnings(results)
    if warnings:
        lines += ["## Warning: queues that grew all run", "",
                  *[f"- **{w[0].upper() + w[1:]}.**" for w in warnings], ""]
    lines += [
        "## Delayed discharges by pathway",
        "",
        "| pathway | delayed bed-days per 30 days | mean delay (days) | 90th percentile delay (days) "
        "| share of discharges (%) |",
        "|---|---|---|---|---|",
    ]
    params = results.params
    for k in params.pathways:
        label = pathway_title(k, params)
        lines.append(f"| {label} | {c(f'delayed_days_per_30d.{k}')} | {c(f'delay_mean.{k}', 2)} "
                     f"| {c(f'delay_p90.{k}', 2)} | {c(f'discharge_share.{k}', 1, 100)} |")
    lines.append(f"| **all** | **{c('delayed_days_per_30d')}** | **{c('delay_mean.all', 2)}** "
                 f"| {c('delay_p90.all', 2)} | 100 |")
    lines += ["", "## Delayed bed-days per 30 days by cause", "",
              "| waiting for | delayed bed-days per 30 days |", "|---|---|"]
    for cause, label in causes(params).items():
        lines.append(f"| {label} | {c(f'delayed_days_per_30d.{cause}')} |")
    lines += [
        "", "## Acute beds", "",
        f"- Bed occupancy: {c('acute_occupancy', 1, 100)} % of {results.params.acute.beds} beds",
        f"- Medically fit but still in hospital at midnight: {c('fit_in_hospital_midnight')} "
        f"patients, {c('fit_in_hospital_share', 1, 100)} % of occupied beds",
        f"- Admissions that waited for a bed: {c('bed_wait_share', 1, 100)} %; "
        f"mean wait {c('bed_wait_mean', 2)} days; diverted: {c('diverted', 0)} patients",
        f"- Weekend discharges per day: {c('weekend_discharge_ratio', 2)} x weekday level",
        f"- Discharge-team utilisation: {c('assessors_utilisation', 1, 100)} %",
        "", "## Community services", "",
        "| service | utilisation (%) | mean queue (people) | mean wait, hospital patients (days) "
        "| mean wait, community referrals (days) |",
        "|---|---|---|---|---|",
    ]
    for service, settings in params.services.items():
        label = f"{service.replace('_', ' ').capitalize()} ({settings.unit})"
        lines.append(f"| {label} | {c(f'{service}.utilisation', 1, 100)} | {c(f'{service}.queue_mean')} "
                     f"| {c(f'{service}.wait_mean.hospital', 2)} "
                     f"| {c(f'{service}.wait_mean.community', 2)} |")
    m = results.metrics
    total = lambda metric: int(m.loc[m["metric"] == metric, "value"].sum())  # noqa: E731
    errors = total("conservation_error")
    lines += [
        "", "## Conservation of patients (all replications, whole run)", "",
        f"{total('arrivals_total'):,} arrived = {total('discharged_total'):,} discharged "
        f"+ {total('diverted_total'):,} diverted + {total('in_system_end'):,} still in hospital: "
        + ("**OK**" if errors == 0 else f"**FAILED by {errors} patients**"),
        "",
    ]
    lines += _interval_note(lines)
    return "\n".join(lines)


def write_tables(results: Replications, directory: Path, patients: bool = True) -> None:
    """``metrics.csv`` (one row per metric), ``replications.csv`` (per replication),
    ``daily.csv`` (midnight counts) and, if asked, ``patients.csv`` (one row per patient and
    replication, every replication's log in turn: those kept in the replication store are read
    from it, so a run started again into a finished folder writes the whole file again)."""
    summary = results.summary().rename(columns={"mean": "value"})
    summary = summary[["metric", "value", "unit", "sd", "ci_low", "ci_high", "replications"]]
    tables = {"metrics.csv": summary, "replications.csv": results.metrics,
              "daily.csv": results.daily}
    for filename, table in tables.items():
        write_csv(table, directory / filename)
    if patients:
        write_csv_tables(results.patient_tables(), directory / "patients.csv")
