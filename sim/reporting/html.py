"""A report to hand on: one self-contained HTML file of a scenario comparison.

It holds the charts (PNG images embedded as base64, so the file needs nothing beside it), a
table in plain words with numbers formatted for people (per cent, whole bed-days, days to one
decimal), the assumptions of the runs, and the settings each scenario changes from the
baseline. Also the formatting the app uses for its numbers (:func:`format_value`,
:func:`format_change`, :func:`plain_table`).

The runs are any objects with ``params``, ``metrics`` (per replication, tidy), ``daily``,
``mean_flows()`` and ``label`` (:class:`sim.app.engine.ScenarioRun`).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import re
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import pandas as pd

from sim.core.catalogue import POUNDS_30, causes, describe
from sim.core.levers import LEVERS, get_setting, setting_label
from sim.reporting.money import cost_comparison, cost_table_for_people, pounds
from sim.core.params import Params
from sim.running.files import write_atomic


class Run(Protocol):
    label: str
    params: Params
    metrics: pd.DataFrame
    daily: pd.DataFrame

    def mean_flows(self) -> pd.DataFrame: ...


# ----------------------------------------------------------------------------- numbers for people
def short_unit(metric: str) -> str:
    """The unit of a metric as a table shows it."""
    entry = describe(metric)
    if entry.percent:
        return "%"
    unit = entry.unit
    if unit.startswith("days"):
        return "days"
    if unit.startswith("patients"):
        return "patients"
    return unit


COUNTS = ("patients", "bed-days", "bed-days per 30 days", "beds")
"""Units shown as whole numbers, changes too."""


def _digits(metric: str, value: float) -> int:
    entry = describe(metric)
    unit = short_unit(metric)
    if entry.percent:
        return 1
    if unit in ("days",):
        return 2 if abs(value) < 1 else 1
    if abs(value) >= 10 or unit in COUNTS:
        return 0
    return 2


def format_value(value: float, metric: str, unit: bool = False) -> str:
    """A metric's value for people: occupancy ``93.8%``, delayed bed-days ``1,970``, a
    delay ``1.4`` (days), a wait ``0.17``, a cost ``£9.55m``; ``-`` when there is none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    entry = describe(metric)
    if entry.unit == POUNDS_30:
        return pounds(value) + (" per 30 days" if unit else "")
    scaled = value * 100 if entry.percent else value
    text = f"{scaled:,.{_digits(metric, scaled)}f}"
    if entry.percent:
        return text + "%"
    return f"{text} {short_unit(metric)}" if unit else text


def format_change(difference: float, low: float, high: float, metric: str) -> str:
    """A change and its 95% CI for people: ``-69 (-85 to -52)``; per cent metrics change in
    percentage points (``+1.2 points (0.3 to 2.1)``)."""
    if difference is None or math.isnan(difference):
        return "-"
    entry = describe(metric)
    if entry.unit == POUNDS_30:
        signed = lambda v: "+" + pounds(v) if v > 0 else pounds(v)  # noqa: E731
        interval = (f" ({signed(low)} to {signed(high)})"
                    if low is not None and not math.isnan(low) else "")
        return signed(difference) + interval
    scale = 100 if entry.percent else 1
    d = _digits(metric, abs(difference) * scale)
    if not entry.percent and short_unit(metric) not in COUNTS and abs(difference) < 10:
        d = max(d, 1 if abs(difference) >= 1 else 2)
    if difference == 0 and (low is None or math.isnan(low) or low == high == 0):
        return "no change"

    def f(v: float) -> str:
        text = f"{v * scale:+,.{d}f}"
        return text[1:] if float(text.replace(",", "")) == 0 else text

    text = f(difference) + (" points" if entry.percent else "")
    if low is not None and not math.isnan(low):
        text += f" ({f(low)} to {f(high)})"
    return text


def verdict(low: float, high: float, lower_is_better: bool = True) -> str:
    """What a change's 95% CI says, in words."""
    if low is None or math.isnan(low):
        return "one replication: no interval"
    if high < 0:
        return "fewer" if lower_is_better else "lower"
    if low > 0:
        return "more" if lower_is_better else "higher"
    return "no change the simulation can detect"


