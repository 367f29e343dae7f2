"""Charts of a run, drawn from result tables only. Each chart states its units, the number of
replications and the uncertainty shown."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

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
