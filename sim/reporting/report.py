"""Reporting: the short human-readable summary of a run, and writing its tables to files.

Every number in the summary states its unit, the number of replications, and its 95%
confidence interval across replications, cut at the bounds of its quantity (never a negative
wait, never a share above 100%). Labels, units, groups and how each metric is summarised
across replications come from the metric catalogue (:mod:`sim.core.catalogue`); the summary
only chooses which metrics to show.
"""

from __future__ import annotations

import math
import re
from dataclasses import fields
from pathlib import Path

import pandas as pd

from sim.running.files import write_csv, write_csv_tables
from sim.core.catalogue import (HARM, MARKET, WORKFORCE, Metric, catalogue, causes,
                                pathway_label)
from sim.core.costs import YEAR, cost_names
from sim.core.params import Params
from sim.reporting.money import pounds
from sim.running.stats import summarise_metrics
from sim.running.tables import AT_BOUND, BOUND_NOTE
from sim.running.runner import Replications

BED_METRICS = ("acute_occupancy", "fit_in_hospital_midnight", "fit_in_hospital_share",
               "long_stay_share", "bed_wait_share", "bed_wait_mean", "diverted",
               "weekend_discharge_ratio", "assessors_utilisation")
"""The metrics of the summary's section on acute beds (and the discharge team), in order."""

PATHWAY_COLUMNS = (("delayed_days_per_30d.{}", "delayed_days_per_30d"),
                   ("delay_mean.{}", "delay_mean.all"), ("delay_p90.{}", "delay_p90.all"),
                   ("discharge_share.{}", None))
"""The columns of the table by pathway: each pathway's metric, and that of all pathways."""

SERVICE_COLUMNS = ("{}.utilisation", "{}.queue_mean", "{}.wait_mean.hospital",
                   "{}.wait_mean.community")
"""The columns of the table of community services."""

GROUP_SECTIONS = (MARKET, WORKFORCE)
"""Catalogue groups shown whole, each in a section of its own, when the run has their metrics
(the harm of waiting too, when some mechanism of it is on)."""

CONSERVATION = ("arrivals_total", "discharged_total", "diverted_total", "died_total",
                "in_system_end")
"""Every arrival is discharged, diverted, dead or still in hospital: the first is the sum of
the others, in each replication."""



def pathway_title(key: str, params: Params) -> str:
    """A pathway as people read it: ``pathway 1: homecare`` (``home`` if it needs no service)."""
    service = params.pathways[key].service
    return f"{pathway_label(key).capitalize()}: {(service or 'home').replace('_', ' ')}"


def summary_table(results: Replications) -> pd.DataFrame:
    """One row per metric over the run's replications: means with 95% intervals cut at each
    metric's bounds, and totals of the metrics the catalogue declares ``total``
    (:func:`sim.running.stats.summarise_metrics`). The summary and ``metrics.csv`` show it."""
    return summarise_metrics(results.metrics, catalogue(results.params))