def plain_table(comparison: pd.DataFrame, labels: Mapping[str, str] | None = None,
                baseline: str = "baseline") -> pd.DataFrame:
    """A comparison table (:func:`sim.app.engine.compare`) in plain words: a row per measure,
    its unit, the baseline's value, and each scenario's value with its change from the
    baseline and the 95% CI of the change. Measures that are 0 in every scenario (the harm of
    waiting, when it is not modelled) are left out: a row of zeros tells people nothing."""
    labels = dict(labels or {})
    scenarios = list(dict.fromkeys(comparison["scenario"]))
    rows = []
    for metric, group in comparison.groupby("metric", sort=False):
        if (group["mean"].fillna(0) == 0).all():
            continue
        entry = describe(metric)
        row: dict[str, str] = {"measure": entry.label[:1].upper() + entry.label[1:],
                               "unit": short_unit(metric)}
        g = group.set_index("scenario")
        for name in scenarios:
            if name not in g.index:
                continue
            r = g.loc[name]
            head = labels.get(name, name)
            row[head] = format_value(r["mean"], metric)
            if name != baseline:
                row[f"{head}: change (95% CI)"] = format_change(
                    r["difference"], r["diff_ci_low"], r["diff_ci_high"], metric)
        rows.append(row)
    return pd.DataFrame(rows)


def measures_table(comparison: pd.DataFrame, labels: Mapping[str, str] | None = None,
                   baseline: str = "baseline") -> pd.DataFrame:
    """:func:`plain_table` with each scenario in one column, its value above its change and
    the 95% CI of the change (a page is too narrow for two columns per scenario)."""
    table = plain_table(comparison, labels, baseline)
    out = table[["measure", "unit"]].copy()
    names = [(labels or {}).get(n, n) for n in dict.fromkeys(comparison["scenario"])]
    for name in (n for n in names if n in table.columns):
        change = f"{name}: change (95% CI)"
        out[name] = (table[name] + "\n" + table[change]) if change in table.columns \
            else table[name]
    return out


def setting_text(value: Any) -> str:
    """A setting's value as people read it."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) for v in value):
        names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
        if all(0 <= v <= 6 for v in value) and len(value) <= 7:
            return ", ".join(names[v] for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if is_dataclass(value):
        return str(asdict(value))
    return str(value)


def flatten(params: Any, prefix: str = "") -> dict[str, Any]:
    """Every setting of a config or parameters by dotted name."""
    data = asdict(params) if is_dataclass(params) else params
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def differences_from(baseline: Params, other: Params) -> list[tuple[str, Any, Any]]:
    """The settings of ``other`` that differ from ``baseline``: (name, baseline, other);
    how many replications to run is not a difference of the system."""
    a, b = flatten(baseline), flatten(other)
    return [(key, a.get(key), b.get(key)) for key in dict.fromkeys([*a, *b])
            if a.get(key) != b.get(key)]


# ----------------------------------------------------------------------------- the report
_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Arial, sans-serif; margin: 2rem auto;
       max-width: 1150px; color: #1a1a1a; line-height: 1.5; padding: 0 1rem; }
h1 { font-size: 2rem; margin-bottom: .2rem; } h2 { margin-top: 2.5rem; border-bottom: 2px solid
#ddd; padding-bottom: .2rem; } .lead { font-size: 1.15rem; color: #333; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .95rem; }
th, td { border: 1px solid #ccc; padding: .35rem .6rem; vertical-align: top; }
th { background: #f0f0f0; text-align: left; } td.n { text-align: right; white-space: nowrap; }
img { max-width: 100%; height: auto; margin: .5rem 0 1.5rem; border: 1px solid #eee; }
.better { color: #0072B2; font-weight: bold; } .worse { color: #D55E00; font-weight: bold; }
.small { color: #555; font-size: .9rem; } .change { color: #444; font-size: .85rem; }
.warning { background: #fff4e5; border-left: 6px solid #D55E00; padding: .2rem 1rem; }
"""

