"""Every chart of the project, drawn from result tables only (the only module that draws).

One style for all of them, made to be read projected on a wall: large type, a colour-blind-safe
palette (Okabe and Ito), plain-English labels (from the metric catalogue,
:mod:`sim.core.catalogue`, the lever table, :mod:`sim.core.levers`, and the scenarios' titles), a title, axes with units, and a note
under every chart giving the number of replications and the uncertainty shown.

Each chart function returns its :class:`matplotlib.figure.Figure`; given a ``path`` it also
writes a PNG there (atomically) and frees the figure. :func:`to_png` gives a figure's PNG bytes
(for the app and the HTML report).
"""

from __future__ import annotations

import functools
import inspect
import io
from pathlib import Path
from typing import Callable, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from cycler import cycler  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Patch, PathPatch, Rectangle  # noqa: E402
from matplotlib.path import Path as CurvePath  # noqa: E402

from sim.core.catalogue import WEEKDAY_NAMES, catalogue, describe  # noqa: E402
from sim.core.levers import setting_label  # noqa: E402
from sim.core.params import Params  # noqa: E402
from sim.running.files import write_atomic  # noqa: E402
from sim.running.stats import summarise, summarise_metrics  # noqa: E402

# ----------------------------------------------------------------------------- the one style
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000")
"""Okabe-Ito colours, distinguishable with the common colour-vision deficiencies."""
CATEGORY_COLOURS = tuple(c for c in PALETTE if c != "#000000") + (
    "#882255", "#44AA99", "#999933", "#332288")
"""Colours of categories (scenarios, causes): Okabe-Ito without black (error bars are black),
then four of Paul Tol's colour-blind-safe ones; beyond these, colours repeat hatched."""
BASELINE_COLOUR = "#6E6E6E"
BETTER, WORSE, NO_CHANGE = "#0072B2", "#D55E00", "#BBBBBB"
"""The change from baseline: blue fewer (better), vermilion more (worse), grey no detectable
change (blue/orange rather than green/red, which many people cannot tell apart)."""

STYLE = {
    "font.size": 15, "axes.titlesize": 18, "axes.titleweight": "bold", "axes.labelsize": 15,
    "xtick.labelsize": 14, "ytick.labelsize": 14, "legend.fontsize": 13,
    "figure.titlesize": 19, "figure.titleweight": "bold", "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.35, "grid.linewidth": 0.8,
    "axes.prop_cycle": cycler(color=PALETTE), "lines.linewidth": 2.5, "errorbar.capsize": 6,
    "legend.frameon": False, "axes.titlepad": 12, "axes.axisbelow": True,
}
LEVEL_COLOUR = "#4A4A6A"
"""Bars of a level (not a change): one neutral colour, so that colour means only the change."""
DPI = 110

def scenario_label(name: str, labels: Mapping[str, str] | None = None) -> str:
    """A scenario's name for people: from ``labels`` if given (the scenario files' titles,
    :func:`sim.config.schema.scenario_titles`, or a what-if's label), else the name in words
    (``my_scenario`` -> ``My scenario``)."""
    if labels and name in labels:
        return labels[name]
    text = str(name).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _ordered(names, labels: Mapping[str, str] | None = None) -> list[str]:
    """Scenarios in the order of ``labels`` (the caller's order, so that a scenario has the
    same colour on every chart), any others after them in their own order."""
    names = list(dict.fromkeys(names))
    order = {name: i for i, name in enumerate(labels or {})}
    return sorted(names, key=lambda n: order.get(n, len(order)))


def styled(draw: Callable[..., plt.Figure]) -> Callable[..., plt.Figure]:
    """Draw a chart in the one style; write it to ``path`` if one is given (and free it)."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            fig = draw(*args, **kwargs)
        path = inspect.signature(draw).bind(*args, **kwargs).arguments.get("path")
        if path is not None:
            save_figure(fig, Path(path))
        return fig
    return wrapper


def note(fig: plt.Figure, text: str) -> None:
    """The line under a chart: replications and the uncertainty shown."""
    fig.text(0.01, -0.01, text, ha="left", va="top", fontsize=13, color="#444444", wrap=True)


def uncertainty(n: int, what: str = "error bars") -> str:
    """``5 replications; error bars: 95% confidence interval`` (or why there is none)."""
    if n < 2:
        return f"{n} replication: no interval (run 2 or more)"
    return f"{n} replications; {what}: 95% confidence interval"


def save_figure(fig: plt.Figure, path: Path) -> None:
    """Save a chart as PNG, atomically, and free it."""
    write_atomic(path, lambda p: fig.savefig(p, dpi=DPI, bbox_inches="tight", format="png"))
    plt.close(fig)


def to_png(fig: plt.Figure, close: bool = True) -> bytes:
    """A chart's PNG bytes (and free it, unless ``close`` is false)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=DPI, bbox_inches="tight", format="png")
    if close:
        plt.close(fig)
    return buffer.getvalue()


def _errors(mean, low, high, floor: float | None = 0.0):
    """Error-bar lengths of an interval, cut at ``floor`` (delays and bed-days are never
    below 0; None for a change, which can be)."""
    mean, low, high = (np.asarray(v, dtype=float) for v in (mean, low, high))
    if np.isnan(low).all():
        return None
    if floor is not None:
        low = np.maximum(low, floor)
    return np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)])


def _weekly(daily: pd.DataFrame, column: str, upper: float | None = None) -> pd.DataFrame:
    """Weekly means of a daily count, per replication (whole weeks only), then their mean and
    95% CI over replications, the interval kept within [0, ``upper``] (a count of patients in
    beds cannot exceed the beds): columns ``week``, ``day`` (mid-week), ``mean``, ``ci_low``,
    ``ci_high``, ``replications``."""
    d = daily if "replication" in daily.columns else daily.assign(replication=0)
    d = d.assign(week=d["day"] // 7)
    d = d[d.groupby(["week", "replication"])["day"].transform("size") == 7]
    per_rep = d.groupby(["week", "replication"], as_index=False)[column].mean()
    tidy = per_rep.rename(columns={column: "value"}).assign(metric=column, unit="")
    s = summarise(tidy, by=["week"]).sort_values("week").reset_index(drop=True)
    s[["ci_low", "ci_high"]] = s[["ci_low", "ci_high"]].clip(lower=0.0, upper=upper)
    s["day"] = s["week"] * 7 + 3.5
    return s


def _colours(names: list[str], baseline: str = "baseline") -> dict[str, str]:
    """A colour per scenario, the baseline grey, the others in palette order."""
    others = (CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)] for i in range(len(names)))
    return {name: BASELINE_COLOUR if name == baseline else next(others) for name in names}


