"""Metrics of one run, computed from the patient log and the pools' time-weighted statistics.

Everything is measured over the window from the end of warm-up to the end of the run. A delayed
day is a bed-day between becoming medically fit and leaving the acute bed; a patient's delay is
split into causes by the times in :mod:`sim.core.patient`. The midnight count of medically fit
patients still in hospital is the figure the NHS publishes daily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import numpy as np
import pandas as pd

from sim.core.catalogue import PER, WEEKDAY_NAMES, catalogue, causes, sources
from sim.core.params import Params

if TYPE_CHECKING:
    from sim.core.resources import CapacityPool, TimeWeighted


def _count_at(times_in: np.ndarray, times_out: np.ndarray, at: np.ndarray) -> np.ndarray:
    """How many intervals [in, out) contain each moment of ``at`` (NaN out = still open)."""
    t_in = np.sort(times_in[~np.isnan(times_in)])
    t_out = np.sort(times_out[~np.isnan(times_out)])
    return (np.searchsorted(t_in, at, side="right")
            - np.searchsorted(t_out, at, side="right")).astype(int)


def compute_daily(patients: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Counts at each simulated midnight, and the discharges of the day that follows it, in all
    and by pathway."""
    run = params.run
    days = np.arange(int(np.ceil(run.days)), dtype=float)
    arrival = patients["arrival"].to_numpy(float)
    bed = patients["bed"].to_numpy(float)
    fit = patients["fit"].to_numpy(float)
    left = patients["left"].to_numpy(float)
    diverted = patients["diverted"].to_numpy(bool)
    discharged = ~diverted & ~np.isnan(left)
    # A patient waits for a bed from arrival until given a bed or diverted.
    wait_end = np.where(np.isnan(bed), np.where(diverted, left, np.nan), bed)
    in_bed_left = np.where(np.isnan(bed), np.nan, left)
    daily = pd.DataFrame({
        "day": days.astype(int),
        "weekday": days.astype(int) % 7,
        "warmup": days < run.warmup_days,
        "in_hospital": _count_at(bed, in_bed_left, days),
        "fit_in_hospital": _count_at(fit, np.where(np.isnan(fit), np.nan, left), days),
        "waiting_for_bed": _count_at(arrival, wait_end, days),
    })
    discharge_day = np.floor(left[discharged]).astype(int)
    pathway = patients["pathway"].to_numpy(str)[discharged]
    n = len(days)
    daily["discharges"] = np.bincount(discharge_day, minlength=n)[:n]
    for k in params.pathways:
        daily[f"discharges_{k}"] = np.bincount(discharge_day[pathway == k], minlength=n)[:n]
    return daily


def _overlap(start: np.ndarray, end: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0.0, None)


def delay_phases(patients: pd.DataFrame, params: Params) -> dict[str, np.ndarray]:
    """Per patient, delayed days in the measured window by cause, in the order of
    :func:`sim.core.catalogue.causes` (NaN phase ends = run end). The wait for a community
    service is attributed to the service the patient's pathway needs."""
    lo, hi = params.run.warmup_days, params.run.days
    t = {c: np.nan_to_num(patients[c].to_numpy(float), nan=hi)
         for c in ("fit", "assessed", "ready", "transferred", "left")}
    has_fit = ~np.isnan(patients["fit"].to_numpy(float))
    service = patients["service"].to_numpy(str)
    waiting = _overlap(t["assessed"], t["ready"], lo, hi) * has_fit
    phases = {"assessment": _overlap(t["fit"], t["assessed"], lo, hi) * has_fit}
    for name in params.services:
        phases[name] = np.where(service == name, waiting, 0.0)
    phases["transfer"] = _overlap(t["ready"], t["transferred"], lo, hi) * has_fit
    phases["rule"] = _overlap(t["transferred"], t["left"], lo, hi) * has_fit
    assert list(phases) == list(causes(params))
    return phases