def _fmt(value: float, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _digits(metric: Metric) -> int:
    """Two decimals for days and ratios (mostly below 10), else one."""
    return 2 if not metric.percent and metric.unit.startswith(("days", "weekend")) else 1


def _cell(summary: pd.DataFrame, metric: Metric) -> str:
    """The metric's mean (as a per cent if it is a share) and its interval, or its total."""
    row = summary.loc[summary["metric"] == metric.name]
    if row.empty:
        return "-"
    r = row.iloc[0]
    scale = 100.0 if metric.percent else 1.0
    digits = _digits(metric)
    text = _fmt(r["mean"] * scale, digits)
    if r["replications"] > 1 and not math.isnan(r["ci_low"]):
        text += f" [{_fmt(r['ci_low'] * scale, digits)}, {_fmt(r['ci_high'] * scale, digits)}]"
        if r.get("ci_at_bound", False):
            text += AT_BOUND
    return text


def _unit(metric: Metric) -> str:
    """The unit as shown: ``% of beds`` for a share (``fraction of beds``)."""
    if not metric.percent:
        return metric.unit
    return re.sub(r"^fraction\b", "%", metric.unit) if metric.unit.startswith("fraction") else "%"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _column(metric: Metric, row: str) -> str:
    """A table column's header from the catalogue label of its cell in ``row``: the label with
    the row's own name taken out (``mean delay, pathway 0`` -> ``mean delay``), and the unit
    unless the label says it."""
    member = re.escape(row)
    label = re.sub(rf",?(\s+(on|of|for|to|in))?\s+{member}\b|^{member}\s+", "",
                   metric.label).strip(" ,")
    unit = _unit(metric)
    if unit in label or label in unit:  # "bed-days per 30 days", "% of discharges"
        return label if unit in label else unit
    return f"{label} ({unit.replace(' (', ', ').replace(')', '')})"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _pathway_table(s: pd.DataFrame, params: Params, entries: dict[str, Metric]) -> list[str]:
    keys = list(params.pathways)
    columns = [(family, whole) for family, whole in PATHWAY_COLUMNS
               if family.format(keys[0]) in entries]
    headers = [_column(entries[family.format(keys[0])], pathway_label(keys[0]))
               for family, _ in columns]
    lines = [_row(["pathway", *headers]), "|" + "---|" * (len(headers) + 1)]
    for k in keys:
        lines.append(_row([pathway_title(k, params),
                           *[_cell(s, entries[family.format(k)]) for family, _ in columns]]))
    totals = [f"**{_cell(s, entries[whole])}**" if whole in entries else "100"
              for _, whole in columns]
    lines.append(_row(["**all**", *totals]))
    return lines + ["", DELAY_NOTE]


DELAY_NOTE = (
    "Mean and 90th percentile delays (medically fit to leaving the acute bed) are of the "
    "patients discharged in the measured window: patients still waiting at the end are not in "
    "them. Their delayed days are in the bed-days and in the causes below, and they are counted "
    "in the medically fit patients at midnight and in the queues and waits for community "
    "services (which count those still waiting, censored at the end).")
"""What the delays by pathway leave out (issue 10: every waiting metric should count the
patients still waiting at the end; these do not, and say so)."""


def _cause_table(s: pd.DataFrame, params: Params, entries: dict[str, Metric]) -> list[str]:
    rows = [(label, entries[f"delayed_days_per_30d.{cause}"])
            for cause, label in causes(params).items()
            if f"delayed_days_per_30d.{cause}" in entries]
    lines = [_row(["cause", _unit(rows[0][1]) if rows else ""]), "|---|---|"]
    lines += [_row([label, _cell(s, metric)]) for label, metric in rows]
    unfit = entries.get("harm.unfit_again_days")
    if params.harm.any and unfit is not None:
        lines += ["", f"Beside these, and not delayed days: {unfit.label}, {_cell(s, unfit)} "
                  f"{_unit(unfit)}: days of patients who became medically unfit again while "
                  "they waited, until fit again; they are in none of the causes above."]
    return lines


def _bed_lines(s: pd.DataFrame, entries: dict[str, Metric], present: set[str]) -> list[str]:
    return [f"- {_capital(entries[name].label)}: {_cell(s, entries[name])} "
            f"{_unit(entries[name])}" for name in BED_METRICS if name in present]


def _service_table(s: pd.DataFrame, params: Params, entries: dict[str, Metric]) -> list[str]:
    names = list(params.services)
    columns = [c for c in SERVICE_COLUMNS if c.format(names[0]) in entries] if names else []
    headers = [_column(entries[c.format(names[0])], names[0].replace("_", " "))
               for c in columns]
    lines = [_row(["service", *headers]), "|" + "---|" * (len(headers) + 1)]
    for name, settings in params.services.items():
        label = f"{_capital(name.replace('_', ' '))} ({settings.unit})"
        lines.append(_row([label, *[_cell(s, entries[c.format(name)]) for c in columns]]))
    return lines


def _group_table(s: pd.DataFrame, group: str, entries: dict[str, Metric],
                 present: set[str]) -> list[str]:
    """Every metric of a catalogue group that the run has: a family's members (one per
    service, say) after the group's own metrics."""
    members = [m for m in entries.values() if m.group == group and m.name in present]
    members.sort(key=lambda m: m.name.count("."))  # stable: the catalogue's order within
    if not members:
        return []
    return [_row(["measure", "mean [95% CI]", "unit"]), "|---|---|---|",
            *[_row([_capital(m.label), _cell(s, m), _unit(m)]) for m in members]]


def _harm_section(s: pd.DataFrame, params: Params, entries: dict[str, Metric],
                  present: set[str]) -> list[str]:
    """What waiting did to patients, when some mechanism of the harm of waiting is on."""
    if not params.harm.any:
        return []
    on = [f.name.replace("_", " ") for f in fields(params.harm)
          if getattr(getattr(params.harm, f.name), "enabled", False)]
    return [f"## {_capital(HARM)} of waiting", "",
            f"Mechanisms on: {', '.join(on)}. Counts and bed-days are of the measured window.",
            "", *_group_table(s, HARM, entries, present), ""]


def _conservation(results: Replications) -> list[str]:
    """Arrivals against discharges, diversions, deaths and those still in hospital, added
    over the replications; OK only if they add up in every replication (computed here from the
    counts, not from the model's own ``conservation_error``)."""
    per_run = results.metrics.pivot_table(index="replication", columns="metric", values="value")
    missing = [name for name in CONSERVATION if name not in per_run]
    if missing:
        return [f"Cannot be checked: the run has no {', '.join(missing)}."]
    arrived, *parts = (per_run[name] for name in CONSERVATION)
    error = arrived - sum(parts)
    totals = [int(per_run[name].sum()) for name in CONSERVATION]
    failed = int((error != 0).sum())
    verdict = ("**OK**" if failed == 0 else
               f"**FAILED by {int(error.abs().sum()):,} patients in {failed} of "
               f"{len(per_run)} replications**")
    return [f"{totals[0]:,} arrived = {totals[1]:,} discharged + {totals[2]:,} diverted "
            f"+ {totals[3]:,} died + {totals[4]:,} still in hospital: {verdict}"]


def _cost_section(results: Replications, s: pd.DataFrame) -> list[str]:
    """What the run costs, per 30 days (mean [95% CI]) and a year, at the run's prices."""
    costs = results.costs
    if costs is None:
        return []
    entries = catalogue(results.params)
    lines = [f"## Costs ({costs.price_year} prices)", "",
             _row(["", "£ per 30 days", "£ a year"]), "|---|---|---|"]
    for name in cost_names(results.params):
        row = s.loc[s["metric"] == name]
        if row.empty:
            continue
        r = row.iloc[0]
        text = pounds(r["mean"])
        if r["replications"] > 1 and r["ci_low"] < r["ci_high"]:  # (a fixed cost has none)
            text += f" [{pounds(r['ci_low'])}, {pounds(r['ci_high'])}]"
        label = _capital(entries[name].label)
        bold = "**" if name == "cost.total" else ""
        lines.append(_row([f"{bold}{label}{bold}", text, pounds(r["mean"] * YEAR)]))
    on = ", ".join(item.replace("_year", "").replace("_", " ") for item in results.programmes)
    lines += ["", f"Prices: a delayed bed-day {pounds(costs.delayed_bed_day)} (an average acute "
              f"bed-day {pounds(costs.acute_bed_day)}); every price, its source and year in "
              "`configs/costs/` (docs/costs.md). The total counts community capacity as "
              "provided (bought on block terms), as a lever's added capacity is bought; "
              f"programmes on: {on or 'none'}.", ""]
    return lines


def _interval_note(lines: list[str]) -> list[str]:
    """A note under the summary if any interval was cut at its bound."""
    if not any(AT_BOUND in line for line in lines):
        return []
    return [BOUND_NOTE, ""]


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
    """The run's summary as Markdown: delays by pathway and cause, beds, services, the harm of
    waiting (when on), any care market or workforce, and conservation of patients."""
    s = summary_table(results)
    params = results.params
    run = params.run
    n = len(results.runs)
    entries = catalogue(params)
    present = set(s["metric"])
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
    lines += ["## Delayed discharges by pathway", "", *_pathway_table(s, params, entries), "",
              "## Delayed bed-days per 30 days by cause", "", *_cause_table(s, params, entries),
              "", f"## Acute beds ({params.acute.beds:,} beds)", "",
              *_bed_lines(s, entries, present), "",
              "## Community services", "", *_service_table(s, params, entries), ""]
    lines += _cost_section(results, s)
    lines += _harm_section(s, params, entries, present)
    for group in GROUP_SECTIONS:
        table = _group_table(s, group, entries, present)
        lines += [f"## {_capital(group)}", "", *table, ""] if table else []
    lines += ["## Conservation of patients (all replications, whole run)", "",
              *_conservation(results), ""]
    lines += _interval_note(lines)
    return "\n".join(lines)


def write_tables(results: Replications, directory: Path, patients: bool = True) -> None:
    """``metrics.csv`` (one row per metric: its mean, sd and 95% interval over the
    replications, or, for a metric the catalogue declares ``total``, its total over them with
    no sd or interval; the ``summary`` column says which), ``replications.csv`` (per
    replication), ``daily.csv`` (midnight counts) and, if asked, ``patients.csv`` (one row per
    patient and replication, every replication's log in turn: those kept in the replication
    store are read from it, so a run started again into a finished folder writes the whole file
    again)."""
    entries = catalogue(results.params)
    summary = summary_table(results).rename(columns={"mean": "value"})
    summary["summary"] = [entries[m].summary if m in entries else "mean"
                          for m in summary["metric"]]
    summary = summary[["metric", "value", "unit", "sd", "ci_low", "ci_high", "replications",
                       "summary"]]
    tables = {"metrics.csv": summary, "replications.csv": results.metrics,
              "daily.csv": results.daily}
    for filename, table in tables.items():
        write_csv(table, directory / filename)
    if patients:
        write_csv_tables(results.patient_tables(), directory / "patients.csv")