def _category(i: int) -> tuple[str, str | None]:
    """The colour and hatching of the i-th category: each its own colour, then hatched."""
    return (CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)],
            None if i < len(CATEGORY_COLOURS) else "//")


def _as_mapping(tables, name: str = "") -> dict[str, pd.DataFrame]:
    return dict(tables) if isinstance(tables, Mapping) else {name: tables}


def delayed_days_by_pathway(metrics: pd.DataFrame, pathways: dict[str, str], path: Path,
                            title: str) -> plt.Figure:
    """Delayed bed-days per 30 days by pathway (``pathways``: key -> label) for one run, with
    95% CI error bars (see :func:`delayed_days_by_scenario`)."""
    return delayed_days_by_scenario({title: metrics}, pathways, path=path)


def fit_in_hospital_over_time(daily, warmup_days: float, path: Path | None = None,
                              title: str = "", labels: Mapping[str, str] | None = None,
                              baseline: str = "baseline") -> plt.Figure:
    """Medically fit patients still in hospital at midnight, as weekly means with a 95% CI
    band over replications, the warm-up shaded; ``daily`` is one run's daily table or a
    mapping scenario -> daily table (several lines on one chart)."""
    return _weekly_counts(_as_mapping(daily, title), "fit_in_hospital", warmup_days, path=path,
                          labels=labels, baseline=baseline,
                          ylabel="medically fit patients in hospital",
                          heading="Medically fit but still in hospital")


@styled
def scenario_comparison(table: pd.DataFrame, path: Path | None = None,
                        baseline: str = "baseline",
                        labels: Mapping[str, str] | None = None) -> plt.Figure:
    """Delayed bed-days per 30 days by scenario (mean, 95% CI), and each scenario's paired
    change from the baseline (95% CI), coloured by whether the interval excludes zero, with
    a legend for the colours. ``table``: :func:`sim.reporting.analysis.scenario_comparison`."""
    metric = "delayed_days_per_30d"
    entry = describe(metric)
    rows = table[table["metric"] == metric].reset_index(drop=True)
    n = int(rows["replications"].min())
    fig, (left, right) = plt.subplots(1, 2, figsize=(16, 1.0 * len(rows) + 3), sharey=True,
                                      gridspec_kw={"width_ratios": [1, 1.15]})
    y = np.arange(len(rows))[::-1]
    names = [scenario_label(s, labels) for s in rows["scenario"]]
    colours = [BASELINE_COLOUR if s == baseline else LEVEL_COLOUR for s in rows["scenario"]]
    left.barh(y, rows["mean"], color=colours, xerr=_errors(rows["mean"], rows["ci_low"],
                                                           rows["ci_high"]), capsize=5)
    for yi, value in zip(y, rows["mean"]):
        left.text(value * 0.02, yi, f"{value:,.0f}", va="center", ha="left", color="white",
                  fontweight="bold")
    left.set_yticks(y, names)
    left.set_xlabel(entry.unit)
    left.set_title("Delayed bed-days per 30 days")
    _change_bars(right, rows[rows["scenario"] != baseline], y[rows["scenario"] != baseline],
                 entry.unit)
    right.set_title(f"Change from {scenario_label(baseline, labels).lower()}")
    right.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))  # legible on a wall
    for ax in (left, right):
        ax.grid(axis="y", visible=False)
    fig.suptitle("What each scenario does to delayed discharges")
    fig.tight_layout()
    note(fig, f"{uncertainty(n)}. The change is paired replication by replication (common "
         "random numbers).")
    return fig


@styled
def response_curve(summary: pd.DataFrame, parameter: str, path: Path | None = None,
                   marks: Mapping[str, float] | None = None) -> plt.Figure:
    """Each metric of a response curve against the swept ``parameter``, with 95% CI bands;
    ``marks``: labelled values of the parameter to mark (e.g. ``{"baseline": 175}``)."""
    metrics = list(dict.fromkeys(summary["metric"]))
    n = int(summary["replications"].min())
    fig, axes = plt.subplots(1, len(metrics), figsize=(6.5 * len(metrics), 6), squeeze=False)
    for ax, metric, colour in zip(axes[0], metrics, PALETTE):
        entry = describe(metric)
        scale = 100 if entry.percent else 1
        s = summary[summary["metric"] == metric].sort_values(parameter)
        ax.plot(s[parameter], s["mean"] * scale, marker="o", markersize=8, color=colour)
        if n > 1:  # a share's interval is kept within 0 to 100%
            low, high = (s[c].clip(0, 1) if entry.percent else s[c] for c in ("ci_low", "ci_high"))
            ax.fill_between(s[parameter], low * scale, high * scale, alpha=0.25, color=colour,
                            lw=0)
        for label, value in (marks or {}).items():
            ax.axvline(value, color="#444444", ls=":", lw=1.5)
            ax.annotate(label, (value, 1), xycoords=("data", "axes fraction"), fontsize=12,
                        ha="left", va="top", xytext=(4, -4), textcoords="offset points")
        ax.set_xlabel(setting_label(parameter))
        unit = percent_unit(entry.unit) if entry.percent else entry.unit
        ax.set_title(_wrap(entry.label[:1].upper() + entry.label[1:], 32), fontsize=16)
        ax.set_ylabel(unit)
    fig.suptitle(f"Response to the number of {setting_label(parameter)}")
    fig.tight_layout()
    note(fig, uncertainty(n, "band") + " at each value (line: mean).")
    return fig


@styled
def weekend_rules(table: pd.DataFrame, path: Path | None = None,
                  labels: Mapping[str, str] | None = None,
                  baseline: str = "baseline") -> plt.Figure:
    """Mean delay by the weekday patients became medically fit, a bar per scenario with its
    95% CI (``table``: :func:`sim.reporting.analysis.weekend_rules`)."""
    n = int(table["replications"].min())
    fig, ax = plt.subplots(figsize=(13, 6.5))
    scenarios = _ordered(table["scenario"], labels)
    colours = _colours(scenarios, baseline)
    weekdays = [d for d in WEEKDAY_NAMES if d in set(table["weekday"])]
    width = 0.8 / max(len(scenarios), 1)
    for i, scenario in enumerate(scenarios):
        s = table[table["scenario"] == scenario].set_index("weekday").reindex(weekdays)
        x = np.arange(len(weekdays)) + (i - (len(scenarios) - 1) / 2) * width
        ax.bar(x, s["mean"], width * 0.95, color=colours[scenario],
               yerr=_errors(s["mean"], s["ci_low"], s["ci_high"]), capsize=3,
               label=scenario_label(scenario, labels))
    names = {"Mon": "Monday", "Tue": "Tuesday", "Wed": "Wednesday", "Thu": "Thursday",
             "Fri": "Friday", "Sat": "Saturday", "Sun": "Sunday"}
    ax.set_xticks(np.arange(len(weekdays)), [names.get(d, d) for d in weekdays])
    ax.set_xlabel("day of the week the patient became medically fit")
    ax.set_ylabel("mean delay to discharge (days)")
    ax.set_title("Delay by the day a patient became medically fit")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    note(fig, "Days from medically fit to leaving the acute bed. " + uncertainty(n) + ".")
    return fig


