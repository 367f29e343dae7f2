"""Statistics across replications: means with t-distribution confidence intervals.

Replications are independent, so a metric's mean over n replications has the interval
``mean +- t(0.975, n-1) * sd / sqrt(n)``. Paired differences (scenario minus baseline on the
same random numbers) use the same formula on the per-replication differences.

Most metrics cannot be negative (waits, counts, shares), and a share cannot exceed 1. With few,
skewed replications the t-interval of such a metric can reach past its bound (a wait of
60.9 [-5.6, 127.5], an occupancy of 86% [34%, 137%]); the interval is then cut at the bound,
which keeps its coverage (the true mean is never past the bound, so it lies in the cut interval
whenever it lies in the whole one), and the estimate says so (``at_bound``): the summary then
says that there are too few replications for that metric. A difference of two such metrics has
no bound (it can be negative), so paired differences are never cut.

A metric the catalogue (:mod:`sim.core.catalogue`) declares with ``summary="total"`` is a count
added over replications (the patients who arrived in all of them, say): its table row gives that
total, with no sd and no interval, as a mean and interval of such counts would describe nothing
anyone asked for. :func:`summarise_metrics` reads the bounds and the kind from the catalogue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Collection, Mapping

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sim.core.catalogue import Metric

TOTAL = "total"
"""The catalogue's ``summary`` of a count added over replications (see the module docstring)."""

COLUMNS = ["mean", "sd", "ci_low", "ci_high", "replications", "ci_at_bound"]
"""The columns :func:`summarise` adds to the ``by`` columns, ``metric`` and ``unit``."""


@dataclass(frozen=True)
class Estimate:
    """A mean over replications with its confidence interval."""

    mean: float
    sd: float
    low: float
    high: float
    n: int
    at_bound: bool = False
    """The t-interval reached past the quantity's bound and was cut there."""

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def estimate(values: np.ndarray | list[float], level: float = 0.95,
             lower: float | None = None, upper: float | None = None) -> Estimate:
    """Mean, sample sd and t-interval of ``values`` (NaNs dropped). One value: no interval.
    ``lower`` and ``upper``: the smallest and largest values the quantity can take (e.g. 0 and,
    for a share, 1), where the interval is cut; None for no bound."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Estimate(mean, math.nan, math.nan, math.nan, 1)
    sd = float(x.std(ddof=1))
    half = t_quantile(n - 1, 0.5 + level / 2.0) * sd / math.sqrt(n)
    return _cut(Estimate(mean, sd, mean - half, mean + half, n), lower, upper)


def t_quantile(df: float, p: float) -> float:
    """Student's t quantile. scipy.special is much lighter than scipy.stats, and imported only
    when needed, so that a command refused at once (or a run) does not wait for it."""
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def _cut(e: Estimate, lower: float | None, upper: float | None) -> Estimate:
    """``e`` with its interval cut at the bounds it reaches past (and marked so)."""
    low, high = e.low, e.high
    if lower is not None:
        low, high = max(low, lower), max(high, lower)
    if upper is not None:
        low, high = min(low, upper), min(high, upper)
    if (low, high) == (e.low, e.high):
        return e
    return Estimate(e.mean, e.sd, low, high, e.n, at_bound=True)


def total(values: np.ndarray | list[float]) -> Estimate:
    """The total of ``values`` over replications (NaNs dropped), with no sd and no interval:
    the summary of a metric the catalogue declares ``total``."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    return Estimate(float(x.sum()) if x.size else math.nan, math.nan, math.nan, math.nan, x.size)


def summarise(tidy: pd.DataFrame, by: list[str] | None = None, level: float = 0.95,
              lower: Mapping[str, float | None] | None = None,
              upper: Mapping[str, float | None] | None = None,
              totals: Collection[str] = ()) -> pd.DataFrame:
    """One row per metric (and per ``by`` group) from a tidy table of replication results.

    ``tidy`` has columns ``metric``, ``value``, ``unit`` (and the ``by`` columns); the result
    has ``mean``, ``sd``, ``ci_low``, ``ci_high``, ``replications`` and ``ci_at_bound``.
    ``lower`` and ``upper`` give metrics' smallest and largest possible values (a metric not in
    them is unbounded); for a metric in ``totals``, ``mean`` is its total over the replications
    and sd and interval are NaN. :func:`summarise_metrics` takes all three from the catalogue.
    """
    keys = (by or []) + ["metric", "unit"]
    lows, highs, counts = lower or {}, upper or {}, set(totals)
    rows = []
    for key, group in tidy.groupby(keys, sort=False):
        metric = key[len(keys) - 2]
        values = group["value"].to_numpy()
        e = (total(values) if metric in counts
             else estimate(values, level, lows.get(metric), highs.get(metric)))
        rows.append((*key, e.mean, e.sd, e.low, e.high, e.n, e.at_bound))
    return pd.DataFrame(rows, columns=keys + COLUMNS)


def summarise_metrics(tidy: pd.DataFrame, metrics: Mapping[str, "Metric"],
                      by: list[str] | None = None, level: float = 0.95) -> pd.DataFrame:
    """:func:`summarise` with each metric's bounds and kind (``mean`` or ``total``) from the
    metric catalogue ``metrics`` (:func:`sim.core.catalogue.catalogue`); a metric it does not
    declare is an unbounded mean."""
    return summarise(tidy, by, level, **bounds(metrics))


def bounds(metrics: Mapping[str, "Metric"]) -> dict:
    """The catalogue's bounds and totals, as :func:`summarise` takes them."""
    return {"lower": {name: m.lower for name, m in metrics.items()},
            "upper": {name: m.upper for name, m in metrics.items()},
            "totals": {name for name, m in metrics.items() if m.summary == TOTAL}}