_NUMBER = re.compile(r"^[-+]?\d")


def _cell(value: Any, name: bool = False) -> str:
    """A table cell: a number right-aligned (not in the column of names), a second line (a
    change) in smaller type."""
    text = str(value)
    css = ' class="n"' if _NUMBER.match(text) and not name else ""
    first, _, second = text.partition("\n")
    body = html.escape(first) + (f"<br><span class='change'>{html.escape(second)}</span>"
                                 if second else "")
    return f"<td{css}>{body}</td>"


def _table_html(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = ["<tr>" + "".join(_cell(v, name=i == 0) for i, v in enumerate(row)) + "</tr>"
            for row in table.itertuples(index=False)]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def chart_images(runs: Mapping[str, Run], comparison: pd.DataFrame,
                 baseline: str = "baseline") -> list[tuple[str, str, bytes]]:
    """The report's charts: (title, what it shows, PNG bytes)."""
    from sim.reporting import analysis, charts
    from sim.reporting.report import pathway_title

    labels = {name: run.label for name, run in runs.items()}
    base = runs[baseline]
    params = base.params
    warmup = params.run.warmup_days
    pathways = {k: pathway_title(k, params) for k in params.pathways}
    table = pd.concat([run.metrics.assign(scenario=name) for name, run in runs.items()],
                      ignore_index=True)
    out = [
        ("Change from the baseline", "Delayed bed-days per 30 days in each scenario, and the "
         "change from the baseline with its 95% confidence interval.",
         charts.to_png(charts.scenario_comparison(comparison, baseline=baseline,
                                                  labels=labels))),
        ("Delayed bed-days by pathway", "Where the delayed days fall, by discharge pathway.",
         charts.to_png(charts.delayed_days_by_scenario(
             {n: r.metrics for n, r in runs.items()}, pathways, labels=labels,
             baseline=baseline))),
        ("Where the delay comes from", "Each delayed day attributed to what the patient was "
         "waiting for.", charts.to_png(charts.delay_by_cause(table, causes(params),
                                                             labels=labels))),
        ("Medically fit patients in hospital", "Weekly means of the midnight count of patients "
         "who are medically fit but still in an acute bed.",
         charts.to_png(charts.fit_in_hospital_over_time(
             {n: r.daily for n, r in runs.items()}, warmup, labels=labels, baseline=baseline))),
        ("Acute bed occupancy", "Patients in acute beds at midnight against the number of beds.",
         charts.to_png(charts.acute_occupancy({n: r.daily for n, r in runs.items()},
                                              params.acute.beds, warmup, labels=labels,
                                              baseline=baseline))),
        ("Delay by the day patients became fit", "Weekend rules show as longer delays for "
         "patients who become fit late in the week.",
         charts.to_png(charts.weekend_rules(analysis.weekend_rules(table), labels=labels,
                                            baseline=baseline))),
    ]
    for name, run in runs.items():
        out.append((f"Patient flow: {labels[name]}", "From admission through the discharge "
                    "pathways to where patients went.",
                    charts.to_png(charts.patient_flow(
                        run.mean_flows(), title=labels[name],
                        replications=int(run.metrics["replication"].nunique()),
                        days=run.params.run.measured_days))))
    return out


def _system(params: Params) -> str:
    """The baseline system in words: its acute beds, then each number lever's value (the lever
    table's labels), and the days the discharge team works."""
    parts = [f"{params.acute.beds} acute beds"]
    for item in LEVERS:
        if item.is_switch or (item.needs and get_setting(params, item.needs) is not True):
            continue
        try:
            value = get_setting(params, item.setting)
        except (AttributeError, KeyError):
            continue  # a setting this system does not have
        parts.append(f"{setting_label(item.setting)}: {item.shown(value):,g}")
    homecare = params.services.get("homecare")
    if homecare is not None and homecare.staff is not None:
        parts.append(f"each carer works {homecare.staff.hours_each:g} hours a week with clients")
    parts.append(f"the discharge team works {setting_text(params.assessment.hours.days)}")
    return "Baseline system: " + "; ".join(parts) + "."


def _assumptions(params: Params, replications: int) -> list[str]:
    run = params.run
    return [
        f"Each scenario is {replications} replications of {run.days:g} simulated days; the "
        f"first {run.warmup_days:g} days (warm-up, starting from an empty hospital) are not "
        f"measured, so figures describe {run.measured_days:g} days. Root seed {run.seed}.",
        "Replication k of every scenario uses the same random numbers (common random "
        "numbers): the same patients arrive with the same needs, so a change from the "
        "baseline is the scenario's effect, paired replication by replication. Intervals are "
        "95% t-intervals over replications.",
        _system(params),
        "A patient who is medically fit but waits for an assessment, a community service, the "
        "transfer or the receiving service's working days keeps the acute bed: each such day "
        "is a delayed-discharge bed-day. Community capacity is shared first come first served "
        "with people referred from the community.",
        "The defaults describe a plausible English acute trust, not a particular one; their "
        "sources and the calibration are in docs/calibration.md. "
        + _workforce(params.services.get("homecare")),
    ]


def _workforce(homecare: Any) -> str:
    """Whether carers come and go in these runs (a model with a workforce says so in
    ``staff.workforce``; without one, every post is always filled)."""
    workforce = getattr(getattr(homecare, "staff", None), "workforce", None)
    if workforce is not None and getattr(workforce, "enabled", False):
        return (f"Carers leave and their posts stay vacant until filled (turnover "
                f"{workforce.turnover_per_year:.0%} a year).")
    return ("Every carer's post is always filled: carers' turnover and vacancies are not in "
            "these runs.")


def _warnings_html(runs: Mapping[str, Run], labels: Mapping[str, str]) -> list[str]:
    """The command line's warnings (a queue that grew all run), each naming its scenario."""
    from sim.reporting.report import queue_warnings

    lines = [f"{labels[name]}: {line}." for name, run in runs.items()
             for line in queue_warnings(run)]
    if not lines:
        return []
    return ["<div class='warning'><h2>Warning: queues that grew all run</h2><ul>",
            *(f"<li>{html.escape(line)}</li>" for line in lines), "</ul></div>"]


def _in_words(verdict_: str) -> str:
    """A verdict on the delayed bed-days as a sentence's end: ``fewer delayed bed-days``."""
    return f"{verdict_} delayed bed-days" if verdict_ in ("fewer", "more") else verdict_


def report_html(runs: Mapping[str, Run], comparison: pd.DataFrame, baseline: str = "baseline",
                title: str = "Delayed hospital discharge: scenario comparison",
                differences: Mapping[str, Sequence[tuple[str, Any, Any]]] | None = None) -> str:
    """The report as one HTML document (images embedded)."""
    labels = {name: run.label for name, run in runs.items()}
    base = runs[baseline]
    n = int(base.metrics["replication"].nunique())
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='small'>Written {dt.datetime.now():%d %B %Y, %H:%M} by discharge-sim.</p>",
        "<p class='lead'>Delayed-discharge bed-days are days that medically fit patients spend "
        "in an acute bed because the care they need next is not ready. Each scenario below "
        "changes the baseline system; the change from the baseline is shown with its 95% "
        f"confidence interval over {n} replications. A change whose interval excludes zero is "
        "a real effect of the scenario, not noise.</p>",
        *_warnings_html(runs, labels),
        "<h2>Headline: delayed bed-days</h2>", _table_html(_headline(runs, comparison, baseline)),
        *_costs_html(runs, baseline),
        "<h2>All measures</h2>",
        "<p class='small'>Each scenario's value, and under it its change from the baseline "
        "with the 95% confidence interval of the change. Per cent measures change in "
        "percentage points.</p>",
        _table_html(measures_table(comparison, labels, baseline)),
        "<h2>Charts</h2>",
    ]
    for heading, what, png in chart_images(runs, comparison, baseline):
        parts += [f"<h3>{html.escape(heading)}</h3><p class='small'>{html.escape(what)}</p>",
                  _image(png, heading)]
    parts += _changes_html(runs, baseline, differences)
    parts.append("<h2>Assumptions</h2><ul>")
    parts += [f"<li>{html.escape(a)}</li>" for a in _assumptions(base.params, n)]
    parts.append("</ul></body></html>")
    return "\n".join(parts)


