"""Forecasting the next weeks from a snapshot of today: replications of the model started from
the snapshot with no warm-up, the daily counts of each, and prediction bands across them.

Day 0 of a forecast is the snapshot's date; the model's clock starts at that date's weekday
(time 0 is a Monday 00:00), so the run's warm-up is just the days of the week before it, in
which nothing happens. Each day's numbers: the medically fit patients in hospital and the
occupied acute beds at midnight (the start of the day), and the delayed bed-days of the day
(days medically fit in a bed, summed over patients, over the 24 hours that follow).
"""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Sequence

import numpy as np
import pandas as pd

from sim.core.model import simulate
from sim.core.params import Params, override
from sim.core.start import Change, Snapshot
from sim.running.workers import pool_arguments

METRICS = {"fit_in_hospital": "medically fit patients in hospital (midnight)",
           "occupied_beds": "occupied acute beds (midnight)",
           "delayed_bed_days": "delayed bed-days in the day"}
"""The daily metrics of a forecast, with what each is."""
BANDS = {"80": (10.0, 90.0), "95": (2.5, 97.5)}
"""Prediction bands across replications: percentiles."""


def forecast_params(params: Params, snapshot: Snapshot, weeks: int) -> Params:
    """The run of a forecast: no warm-up but the days of the week before the snapshot's."""
    if weeks < 1:
        raise ValueError(f"weeks: {weeks} is not allowed: a whole number >= 1")
    start = float(snapshot.weekday)
    return override(params, {"run.warmup_days": start, "run.days": start + 7.0 * weeks})


def daily_counts(result, start: float, days: int) -> pd.DataFrame:
    """One replication's daily forecast numbers from its start (day 0) for ``days`` days."""
    daily = result.daily
    rows = daily[(daily["day"] >= start) & (daily["day"] < start + days)]
    p = result.patients
    fit = p["fit"].to_numpy(float)
    left = p["left"].to_numpy(float)
    gone = np.where(np.isnan(left), p["died"].to_numpy(float), left)
    gone = np.where(np.isnan(gone), np.inf, gone)
    unfit_from = p["unfit_again"].to_numpy(float)
    unfit_to = p["unfit_again_end"].to_numpy(float)
    delayed = []
    for day in rows["day"].to_numpy(float):
        days_fit = np.clip(np.minimum(gone, day + 1) - np.maximum(fit, day), 0, None)
        unfit = np.clip(np.minimum(unfit_to, day + 1) - np.maximum(unfit_from, day), 0, None)
        delayed.append(float(np.nansum(days_fit) - np.nansum(unfit)))
    return pd.DataFrame({"day": (rows["day"].to_numpy() - int(start)).astype(int),
                         "fit_in_hospital": rows["fit_in_hospital"].to_numpy(float),
                         "occupied_beds": rows["in_hospital"].to_numpy(float),
                         "delayed_bed_days": delayed})


def _one(args: tuple[Params, int, Snapshot, tuple[Change, ...], int]) -> pd.DataFrame:
    params, replication, snapshot, changes, days = args
    result = simulate(params, replication, snapshot, changes)
    table = daily_counts(result, float(snapshot.weekday), days)
    table.insert(0, "replication", replication)
    return table


def run_forecast(params: Params, snapshot: Snapshot, weeks: int, replications: int,
                 changes: Sequence[Change] = (), workers: int = 1) -> pd.DataFrame:
    """Replications of the forecast: one row per replication and day (day 0: the snapshot's
    date) with each of :data:`METRICS`; replication k on its own streams (the same k of a
    scenario: common random numbers)."""
    run = forecast_params(params, snapshot, weeks)
    jobs = [(run, r, snapshot, tuple(changes), 7 * weeks) for r in range(replications)]
    if workers > 1 and replications > 1:
        with ProcessPoolExecutor(min(workers, os.cpu_count() or 1), **pool_arguments()) as pool:
            tables = list(pool.map(_one, jobs))
    else:
        tables = [_one(job) for job in jobs]
    return pd.concat(tables, ignore_index=True)


def bands(tidy: pd.DataFrame, date: dt.date | None = None) -> pd.DataFrame:
    """Each day and metric across replications: mean and the 80% and 95% prediction bands
    (10/90 and 2.5/97.5 percentiles); with ``date``, each day's date."""
    rows = []
    for day, group in tidy.groupby("day"):
        for metric in METRICS:
            values = group[metric].to_numpy(float)
            row = {"day": int(day), "metric": metric, "mean": float(values.mean())}
            for name, (lo, hi) in BANDS.items():
                row[f"p{lo:g}"], row[f"p{hi:g}"] = np.percentile(values, [lo, hi])
            rows.append(row)
    table = pd.DataFrame(rows)
    if date is not None:
        table.insert(1, "date", [(date + dt.timedelta(days=int(d))).isoformat()
                                 for d in table["day"]])
    table.insert(len(table.columns), "replications", tidy["replication"].nunique())
    return table