def compute_metrics(params: Params, patients: pd.DataFrame, daily: pd.DataFrame,
                    waits: pd.DataFrame, beds: "CapacityPool", assessors: "CapacityPool",
                    pools: Mapping[str, "CapacityPool"],
                    fit_in_hospital: "TimeWeighted") -> pd.DataFrame:
    """The run's metrics as a tidy table: ``metric``, ``value``, ``unit`` (every metric is
    declared in :mod:`sim.core.catalogue`, which gives its unit)."""
    run = params.run
    lo, hi = run.warmup_days, run.days
    window = hi - lo
    declared = catalogue(params)
    rows: list[tuple[str, float, str]] = []

    def add(name: str, value: float) -> None:
        rows.append((name, float(value), declared[name].unit))

    arrival = patients["arrival"].to_numpy(float)
    bed = patients["bed"].to_numpy(float)
    fit = patients["fit"].to_numpy(float)
    left = patients["left"].to_numpy(float)
    diverted = patients["diverted"].to_numpy(bool)
    pathway = patients["pathway"].to_numpy(str)
    discharged = ~diverted & ~np.isnan(left)

    # Conservation over the whole run: every arrival is diverted, discharged or still here.
    in_system_end = int((~diverted & np.isnan(left)).sum())
    add("arrivals_total", len(patients))
    add("discharged_total", discharged.sum())
    add("diverted_total", diverted.sum())
    add("in_system_end", in_system_end)
    add("conservation_error", len(patients) - discharged.sum() - diverted.sum() - in_system_end)

    # Flow in the measured window.
    in_window = (arrival >= lo) & (arrival < hi)
    admitted = (bed >= lo) & (bed < hi)
    out = discharged & (left >= lo)
    add("window_days", window)
    add("arrivals", in_window.sum())
    add("admitted", admitted.sum())
    add("discharged", out.sum())
    add("diverted", (diverted & in_window).sum())
    bed_wait = (bed - arrival)[in_window & ~np.isnan(bed)]
    add("bed_wait_share", (bed_wait > 1e-12).mean() if bed_wait.size else 0.0)
    add("bed_wait_mean", bed_wait.mean() if bed_wait.size else 0.0)
    add("diverted_share", (diverted & in_window).sum() / max(in_window.sum(), 1))

    # Delayed discharge days.
    phases = delay_phases(patients, params)
    total = sum(phases.values())
    add("delayed_days", total.sum())
    add("delayed_days_per_30d", total.sum() / window * PER)
    for k in params.pathways:
        add(f"delayed_days_per_30d.{k}", total[pathway == k].sum() / window * PER)
    for cause, days in phases.items():
        add(f"delayed_days_per_30d.{cause}", days.sum() / window * PER)

    delay = (left - fit)[out]
    delay_pathway = pathway[out]
    for label, mask in [("all", np.ones(delay.size, bool))] + [
            (k, delay_pathway == k) for k in params.pathways]:
        values = delay[mask]
        add(f"delay_mean.{label}", values.mean() if values.size else np.nan)
        add(f"delay_p90.{label}", np.percentile(values, 90) if values.size else np.nan)
    fit_weekday = np.floor(fit[out]).astype(int) % 7
    for day, label in enumerate(WEEKDAY_NAMES):
        values = delay[fit_weekday == day]
        add(f"delay_mean.fit_{label}", values.mean() if values.size else np.nan)
    for k in params.pathways:
        add(f"discharge_share.{k}", (delay_pathway == k).mean() if delay.size else np.nan)

    # Beds and the midnight count.
    measured = daily[~daily["warmup"]]
    add("acute_occupied_beds", beds.use.mean(hi))
    add("acute_occupancy", beds.use.mean(hi) / beds.capacity)
    add("fit_in_hospital_midnight", measured["fit_in_hospital"].mean())
    add("fit_in_hospital_mean", fit_in_hospital.mean(hi))
    occupied = measured["in_hospital"].sum()
    add("fit_in_hospital_share", measured["fit_in_hospital"].sum() / occupied if occupied else 0.0)
    weekday = measured[measured["weekday"] < 5]["discharges"].mean()
    weekend = measured[measured["weekday"] >= 5]["discharges"].mean()
    add("weekend_discharge_ratio", weekend / weekday if weekday else np.nan)

    # The discharge team and community services.
    add("assessors_utilisation", assessors.use.mean(hi) / assessors.capacity
        if assessors.capacity else np.nan)
    requested = waits["requested"].to_numpy(float)
    granted = waits["granted"].to_numpy(float)
    wait = np.nan_to_num(granted, nan=hi) - requested
    for service, pool in pools.items():
        add(f"{service}.in_use", pool.use.mean(hi))
        add(f"{service}.utilisation", pool.use.mean(hi) / pool.capacity if pool.capacity else np.nan)
        add(f"{service}.queue_mean", pool.waiting.mean(hi))
        add(f"{service}.queue_end", len(pool.queue))
        for source in sources(params, service):
            mask = ((waits["service"] == service) & (waits["source"] == source)).to_numpy() & (
                requested >= lo)
            if mask.any():
                add(f"{service}.wait_mean.{source}", wait[mask].mean())
    return pd.DataFrame(rows, columns=["metric", "value", "unit"])