def _headline(runs: Mapping[str, Run], comparison: pd.DataFrame,
              baseline: str) -> pd.DataFrame:
    """Each scenario's delayed bed-days per 30 days, its change from the baseline with the 95%
    interval of the change, and what that interval means."""
    metric = "delayed_days_per_30d"
    rows = comparison[comparison["metric"] == metric].set_index("scenario")
    out = []
    for name, run in runs.items():
        r = rows.loc[name]
        if name == baseline:
            out.append((run.label, format_value(r["mean"], metric), "", "", ""))
            continue
        out.append((run.label, format_value(r["mean"], metric),
                    format_change(r["difference"], math.nan, math.nan, metric),
                    format_change(r["diff_ci_low"], math.nan, math.nan, metric) + " to "
                    + format_change(r["diff_ci_high"], math.nan, math.nan, metric),
                    _in_words(verdict(r["diff_ci_low"], r["diff_ci_high"]))))
    return pd.DataFrame(out, columns=["scenario", "delayed bed-days per 30 days",
                                      "change from baseline", "95% CI of the change",
                                      "what it means"])


def _costs_html(runs: Mapping[str, Run], baseline: str) -> list[str]:
    """What each scenario costs against the baseline, in pounds a year, when the runs were
    priced (their metrics have costs)."""
    tidy = pd.concat([run.metrics.assign(scenario=name) for name, run in runs.items()],
                     ignore_index=True)
    if "cost.total" not in set(tidy["metric"]) or len(runs) < 2:
        return []
    costs = getattr(runs[baseline], "costs", None)
    year = f" ({costs.price_year} prices)" if costs is not None and costs.price_year else ""
    table = cost_table_for_people(cost_comparison(tidy, baseline),
                                  {name: run.label for name, run in runs.items()})
    return [f"<h2>Costs{html.escape(year)}</h2>",
            "<p class='small'>Against the baseline, in pounds a year, paired on common random "
            "numbers. Net cost: the change in the total cost (community capacity provided, the "
            "discharge team and programmes such as seven-day working, plus delayed bed-days), "
            "negative when the scenario saves money. Cost per delayed bed-day avoided: the "
            "extra spending over the delayed bed-days it avoids; below the price of a delayed "
            "bed-day, the scenario pays for itself in bed-days alone. Intervals are 95% "
            "(Fieller's, for a cost per outcome).</p>", _table_html(table)]


def _changes_html(runs: Mapping[str, Run], baseline: str,
                  differences: Mapping[str, Sequence[tuple[str, Any, Any]]] | None) -> list[str]:
    """For each scenario, the settings that differ from the baseline's, in words."""
    base = runs[baseline]
    parts = ["<h2>What each scenario changes</h2>"]
    for name, run in runs.items():
        if name == baseline:
            continue
        diffs = (differences or {}).get(name)
        if diffs is None:
            diffs = differences_from(base.params, run.params)
        table = pd.DataFrame([(setting_label(k), k, setting_text(a), setting_text(b))
                              for k, a, b in diffs],
                             columns=["setting", "code name", "baseline", run.label])
        parts.append(f"<h3>{html.escape(run.label)}</h3>")
        parts.append(_table_html(table) if len(table) else
                     "<p>No setting differs from the baseline.</p>")
    return parts


def write_report(runs: Mapping[str, Run], comparison: pd.DataFrame, path: Path,
                 baseline: str = "baseline", **kwargs: Any) -> Path:
    """Write :func:`report_html` to ``path`` (atomically); returns the path."""
    text = report_html(runs, comparison, baseline, **kwargs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))
    return path
