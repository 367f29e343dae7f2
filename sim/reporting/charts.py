"""Every chart of the project, drawn from result tables only (the only module that draws).
Each chart states its units, the number of replications and the uncertainty shown; labels and
units come from the metric catalogue (:mod:`sim.core.catalogue`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.core.catalogue import describe  # noqa: E402
from sim.running.files import write_atomic  # noqa: E402
from sim.reporting.stats import summarise  # noqa: E402


def save_figure(fig: plt.Figure, path: Path) -> None:
    """Save a chart as PNG, atomically, and free it."""
    write_atomic(path, lambda p: fig.savefig(p, dpi=120, bbox_inches="tight", format="png"))
    plt.close(fig)


def delayed_days_by_pathway(metrics: pd.DataFrame, pathways: dict[str, str], path: Path,
                            title: str) -> None:
    """Bar chart of delayed bed-days per 30 days by pathway (``pathways``: key -> label), with
    95% CI error bars."""
    s = summarise(metrics).set_index("metric")
    keys = [f"delayed_days_per_30d.{k}" for k in pathways]
    mean = s.loc[keys, "mean"].to_numpy()
    low = s.loc[keys, "ci_low"].to_numpy()
    high = s.loc[keys, "ci_high"].to_numpy()
    n = int(s.loc[keys[0], "replications"])
    fig, ax = plt.subplots(figsize=(7, 4))
    errors = None if n < 2 else np.vstack([mean - low, high - mean])
    ax.bar(list(pathways.values()), mean, yerr=errors, capsize=6, color="#3b6ea5")
    ax.set_ylabel("delayed bed-days per 30 days")
    ci = "error bars: 95% CI" if n > 1 else "one replication: no interval"
    ax.set_title(f"{title}\nDelayed discharge bed-days by pathway ({n} replications; {ci})",
                 fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    save_figure(fig, path)


def fit_in_hospital_over_time(daily: pd.DataFrame, warmup_days: float, path: Path,
                              title: str) -> None:
    """The midnight count of medically fit patients still in hospital, day by day: mean over
    replications with a 95% CI band, warm-up shaded."""
    tidy = daily.rename(columns={"fit_in_hospital": "value"}).assign(metric="fit", unit="patients")
    s = summarise(tidy, by=["day"])
    n = int(s["replications"].max())
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(s["day"], s["mean"], color="#a53b3b", lw=1.2, label="mean over replications")
    if n > 1:
        ax.fill_between(s["day"], s["ci_low"], s["ci_high"], color="#a53b3b", alpha=0.25,
                        label="95% CI")
    ax.axvspan(0, warmup_days, color="grey", alpha=0.15, label="warm-up (not measured)")
    ax.set_xlabel("day of the run")
    ax.set_ylabel("medically fit patients in hospital at midnight")
    ax.set_title(f"{title}\nMedically fit but still in hospital, midnight count ({n} replications)",
                 fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def scenario_comparison(table: pd.DataFrame, path: Path, baseline: str = "baseline") -> None:
    """Delayed bed-days per 30 days by scenario (mean, 95% CI), and each scenario's paired
    change from the baseline (95% CI), coloured by whether the interval excludes zero."""
    metric = "delayed_days_per_30d"
    entry = describe(metric)
    rows = table[table["metric"] == metric]
    n = int(rows["replications"].min())
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(len(rows))
    left.bar(x, rows["mean"], yerr=[rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]],
             capsize=5, color=["#777777"] + ["#3b6ea5"] * (len(rows) - 1))
    left.set_xticks(x, [str(s) for s in rows["scenario"]], rotation=30, ha="right")
    left.set_ylabel(entry.unit)
    left.set_title(f"{entry.label.capitalize()} (mean, 95% CI)", fontsize=10)
    others = rows[rows["scenario"] != baseline]
    xo = np.arange(len(others))
    colours = ["#3a8a4a" if h < 0 else "#a53b3b" if lo > 0 else "#999999"
               for lo, h in zip(others["diff_ci_low"], others["diff_ci_high"])]
    right.bar(xo, others["difference"], color=colours,
              yerr=[others["difference"] - others["diff_ci_low"],
                    others["diff_ci_high"] - others["difference"]], capsize=5)
    right.axhline(0, color="black", lw=0.8)
    right.set_xticks(xo, [str(s) for s in others["scenario"]], rotation=30, ha="right")
    right.set_ylabel(f"change in {entry.unit}")
    right.set_title(f"Change from {baseline} (paired difference, 95% CI)", fontsize=10)
    for ax in (left, right):
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Scenario comparison: {n} replications per scenario on common random numbers",
                 fontsize=11)
    save_figure(fig, path)


def response_curve(summary: pd.DataFrame, parameter: str, path: Path) -> None:
    """Each metric of a response curve against the swept ``parameter``, with 95% CI bands."""
    metrics = list(dict.fromkeys(summary["metric"]))
    n = int(summary["replications"].min())
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        entry = describe(metric)
        s = summary[summary["metric"] == metric]
        ax.plot(s[parameter], s["mean"], marker="o", color="#3b6ea5")
        ax.fill_between(s[parameter], s["ci_low"], s["ci_high"], alpha=0.25, color="#3b6ea5",
                        label="95% CI")
        ax.set_xlabel(parameter)
        ax.set_ylabel(f"{entry.label} ({entry.unit})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Response to {parameter} ({n} replications per point; band: 95% CI)",
                 fontsize=11)
    fig.tight_layout()
    save_figure(fig, path)


def weekend_rules(table: pd.DataFrame, path: Path) -> None:
    """Mean delay by the weekday patients became medically fit, a bar per scenario."""
    n = int(table["replications"].min())
    fig, ax = plt.subplots(figsize=(9, 4.5))
    scenarios = list(dict.fromkeys(table["scenario"]))
    weekdays = list(dict.fromkeys(table["weekday"]))
    width = 0.8 / max(len(scenarios), 1)
    for i, scenario in enumerate(scenarios):
        s = table[table["scenario"] == scenario]
        x = np.arange(len(weekdays)) + (i - (len(scenarios) - 1) / 2) * width
        ax.bar(x, s["mean"], width, yerr=[s["mean"] - s["ci_low"], s["ci_high"] - s["mean"]],
               capsize=3, label=scenario)
    ax.set_xticks(np.arange(len(weekdays)), weekdays)
    ax.set_xlabel("day of the week the patient became medically fit")
    ax.set_ylabel("mean delay to discharge (days)")
    ax.set_title(f"Delay by day of becoming medically fit ({n} replications; 95% CI)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    save_figure(fig, path)


def warmup(series: pd.DataFrame, suggested: int, configured: float, path: Path) -> None:
    """The daily midnight count of medically fit patients from an empty hospital (mean over
    replications, 95% CI band), its 7-day moving average and cumulative mean, the MSER-5
    warm-up and the configured one."""
    n = int(series["replications"].max())
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(series["day"], series["mean"], color="#bbbbbb", lw=0.8,
            label="daily mean over replications")
    ax.fill_between(series["day"], series["ci_low"], series["ci_high"], color="#bbbbbb",
                    alpha=0.3, label="95% CI")
    ax.plot(series["day"], series["weekly_mean"], color="#3b6ea5", lw=1.5,
            label="7-day moving average")
    ax.plot(series["day"], series["cumulative_mean"], color="#a53b3b", lw=1.5,
            label="cumulative mean from day 0")
    ax.axvline(suggested, color="black", ls="--", label=f"MSER-5 warm-up: {suggested} days")
    ax.axvline(configured, color="#3a8a4a", ls=":", label=f"configured: {configured:g} days")
    ax.set_xlabel("day of the run")
    ax.set_ylabel("medically fit patients in hospital at midnight")
    ax.set_title(f"Warm-up analysis ({n} replications; band: 95% CI)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def validation(table: pd.DataFrame, path: Path) -> None:
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
