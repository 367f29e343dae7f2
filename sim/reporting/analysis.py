"""Analyses of a collected sweep: scenario comparison, capacity response curves, weekend rules.

Each takes the tidy table from :func:`sim.running.sweep.collect` and writes a table (CSV and Markdown)
and a chart into a folder. Scenario differences are paired: replication k of every scenario runs
on the same random numbers, so the difference is taken replication by replication and its 95%
confidence interval is far narrower than that of two independent means.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sim.running.files import write_atomic, write_csv
from sim.reporting.charts import save_figure
from sim.core.catalogue import WEEKDAY_NAMES
from sim.reporting.stats import estimate, summarise

KEY_METRICS = {
    "delayed_days_per_30d": "delayed bed-days per 30 days",
    "delay_mean.all": "mean delay, all discharges (days)",
    "delay_mean.p1": "mean delay, pathway 1 (days)",
    "delay_mean.p3": "mean delay, pathway 3 (days)",
    "fit_in_hospital_midnight": "medically fit in hospital at midnight (patients)",
    "acute_occupancy": "acute bed occupancy (fraction)",
    "bed_wait_mean": "mean wait for an acute bed (days)",
    "homecare.utilisation": "homecare utilisation (fraction)",
}


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


def _markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "---|" * len(table.columns)
    body = ["| " + " | ".join(_text(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def _text(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        # three significant figures below 100 (1.38, 0.924), one decimal above (2,071.1)
        return "-" if np.isnan(value) else f"{value:.3g}" if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


def write_table(table: pd.DataFrame, folder: Path, name: str, note: str) -> None:
    """``name.csv`` and ``name.md`` (the note, then the table in Markdown)."""
    write_csv(table, folder / f"{name}.csv")
    write_atomic(folder / f"{name}.md", lambda p: p.write_text(note + "\n\n" + _markdown(table)))


def scenario_comparison(tidy: pd.DataFrame, folder: Path, baseline: str = "baseline") -> pd.DataFrame:
    """Every scenario against the baseline: a table of key metrics (mean, 95% CI, paired
    difference and its CI) and a bar chart of delayed bed-days per 30 days."""
    folder = Path(folder)
    tidy = tidy[tidy["metric"].isin(KEY_METRICS)]
    summary = summarise(tidy, by=["scenario"])
    diffs = paired_differences(tidy, baseline)
    table = summary.merge(diffs, on=["scenario", "metric"], how="left")
    order = [baseline] + sorted(s for s in table["scenario"].unique() if s != baseline)
    table["scenario"] = pd.Categorical(table["scenario"], order, ordered=True)
    table["metric"] = pd.Categorical(table["metric"], list(KEY_METRICS), ordered=True)
    table = table.sort_values(["metric", "scenario"]).reset_index(drop=True)
    table = table[["metric", "unit", "scenario", "mean", "ci_low", "ci_high", "difference",
                   "diff_ci_low", "diff_ci_high", "replications"]]
    n = int(table["replications"].min())
    write_table(table, folder, "scenario_comparison",
                 f"# Scenario comparison\n\nMean and 95% CI over {n} replications per scenario; "
                 f"difference = scenario - {baseline}, paired on common random numbers, with its "
                 "95% CI. A difference whose CI excludes 0 is a real effect of the scenario.")

    rows = table[table["metric"] == "delayed_days_per_30d"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(len(rows))
    labels = [str(s) for s in rows["scenario"]]
    left.bar(x, rows["mean"], yerr=[rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]],
             capsize=5, color=["#777777"] + ["#3b6ea5"] * (len(rows) - 1))
    left.set_xticks(x, labels, rotation=30, ha="right")
    left.set_ylabel("delayed bed-days per 30 days")
    left.set_title("Delayed discharge bed-days (mean, 95% CI)", fontsize=10)
    others = rows[rows["scenario"] != baseline]
    xo = np.arange(len(others))
    colours = ["#3a8a4a" if h < 0 else "#a53b3b" if lo > 0 else "#999999"
               for lo, h in zip(others["diff_ci_low"], others["diff_ci_high"])]
    right.bar(xo, others["difference"], color=colours,
              yerr=[others["difference"] - others["diff_ci_low"],
                    others["diff_ci_high"] - others["difference"]], capsize=5)
    right.axhline(0, color="black", lw=0.8)
    right.set_xticks(xo, [str(s) for s in others["scenario"]], rotation=30, ha="right")
    right.set_ylabel("change in delayed bed-days per 30 days")
    right.set_title(f"Change from {baseline} (paired difference, 95% CI)", fontsize=10)
    for ax in (left, right):
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Scenario comparison: {n} replications per scenario on common random numbers",
                 fontsize=11)
    save_figure(fig, folder / "scenario_comparison.png")
    return table


def response_curve(tidy: pd.DataFrame, folder: Path, parameter: str) -> pd.DataFrame:
    """Delayed bed-days and acute occupancy as ``parameter`` varies, with 95% CI bands."""
    folder = Path(folder)
    metrics = {"delayed_days_per_30d": "delayed bed-days per 30 days",
               "acute_occupancy": "acute bed occupancy (fraction of beds)",
               "delay_mean.p1": "mean delay, pathway 1 (days)"}
    summary = summarise(tidy[tidy["metric"].isin(metrics)], by=[parameter])
    summary = summary.sort_values(["metric", parameter]).reset_index(drop=True)
    n = int(summary["replications"].min())
    write_table(summary, folder, "response_curve",
                 f"# Response to {parameter}\n\nMean and 95% CI over {n} replications per value.")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4))
    for ax, (metric, label) in zip(axes, metrics.items()):
        s = summary[summary["metric"] == metric]
        ax.plot(s[parameter], s["mean"], marker="o", color="#3b6ea5")
        ax.fill_between(s[parameter], s["ci_low"], s["ci_high"], alpha=0.25, color="#3b6ea5",
                        label="95% CI")
        ax.set_xlabel(parameter)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Response to {parameter} ({n} replications per point; band: 95% CI)", fontsize=11)
    fig.tight_layout()
    save_figure(fig, folder / "response_curve.png")
    return summary


def weekend_rules(tidy: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """Mean delay by the weekday on which patients became medically fit, per scenario."""
    folder = Path(folder)
    names = {f"delay_mean.fit_{d}": d for d in WEEKDAY_NAMES}
    summary = summarise(tidy[tidy["metric"].isin(names)], by=["scenario"])
    summary["weekday"] = pd.Categorical(summary["metric"].map(names), list(WEEKDAY_NAMES),
                                        ordered=True)
    summary = summary.sort_values(["scenario", "weekday"]).reset_index(drop=True)
    table = summary[["scenario", "weekday", "mean", "ci_low", "ci_high", "replications"]]
    n = int(table["replications"].min())
    write_table(table, folder, "weekend_rules",
                 "# Delay by the day patients became medically fit\n\nMean days from medically "
                 f"fit to leaving the acute bed, 95% CI over {n} replications.")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    scenarios = list(table["scenario"].unique())
    width = 0.8 / max(len(scenarios), 1)
    for i, scenario in enumerate(scenarios):
        s = table[table["scenario"] == scenario]
        x = np.arange(7) + (i - (len(scenarios) - 1) / 2) * width
        ax.bar(x, s["mean"], width, yerr=[s["mean"] - s["ci_low"], s["ci_high"] - s["mean"]],
               capsize=3, label=scenario)
    ax.set_xticks(np.arange(7), WEEKDAY_NAMES)
    ax.set_xlabel("day of the week the patient became medically fit")
    ax.set_ylabel("mean delay to discharge (days)")
    ax.set_title(f"Delay by day of becoming medically fit ({n} replications; 95% CI)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    save_figure(fig, folder / "weekend_rules.png")
    return table


ANALYSES = {"scenario_comparison": scenario_comparison, "weekend_rules": weekend_rules}
"""Analyses by name, for experiment configs (``response_curve`` also needs a parameter)."""


class AnalysisError(ValueError):
    """An analysis that does not fit the sweep it was asked to analyse."""


def _one_job_per(tidy: pd.DataFrame, key: str, name: str) -> None:
    """Refuse to pool jobs: each ``key`` value must be one job, or its replications would be
    averaged across different systems (and paired wrongly)."""
    if tidy.groupby([key, "replication", "metric"]).size().max() > 1:
        fixed = {"job", "scenario", key, "replication", "metric", "value", "unit"}
        varied = [c for c in tidy.columns if c not in fixed and tidy[c].nunique() > 1]
        raise AnalysisError(f"analysis={name} needs one job per {key}; this sweep also varies "
                            + (", ".join(varied) or "something else") + ": sweep it separately")


def run_analysis(name: str, tidy: pd.DataFrame, folder: Path, parameter: str | None = None) -> None:
    if name == "response_curve":
        swept = [c for c in tidy.columns if c not in ("job", "scenario", "replication",
                                                      "metric", "value", "unit")]
        if parameter not in swept:
            raise AnalysisError(f"analysis response_curve: parameter={parameter!r} is not "
                                "allowed: one of the swept overrides "
                                + (", ".join(swept) or "(none: sweep a setting)"))
        _one_job_per(tidy, parameter, name)
        response_curve(tidy, folder, parameter)
    elif name in ANALYSES:
        _one_job_per(tidy, "scenario", name)
        ANALYSES[name](tidy, folder)
    else:
        raise AnalysisError(f"analysis={name!r} is not allowed: one of response_curve, "
                            + ", ".join(ANALYSES))


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


def warmup_analysis(daily: pd.DataFrame, folder: Path, current_warmup: float) -> int:
    """Chart of the daily midnight count of medically fit patients (mean over replications),
    its cumulative mean and a 7-day moving average, with the MSER-5 warm-up marked.
    Returns the suggested warm-up in days."""
    folder = Path(folder)
    s = summarise(daily.rename(columns={"fit_in_hospital": "value"}).assign(metric="fit",
                                                                          unit="patients"),
                  by=["day"])
    n = int(s["replications"].max())
    suggested = mser5(s["mean"].to_numpy())
    weekly = pd.Series(s["mean"].to_numpy()).rolling(7, center=True).mean()
    cumulative = np.cumsum(s["mean"].to_numpy()) / np.arange(1, len(s) + 1)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(s["day"], s["mean"], color="#bbbbbb", lw=0.8, label="daily mean over replications")
    ax.fill_between(s["day"], s["ci_low"], s["ci_high"], color="#bbbbbb", alpha=0.3,
                    label="95% CI")
    ax.plot(s["day"], weekly, color="#3b6ea5", lw=1.5, label="7-day moving average")
    ax.plot(s["day"], cumulative, color="#a53b3b", lw=1.5, label="cumulative mean from day 0")
    ax.axvline(suggested, color="black", ls="--", label=f"MSER-5 warm-up: {suggested} days")
    ax.axvline(current_warmup, color="#3a8a4a", ls=":", label=f"configured: {current_warmup:g} days")
    ax.set_xlabel("day of the run")
    ax.set_ylabel("medically fit patients in hospital at midnight")
    ax.set_title(f"Warm-up analysis ({n} replications; band: 95% CI)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, folder / "warmup.png")
    return suggested


def validation_chart(table: pd.DataFrame, path: Path) -> None:
    """Each validation case's simulated mean relative to its reference value, with its
    (Bonferroni-adjusted) confidence interval; green when the reference lies inside it."""
    scale = table["reference"].abs().where(table["reference"].abs() > 0, 1.0)
    error = (table["simulated_mean"] - table["reference"]) / scale * 100
    low = (table["simulated_mean"] - table["ci_low"]) / scale * 100
    high = (table["ci_high"] - table["simulated_mean"]) / scale * 100
    y = np.arange(len(table))[::-1]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(table) + 1.5))
    passed = table["pass"].to_numpy(bool)
    for mask, colour in [(passed, "#3a8a4a"), (~passed, "#a53b3b")]:
        if mask.any():
            ax.errorbar(error[mask], y[mask], xerr=[low[mask], high[mask]], fmt="o",
                        color=colour, capsize=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [f"{c}: {q}" for c, q in zip(table["case"], table["quantity"])], fontsize=7)
    level = float(table["ci_level"].iloc[0]) * 100
    ax.set_xlabel(f"simulated minus reference, % of reference (bar: {level:.2f}% CI per case, "
                  "so 99% that all hold together)")
    n = int(table["replications"].min())
    ax.set_title(f"Validation: {int(table['pass'].sum())} of {len(table)} cases pass "
                 f"(at least {n} replications each)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    save_figure(fig, path)