@styled
def delayed_days_by_scenario(metrics: Mapping[str, pd.DataFrame], pathways: Mapping[str, str],
                             path: Path | None = None, labels: Mapping[str, str] | None = None,
                             baseline: str = "baseline") -> plt.Figure:
    """Delayed bed-days per 30 days by pathway, a bar per scenario (``metrics``: scenario ->
    its tidy per-replication metrics), with 95% CI error bars."""
    names = list(metrics)
    colours = _colours(names, baseline)
    keys = list(pathways)
    fig, ax = plt.subplots(figsize=(12, 6.5))
    width = 0.8 / len(names)
    n = 0
    for i, name in enumerate(names):
        s = summarise_metrics(metrics[name], catalogue(Params())).set_index("metric")
        rows = s.reindex([f"delayed_days_per_30d.{k}" for k in keys])
        n = int(rows["replications"].max())
        x = np.arange(len(keys)) + (i - (len(names) - 1) / 2) * width
        ax.bar(x, rows["mean"], width * 0.95, color=colours[name],
               yerr=_errors(rows["mean"], rows["ci_low"], rows["ci_high"]),
               label=scenario_label(name, labels), capsize=4)
    ax.set_xticks(np.arange(len(keys)), [pathways[k].replace(": ", ":\n") for k in keys])
    ax.set_ylabel("delayed bed-days per 30 days")
    ax.set_title("Delayed-discharge bed-days by pathway")
    ax.grid(axis="x", visible=False)
    if len(names) > 1 or names[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    note(fig, "Days that medically fit patients spent in an acute bed, per 30 days. "
         + uncertainty(n) + ".")
    return fig


def acute_occupancy(daily, beds: int, warmup_days: float, path: Path | None = None,
                    labels: Mapping[str, str] | None = None,
                    baseline: str = "baseline") -> plt.Figure:
    """Patients in acute beds at midnight (weekly means, 95% CI band) against the number of
    acute beds; ``daily`` as for :func:`fit_in_hospital_over_time`."""
    return _weekly_counts(_as_mapping(daily), "in_hospital", warmup_days, path=path,
                          labels=labels, baseline=baseline,
                          ylabel="patients in acute beds", heading="Acute beds: occupancy "
                          "against capacity", capacity=beds)


@styled
def _weekly_counts(dailies: Mapping[str, pd.DataFrame], column: str, warmup_days: float,
                   path: Path | None = None, labels: Mapping[str, str] | None = None,
                   baseline: str = "baseline", ylabel: str = "", heading: str = "",
                   capacity: float | None = None) -> plt.Figure:
    """Weekly means of a midnight count over the run, a line and 95% CI band per scenario, the
    warm-up shaded; with ``capacity``, the capacity as a line and the axis zoomed to the
    measured period, so that the distance to full shows."""
    names = _ordered(dailies, labels)
    colours = _colours(names, baseline)
    fig, ax = plt.subplots(figsize=(13, 6.5))
    n, lows = 0, []
    alpha = 0.25 if len(names) <= 2 else 0.15
    for name in names:
        s = _weekly(dailies[name], column, upper=capacity)
        n = int(s["replications"].max())
        label = scenario_label(name, labels) or "mean"
        first = name == baseline or len(names) == 1
        ax.plot(s["day"], s["mean"], color=colours[name], label=label, zorder=5 if first else 3,
                ls="--" if first and len(names) > 1 else "-")
        if n > 1:
            ax.fill_between(s["day"], s["ci_low"], s["ci_high"], color=colours[name],
                            alpha=alpha, lw=0)
        measured = s[s["day"] > warmup_days]
        lows.append((measured["ci_low"] if n > 1 else measured["mean"]).min())
    if warmup_days > 0:
        ax.axvspan(0, warmup_days, color="#999999", alpha=0.15, lw=0,
                   label="warm-up (not measured)")
    ax.set_xlim(left=0)
    axis_note = ""
    if capacity is not None:
        ax.axhline(capacity, color="black", lw=3, zorder=2,  # under the lines that reach it
                   label=f"capacity: {capacity:,.0f} beds")
        bottom = _axis_start(np.nanmin(lows + [capacity]), capacity)
        ax.set_ylim(bottom=bottom, top=capacity + (capacity - bottom) * 0.12)
        if bottom > 0:
            axis_note = f" The vertical axis starts at {bottom:,.0f}."
    else:
        ax.set_ylim(bottom=0)
    ax.set_xlabel("day of the simulated period (weekly means)")
    ax.set_ylabel(f"{ylabel}\n(midnight count)")
    ax.set_title(heading)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    note(fig, "Each line: the mean over replications of each week's mean midnight count; "
         + uncertainty(n, "band") + "." + axis_note)
    return fig


def _axis_start(lowest: float, capacity: float) -> float:
    """Where an occupancy axis starts: a round number below the lowest value measured, and 0
    when that is under half the capacity (zooming would then exaggerate)."""
    if not np.isfinite(lowest) or lowest < capacity / 2:
        return 0.0
    span = max(capacity - lowest, 0.05 * capacity, 1.0)  # a full hospital: 5% of its beds
    step = 10 ** np.floor(np.log10(span))
    start = np.floor((lowest - span * 0.3) / step) * step
    return float(max(start, 0.0))


@styled
def change_from_baseline(table: pd.DataFrame, path: Path | None = None,
                         baseline: str = "baseline", labels: Mapping[str, str] | None = None,
                         metric: str = "delayed_days_per_30d") -> plt.Figure:
    """Each scenario's paired change in ``metric`` from the baseline with its 95% CI, coloured
    (with a legend) by whether the interval excludes zero."""
    entry = describe(metric)
    rows = table[(table["metric"] == metric) & (table["scenario"] != baseline)]
    rows = rows.reset_index(drop=True)
    n = int(rows["replications"].min()) if len(rows) else 0
    fig, ax = plt.subplots(figsize=(12, 1.0 * len(rows) + 3.2))
    y = np.arange(len(rows))[::-1]
    _change_bars(ax, rows, y, entry.unit, scale=100 if entry.percent else 1)
    ax.set_yticks(y, [scenario_label(s, labels) for s in rows["scenario"]])
    ax.grid(axis="y", visible=False)
    ax.set_title(f"Change from {scenario_label(baseline, labels).lower()}: {entry.label}")
    note(fig, f"{uncertainty(n)}. Paired replication by replication (common random numbers).")
    return fig


def _change_bars(ax: plt.Axes, rows: pd.DataFrame, y: np.ndarray, unit: str,
                 scale: float = 1.0) -> None:
    diff = rows["difference"].to_numpy(float) * scale
    low = rows["diff_ci_low"].to_numpy(float) * scale
    high = rows["diff_ci_high"].to_numpy(float) * scale
    colours = [BETTER if h < 0 else WORSE if lo > 0 else NO_CHANGE for lo, h in zip(low, high)]
    ax.barh(y, diff, color=colours, xerr=_errors(diff, low, high, floor=None), capsize=5)
    ax.axvline(0, color="black", lw=1.2)
    span = max(np.nanmax(np.abs(np.concatenate([low, high, diff]))) if len(diff) else 1, 1e-9)
    def signed(v: float) -> str:  # "+12", "-3"; never "-0"
        text = f"{v:+,.0f}" if span >= 20 else f"{v:+.2g}"
        return text[1:] if float(text.replace(",", "")) == 0 else text

    for yi, d, lo, hi in zip(y, diff, low, high):
        text = signed(d)
        if d == 0 and lo == 0 and hi == 0:
            text = "no change (same results)"
        elif not np.isnan(lo):
            text += f"  ({signed(lo)} to {signed(hi)})"
        ax.text(max(hi if not np.isnan(hi) else d, 0) + span * 0.04, yi, text, va="center",
                fontsize=13)
    ax.set_xlim(min(np.nanmin(np.concatenate([low, diff, [0]])) * 1.15, -span * 0.1),
                max(np.nanmax(np.concatenate([high, diff, [0]])), 0) + span * 0.9)
    ax.set_xlabel(f"change in {unit} (scenario minus baseline)")
    ax.legend(handles=[Patch(color=BETTER, label="fewer\n(95% CI below 0)"),
                       Patch(color=WORSE, label="more\n(95% CI above 0)"),
                       Patch(color=NO_CHANGE, label="no change the\nsimulation can detect\n"
                             "(95% CI includes 0)")],
              loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=13, labelspacing=1.0)


def percent_unit(unit: str) -> str:
    """The unit of a share, as a per cent: ``fraction of beds`` -> ``% of beds``."""
    return "%" + unit[len("fraction"):] if unit.startswith("fraction") else "%"


def _wrap(text: str, width: int) -> str:
    import textwrap
    return "\n".join(textwrap.wrap(text, width))


@styled
def delay_by_cause(tidy: pd.DataFrame, causes: Mapping[str, str], path: Path | None = None,
                   labels: Mapping[str, str] | None = None) -> plt.Figure:
    """Where the delayed bed-days come from: a bar per scenario stacked by cause (means), with
    the 95% CI of the total. ``tidy``: per-replication metrics with a ``scenario`` column;
    ``causes``: cause -> label (:func:`sim.core.catalogue.causes`)."""
    s = summarise_metrics(tidy, catalogue(Params()), by=["scenario"])
    scenarios = list(dict.fromkeys(tidy["scenario"]))
    total = s[s["metric"] == "delayed_days_per_30d"].set_index("scenario").reindex(scenarios)
    n = int(total["replications"].min())
    fig, ax = plt.subplots(figsize=(14, max(1.0 * len(scenarios) + 3, 0.65 * len(causes) + 1)))
    y = np.arange(len(scenarios))[::-1]
    left = np.zeros(len(scenarios))
    for i, (cause, label) in enumerate(causes.items()):
        values = (s[s["metric"] == f"delayed_days_per_30d.{cause}"].set_index("scenario")
                  .reindex(scenarios)["mean"].fillna(0).to_numpy())
        colour, hatch = _category(i)
        ax.barh(y, values, left=left, color=colour, hatch=hatch,
                label=_wrap(label[:1].upper() + label[1:], 26), edgecolor="white", lw=0.8)
        left += values
    ax.errorbar(total["mean"], y, xerr=_errors(total["mean"], total["ci_low"], total["ci_high"]),
                fmt="none", color="black", capsize=6, lw=1.5)
    ends = total["ci_high"].fillna(total["mean"]).to_numpy()
    for yi, value, end in zip(y, total["mean"], ends):
        ax.text(end + ends.max() * 0.02, yi, f"{value:,.0f}", va="center", fontsize=14,
                fontweight="bold")
    ax.set_xlim(0, ends.max() * 1.15)
    ax.set_yticks(y, [scenario_label(x, labels) for x in scenarios])
    ax.set_xlabel("delayed bed-days per 30 days")
    ax.set_title("Where the delay comes from")
    ax.grid(axis="y", visible=False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=13, labelspacing=0.8)
    note(fig, "Each delayed day is attributed to what the patient was waiting for. Segments: "
         f"means; black bar: 95% CI of the total; {n} replications.")
    return fig


@styled
def patient_flow(flows: pd.DataFrame, path: Path | None = None, title: str = "",
                 replications: int = 0, days: float = 0.0) -> plt.Figure:
    """A patient-flow (Sankey-style) diagram: bands from admission through the discharge
    pathways to where patients went, their widths the number of patients. ``flows``: columns
    ``stage`` (0, 1, ...), ``source``, ``target``, ``patients`` (mean per replication)."""
    layout = _FlowLayout(flows)
    fig, ax = plt.subplots(figsize=(15, 8))
    _flow_bands(ax, flows, layout)
    _flow_nodes(fig, ax, layout)
    ax.set_title("Patient flow" + (f": {title}" if title else ""))
    period = f"admitted in the {days:g} measured days" if days else "admitted"
    note(fig, f"Band widths and numbers: patients {period}, the mean of {replications} "
         "replications (means only: no intervals on this diagram). Step-down patients' "
         "onward place as planned.")
    return fig


class _FlowLayout:
    """Where a patient-flow diagram's nodes and bands go: the nodes of each column (admitted,
    the pathways, where patients went) with their sizes and tops, and where each band leaves
    its source and enters its target (in the order of their targets and sources, so that
    bands cross no more than they must)."""

    def __init__(self, flows: pd.DataFrame) -> None:
        self.stages = stages = sorted(flows["stage"].unique())
        first = flows.loc[flows["stage"] == stages[0], "source"]
        self.columns = [list(dict.fromkeys(first))] + [
            list(dict.fromkeys(flows.loc[flows["stage"] == s, "target"])) for s in stages]
        self.size = {(c, node): self._node_size(flows, c, node)
                     for c, nodes in enumerate(self.columns) for node in nodes}
        total = max(sum(self.size[c, n] for n in nodes) for c, nodes in enumerate(self.columns))
        self.gap = 0.07 * total
        self.width = 0.05 * (len(self.columns) - 1)
        heights = [sum(self.size[c, n] for n in nodes) + self.gap * (len(nodes) - 1)
                   for c, nodes in enumerate(self.columns)]
        self.tallest = max(heights)
        self.top: dict[tuple[int, str], float] = {}
        for c, nodes in enumerate(self.columns):
            cursor = (self.tallest + heights[c]) / 2
            for node in nodes:
                self.top[c, node] = cursor
                cursor -= self.size[c, node] + self.gap
        self.start: dict[tuple[int, str, str], float] = {}
        self.end: dict[tuple[int, str, str], float] = {}
        self._band_ends(flows)
        self.middle = 1 if len(self.columns) > 2 else 0

    def _node_size(self, flows: pd.DataFrame, c: int, node: str) -> float:
        out = flows[(flows["stage"] == c) & (flows["source"] == node)]["patients"].sum() \
            if c < len(self.stages) else 0.0
        into = flows[(flows["stage"] == c - 1) & (flows["target"] == node)]["patients"].sum() \
            if c > 0 else 0.0
        return max(out, into)

    def _band_ends(self, flows: pd.DataFrame) -> None:
        order = {(c, node): i for c, nodes in enumerate(self.columns)
                 for i, node in enumerate(nodes)}
        for stage in self.stages:
            rows = flows[(flows["stage"] == stage) & (flows["patients"] > 0)]
            for key, sort, place, side in (("source", "target", self.start, stage),
                                           ("target", "source", self.end, stage + 1)):
                for node, group in rows.groupby(key, sort=False):
                    other = stage + 1 if key == "source" else stage
                    cursor = self.top[side, node]
                    for row in sorted(group.itertuples(index=False),
                                      key=lambda r: order[other, getattr(r, sort)]):
                        place[stage, row.source, row.target] = cursor
                        cursor -= row.patients


def _flow_bands(ax: plt.Axes, flows: pd.DataFrame, layout: _FlowLayout) -> None:
    """The bands, coloured by the pathway they pass through."""
    colour = {node: _category(i)[0] for i, node in enumerate(layout.columns[layout.middle])}
    codes = [CurvePath.MOVETO, CurvePath.CURVE4, CurvePath.CURVE4, CurvePath.CURVE4,
             CurvePath.LINETO, CurvePath.CURVE4, CurvePath.CURVE4, CurvePath.CURVE4,
             CurvePath.CLOSEPOLY]
    for stage in layout.stages:
        for row in flows[flows["stage"] == stage].itertuples(index=False):
            h = row.patients
            if h <= 0:
                continue
            y0 = layout.start[stage, row.source, row.target]
            y1 = layout.end[stage, row.source, row.target]
            x0, x1 = stage + layout.width, stage + 1
            xm = (x0 + x1) / 2
            verts = [(x0, y0), (xm, y0), (xm, y1), (x1, y1), (x1, y1 - h), (xm, y1 - h),
                     (xm, y0 - h), (x0, y0 - h), (x0, y0)]
            key = row.target if stage + 1 == layout.middle else row.source
            ax.add_patch(PathPatch(CurvePath(verts, codes), facecolor=colour.get(key, "#999999"),
                                   alpha=0.45, lw=0))


def _flow_nodes(fig: plt.Figure, ax: plt.Axes, layout: _FlowLayout) -> None:
    """The nodes, their labels (patients and share of admissions) and the columns' heads."""
    columns, size, top, width, gap = (layout.columns, layout.size, layout.top, layout.width,
                                      layout.gap)
    admitted = sum(size[0, n] for n in columns[0])
    bottom, ceiling = -gap * 0.5, layout.tallest + gap * 1.6
    # a label (two lines of 13-point type, about 0.55 inch with its padding) in data units
    line_pair = (ceiling - bottom) * 0.55 / (fig.get_figheight() * ax.get_position().height)
    for c, nodes in enumerate(columns):
        centres = _spread([top[c, node] - size[c, node] / 2 for node in nodes], line_pair,
                          bottom + line_pair / 2)
        for node, y in zip(nodes, centres):
            h = size[c, node]
            ax.add_patch(Rectangle((c, top[c, node] - h), width, h, color="#333333"))
            share = f" ({h / admitted:.0%})" if admitted and c > 0 else ""
            text = f"{node}\n{h:,.0f}{share}"
            if c == len(columns) - 1:
                ax.text(c + width + 0.02, y, text, va="center", ha="left", fontsize=13)
            elif c == 0:
                ax.text(c - 0.02, y, text, va="center", ha="right", fontsize=14,
                        fontweight="bold")
            else:
                ax.text(c + width + 0.02, y, text, va="center", ha="left", fontsize=13,
                        bbox={"facecolor": "white", "alpha": 0.85, "lw": 0, "pad": 1.5})
    ax.set_xlim(-0.45, len(columns) - 1 + 0.75)
    ax.set_ylim(bottom, ceiling)
    ax.axis("off")
    heads = ["Admitted", "Discharge pathway", "Where they went"]
    for c in range(len(columns)):
        ax.text(c + width / 2, layout.tallest + gap * 0.5, heads[c] if c < len(heads) else "",
                ha="center", va="bottom", fontsize=15, fontweight="bold", color="#444444")


def _spread(centres: list[float], apart: float, floor: float) -> list[float]:
    """Label positions near ``centres`` (top to bottom) at least ``apart`` from each other and
    not below ``floor``: each pushed down from the one above, then, from the bottom, lifted
    off the floor and off the one below."""
    out: list[float] = []
    for y in centres:
        out.append(min(y, out[-1] - apart) if out else y)
    below = floor - apart
    for i in reversed(range(len(out))):
        out[i] = below = max(out[i], below + apart)
    return out


@styled
def cost_curve(table: pd.DataFrame, path: Path | None = None, price_year: str = "") -> plt.Figure:
    """For each lever, the change in the system's total cost a year from the baseline's against
    the lever's capacity (mean and 95% band), with its part spent on delayed bed-days, the
    baseline's capacity and where the total is lowest. ``table``:
    :func:`sim.reporting.money.cost_curve_table`."""
    levers = list(dict.fromkeys(table["lever"]))
    n = int(table["replications"].min())
    fig, axes = plt.subplots(1, len(levers), figsize=(5.6 * len(levers), 6.2), squeeze=False)
    for ax, lever_name in zip(axes[0], levers):
        s = table[table["lever"] == lever_name].sort_values("capacity")
        x = s["capacity"].to_numpy(float)
        base = s.loc[s["baseline"]].iloc[0]
        ax.fill_between(x, (s["total_low"] - base["total"]) / 1e6,
                        (s["total_high"] - base["total"]) / 1e6, color=PALETTE[0], alpha=0.25,
                        lw=0, label="95% CI")
        ax.plot(x, (s["total"] - base["total"]) / 1e6, marker="o", color=PALETTE[0],
                label="total cost")
        ax.plot(x, (s["delayed"] - base["delayed"]) / 1e6, ls="--", color=PALETTE[5],
                label="of which delayed bed-days")
        best = s.loc[s["total"].idxmin()]
        ax.plot([best["capacity"]], [(best["total"] - base["total"]) / 1e6], marker="*",
                markersize=20, color="black", ls="none",
                label=f"lowest: {best['capacity']:,.0f}")
        ax.axvline(float(base["capacity"]), color="#444444", ls=":", lw=1.5, label="baseline")
        ax.axhline(0, color="#444444", lw=0.8)
        ax.set_xlabel(str(s["label"].iloc[0]).lower())
        ax.set_ylabel("change from the baseline, £ million a year")
        ax.set_title(_wrap(str(s["label"].iloc[0]), 28), fontsize=16)
        ax.legend(fontsize=10, loc="best")
    year = f" ({price_year} prices)" if price_year else ""
    fig.suptitle(f"Total system cost against each lever's capacity{year}")
    fig.tight_layout()
    note(fig, uncertainty(n, "band") + " of the total at each value; total = community "
         "capacity provided + the discharge team + programmes + delayed bed-days; people left "
         "waiting in the community are not costed.")
    return fig


@styled
def budget(trials: pd.DataFrame, front: pd.DataFrame, best: pd.DataFrame,
           singles: pd.DataFrame, baseline, objective: str, amount: float,
           path: Path | None = None, price_year: str = "") -> plt.Figure:
    """A budget search: every mix tried (spend a year against the objective), the Pareto front
    of the two, the best mixes run again with the 95% interval of their change from the
    baseline (paired), the whole budget on each single lever, and the baseline."""
    money = objective == "total_cost"
    scale = 1e6 if money else 1.0
    unit = "total system cost, £ million a year" if money else "delayed bed-days per 30 days"
    fig, ax = plt.subplots(figsize=(15, 7.5))
    ax.scatter(trials["spend"] / 1e6, trials["objective"] / scale, s=30, color="#BBBBBB",
               label="mixes tried", zorder=2)
    ax.plot(front["spend"] / 1e6, front["objective"] / scale, color=PALETTE[0], lw=2,
            drawstyle="steps-post", label="Pareto front of the mixes tried", zorder=3)
    base = float(np.mean(baseline.total_cost if money else baseline.delayed))
    change = "net_cost" if money else "delayed_change"
    mean = (base + best[change]) / scale
    low, high = (base + best[f"{change}_low"]) / scale, (base + best[f"{change}_high"]) / scale
    ax.errorbar(best["spend"] / 1e6, mean, yerr=[mean - low, high - mean], fmt="o",
                color=PALETTE[2], capsize=4, zorder=4,
                label="best mixes, run again (95% CI of the change)")
    top = best.iloc[0]
    ax.plot([top["spend"] / 1e6], [mean.iloc[0]], marker="*", markersize=22, color="black",
            ls="none", label=f"best: {_wrap(top['mix'], 48)}", zorder=5)
    for i, row in enumerate(singles.to_dict("records")):
        ax.plot([row["single_spend"] / 1e6], [row["single_objective"] / scale],
                marker="DsP^vX"[i % 6], markersize=10, color=PALETTE[(i + 3) % len(PALETTE)],
                ls="none", label=f"all on: {row['single']}", zorder=4)
    ax.axhline(base / scale, color="#444444", ls=":", lw=1.5, label="baseline (nothing bought)")
    ax.axvline(amount / 1e6, color="#444444", ls="--", lw=1, label="the budget")
    ax.set_xlabel("spend, £ million a year")
    ax.set_ylabel(unit)
    year = f" ({price_year} prices)" if price_year else ""
    ax.set_title(f"Where the next pound goes: {_pounds_title(amount)} a year{year}")
    ax.legend(fontsize=11, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    n, searched = int(best["replications"].min()), int(trials["replications"].min())
    note(fig, f"Grey: each of the {len(trials)} mixes tried, its mean over {searched} "
         f"replications. Best mixes and single levers: mean over {n} replications on common "
         "random numbers; bars: 95% CI of the best mixes' change from the baseline, paired.")
    fig.tight_layout()
    return fig


def _pounds_title(value: float) -> str:
    return f"£{value / 1e6:.3g}m" if value >= 1e6 else f"£{value / 1e3:.3g}k"


@styled
def warmup(series: pd.DataFrame, suggested: int, configured: float, path: Path) -> plt.Figure:
    """The daily midnight count of medically fit patients from an empty hospital (mean over
    replications, 95% CI band), its 7-day moving average and cumulative mean, the MSER-5
    warm-up and the configured one."""
    n = int(series["replications"].max())
    fig, ax = plt.subplots(figsize=(13, 6.5))
    ax.plot(series["day"], series["mean"], color="#BBBBBB", lw=1,
            label="daily mean over replications")
    ax.fill_between(series["day"], series["ci_low"], series["ci_high"], color="#BBBBBB",
                    alpha=0.3, lw=0, label="95% CI")
    ax.plot(series["day"], series["weekly_mean"], color=PALETTE[0], label="7-day moving average")
    ax.plot(series["day"], series["cumulative_mean"], color=PALETTE[5],
            label="cumulative mean from day 0")
    ax.axvline(suggested, color="black", ls="--", label=f"MSER-5 warm-up: {suggested} days")
    ax.axvline(configured, color=PALETTE[2], ls=":", lw=3,
               label=f"configured: {configured:g} days")
    ax.set_xlabel("day of the simulated period")
    ax.set_ylabel("medically fit patients in hospital\n(midnight count)")
    ax.set_title("Warm-up: how long until the hospital is typically full")
    ax.legend(loc="lower right")
    note(fig, uncertainty(n, "band") + " of the daily mean.")
    return fig


@styled
def validation(table: pd.DataFrame, path: Path) -> plt.Figure:
    """Each validation case's simulated mean relative to its reference value, with its
    (Bonferroni-adjusted) confidence interval; blue when the reference lies inside it."""
    scale = table["reference"].abs().where(table["reference"].abs() > 0, 1.0)
    error = (table["simulated_mean"] - table["reference"]) / scale * 100
    low = (table["simulated_mean"] - table["ci_low"]) / scale * 100
    high = (table["ci_high"] - table["simulated_mean"]) / scale * 100
    y = np.arange(len(table))[::-1]
    fig, ax = plt.subplots(figsize=(14, 0.55 * len(table) + 2))
    passed = table["pass"].to_numpy(bool)
    for mask, colour, label in [(passed, BETTER, "passes"), (~passed, WORSE, "fails")]:
        if mask.any():
            ax.errorbar(error[mask], y[mask], xerr=[low[mask], high[mask]], fmt="o",
                        color=colour, capsize=3, label=label)
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(y, [f"{c}: {q}" for c, q in zip(table["case"], table["quantity"])], fontsize=11)
    level = float(table["ci_level"].iloc[0]) * 100
    ax.set_xlabel("simulated minus reference (% of reference)")
    n = int(table["replications"].min())
    ax.set_title(f"Validation: {int(table['pass'].sum())} of {len(table)} cases pass")
    ax.grid(axis="y", visible=False)
    ax.legend(loc="lower right")
    note(fig, f"At least {n} replications per case; bars: {level:.2f}% confidence interval per "
         "case, so that all hold together with 99% confidence.")
    return fig


def calibration_fit(fit_table: pd.DataFrame, path: Path, replications: int,
                    title: str = "Calibration fit") -> None:
    """One row per calibration target (the fit table of :mod:`sim.running.calibration`): the
    model mean with its 95% CI (dot and bar; blue within tolerance, vermilion not) against the
    target value (black line) and its tolerance band (grey), each row on its own axis in the
    target's unit."""
    rows = fit_table.to_dict("records")
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 0.85 * len(rows) + 1.3), squeeze=False)
    for ax, row in zip(axes[:, 0], rows):
        value, tolerance, mean = row["value"], row["tolerance"], row["model_mean"]
        low, high = row["ci_low"], row["ci_high"]
        ax.axvspan(value - tolerance, value + tolerance, color="grey", alpha=0.25, lw=0)
        ax.axvline(value, color="black", lw=1.2)
        has_ci = np.isfinite(low) and np.isfinite(high)
        colour = "#0072B2" if row["within_tolerance"] else "#D55E00"
        ax.errorbar([mean], [0], xerr=[[mean - low], [high - mean]] if has_ci else None,
                    fmt="o", color=colour, capsize=4)
        shown = [value - tolerance, value + tolerance, mean] + ([low, high] if has_ci else [])
        shown = [x for x in shown if np.isfinite(x)]
        span = max(shown) - min(shown) or abs(value) or 1.0
        ax.set_xlim(min(shown) - 0.1 * span, max(shown) + 0.1 * span)
        ax.set_ylim(-1, 1)
        ax.set_yticks([])
        unit = row.get("unit") or ""
        ax.set_title(f"{row['target']}: target {value:.4g} ± {tolerance:.4g}, model "
                     f"{mean:.4g}" + (f"  [{unit}]" if unit else ""), loc="left", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    within = int(fit_table["within_tolerance"].sum())
    fig.suptitle(f"{title}: {within} of {len(rows)} targets within tolerance\nmodel mean and 95% "
                 f"CI over {replications} replications (dot, bar) against the target (line) "
                 "and its tolerance (band)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


@styled
def fitted_sets(table: pd.DataFrame, path: Path | None = None,
                labels: Mapping[str, str] | None = None) -> plt.Figure:
    """Each scenario's change in delayed bed-days from its own baseline, on each of the best
    fitted parameter sets (one marker and 95% CI per set), coloured as the change from baseline
    is: does the conclusion hold whichever set is the real system?"""
    entry = describe("delayed_days_per_30d")
    order = table.groupby("scenario")["change"].mean().sort_values().index[::-1]
    sets = sorted(table["set"].unique())
    n = int(table["replications"].min())
    fig, ax = plt.subplots(figsize=(12, 0.9 * len(order) + 3.2))
    offsets = np.linspace(-0.3, 0.3, len(sets)) if len(sets) > 1 else np.zeros(1)
    for y, scenario in enumerate(order):
        mine = table[table["scenario"] == scenario].set_index("set")
        for offset, rank in zip(offsets, sets):
            row = mine.loc[rank]
            low, high, change = row["ci_low"], row["ci_high"], row["change"]
            colour = BETTER if high < 0 else WORSE if low > 0 else NO_CHANGE
            ax.errorbar([change], [y + offset], xerr=[[change - low], [high - change]],
                        fmt="o", color=colour, capsize=3, ms=7)
    ax.axvline(0, color="black", lw=1.2)
    ax.set_yticks(range(len(order)), [scenario_label(s, labels) for s in order])
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(f"change in {entry.unit} (scenario minus that set's baseline)")
    ax.set_title(f"The scenarios on each of the {len(sets)} best fitted parameter sets")
    ax.legend(handles=[Patch(color=BETTER, label="fewer\n(95% CI below 0)"),
                       Patch(color=WORSE, label="more\n(95% CI above 0)"),
                       Patch(color=NO_CHANGE, label="no change the\nsimulation can detect")],
              loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=13, labelspacing=1.0)
    note(fig, f"{uncertainty(n)}; one marker per fitted set (best fit at the top of each "
         "group). Paired replication by replication (common random numbers).")
    return fig


CIRCLE = (
    ("1. Delay", ("delayed_days_per_30d",)),
    ("2. Escalation of need", ("harm.escalations",)),
    ("3. More demand for scarce places", ("harm.escalated_to.step_down",
                                         "harm.escalated_to.care_home")),
    ("4. Longer waits for them", ("step_down.wait_mean.hospital", "care_home.wait_mean.hospital")),
)
"""The circle of harm, step by step, and the metrics that show each step."""


@styled
def harm_circle(table: pd.DataFrame, path: Path | None = None,
                labels: Mapping[str, str] | None = None) -> plt.Figure:
    """The circle of harm (docs/harm.md): delay, escalation of need, more demand for scarce
    places, longer waits for them, and so more delay; each step a panel of its metrics by
    scenario with 95% CIs, the panels joined clockwise by arrows. ``table``: a scenario
    comparison (``scenario``, ``metric``, ``mean``, ``ci_low``, ``ci_high``,
    ``replications``)."""
    scenarios = _ordered(table["scenario"].unique(), labels)
    colours = _colours(scenarios)
    n = int(table["replications"].min())
    fig, axes = plt.subplots(2, 2, figsize=(16, 10.5))
    panels = [axes[0, 0], axes[0, 1], axes[1, 1], axes[1, 0]]  # clockwise
    for ax, (title, metrics) in zip(panels, CIRCLE):
        rows = [(m, s) for m in metrics for s in scenarios]
        y = np.arange(len(rows))[::-1]
        for yi, (metric, scenario) in zip(y, rows):
            row = table[(table["metric"] == metric) & (table["scenario"] == scenario)]
            if row.empty:
                continue
            r = row.iloc[0]
            ax.barh(yi, r["mean"], color=colours[scenario],
                    xerr=_errors(np.array([r["mean"]]), np.array([r["ci_low"]]),
                                 np.array([r["ci_high"]])), capsize=4)
        ax.set_yticks(y, [scenario_label(s, labels) for _, s in rows], fontsize=12)
        ax.grid(axis="y", visible=False)
        entries = [describe(m) for m in metrics]
        ax.set_title(title, loc="left", fontweight="bold")
        ax.set_xlabel(_wrap(" | ".join(f"{e.label} ({e.unit})" for e in entries), 60),
                      fontsize=12)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        if len(metrics) > 1:  # which block of bars is which metric, in room kept on the right
            ax.set_xlim(0, ax.get_xlim()[1] * 1.9)
            for k, entry in enumerate(entries):
                ax.axhline(len(scenarios) * k - 0.5, color="#999999", lw=0.8)
                ax.text(0.99, len(scenarios) * (len(metrics) - 1 - k) + len(scenarios) - 0.7,
                        _wrap(entry.label.split(",")[0], 24), transform=ax.get_yaxis_transform(),
                        ha="right", va="top", fontsize=11, color="#444444")
    fig.tight_layout(rect=(0.02, 0.04, 0.98, 0.92))
    arrows = [((0.5, 0.75), (0.53, 0.75)), ((0.75, 0.52), (0.75, 0.47)),
              ((0.5, 0.25), (0.47, 0.25)), ((0.25, 0.47), (0.25, 0.52))]
    for start, end in arrows:
        fig.add_artist(FancyArrowPatch(start, end, transform=fig.transFigure,
                                       arrowstyle="-|>", mutation_scale=30, color="#A53B3B",
                                       lw=3))
    fig.suptitle("The circle of harm: waiting deconditions patients, who then need scarcer "
                 "places, and wait longer for them", fontsize=17)
    note(fig, f"{uncertainty(n)}. With the harm of waiting switched on in every scenario "
         "(docs/harm.md).")
    return fig


@styled
def forecast(table: pd.DataFrame, path: Path | None = None, title: str = "",
             change_days: Mapping[str, list[float]] | None = None,
             beds: float | None = None) -> plt.Figure:
    """The forecast from a snapshot, one panel per daily metric (medically fit in hospital,
    occupied beds, delayed bed-days): each scenario's mean over replications with its 80%
    prediction band (and the first scenario's 95% band, lighter), by date; a dotted line on
    each day a scenario's dated change takes effect. ``table``: :func:`sim.running.forecast.
    bands` with a ``scenario`` column (the first is the one without changes)."""
    panels = {"fit_in_hospital": ("Medically fit but still in hospital", "patients\n(midnight count)"),
              "occupied_beds": ("Occupied acute beds", "beds\n(midnight count)"),
              "delayed_bed_days": ("Delayed bed-days", "bed-days\nin the day")}
    names = list(dict.fromkeys(table["scenario"]))
    colours = {name: PALETTE[0] if i == 0 else PALETTE[5 if i == 1 else i]
               for i, name in enumerate(names)}
    fig, axes = plt.subplots(len(panels), 1, figsize=(13, 13), sharex=True)
    n = int(table["replications"].max())
    axis_note = ""
    for ax, (metric, (heading, unit)) in zip(axes, panels.items()):
        for i, name in enumerate(names):
            rows = table[(table["scenario"] == name) & (table["metric"] == metric)]
            dates = pd.to_datetime(rows["date"])
            colour = colours[name]
            if i == 0:
                ax.fill_between(dates, rows["p2.5"], rows["p97.5"], color=colour, alpha=0.12,
                                lw=0, label=f"{name}: 95% band")
            ax.fill_between(dates, rows["p10"], rows["p90"], color=colour,
                            alpha=0.28 if i == 0 else 0.22, lw=0, label=f"{name}: 80% band")
            ax.plot(dates, rows["mean"], color=colour, ls="-" if i == 0 else "--",
                    label=f"{name}: mean", zorder=5 - i)
            start = pd.to_datetime(rows["date"].iloc[0])
            for day in (change_days or {}).get(name, []):
                ax.axvline(start + pd.Timedelta(days=day), color=colour, ls=":", lw=2.5,
                           label=f"{name}: from this day" if metric == "fit_in_hospital"
                           else None)
        ax.set_title(heading, loc="left")
        ax.set_ylabel(unit)
        if metric == "occupied_beds" and beds is not None:
            ax.axhline(beds, color="black", lw=2.5)
            ax.annotate(f"acute beds: {beds:,.0f}", (1.0, beds), xycoords=("axes fraction",
                        "data"), xytext=(6, 0), textcoords="offset points", va="center")
            rows = table[table["metric"] == metric]
            bottom = _axis_start(float(rows["p2.5"].min()), beds)
            ax.set_ylim(bottom=bottom, top=beds + (beds - bottom) * 0.08)
            if bottom > 0:
                axis_note = f" The occupied beds' axis starts at {bottom:,.0f}."
        else:
            ax.set_ylim(bottom=0)
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.autofmt_xdate()
    fig.suptitle(title or "The next weeks from today's snapshot")
    fig.tight_layout()
    lines = (f"{n} replications from the snapshot, no warm-up. Bands: 80% (10th-90th "
             "percentile) and 95% (2.5th-97.5th) of the replications' values each day: where "
             "the day's number is forecast to fall (prediction bands, not confidence intervals "
             "of the mean)." + axis_note)
    note(fig, lines)
    return fig
