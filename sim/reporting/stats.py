"""Statistics across replications: means with t-distribution confidence intervals.

Replications are independent, so a metric's mean over n replications has the interval
``mean +- t(0.975, n-1) * sd / sqrt(n)``. Paired differences (scenario minus baseline on the
same random numbers) use the same formula on the per-replication differences.

Most metrics cannot be negative (waits, counts, shares). With few, skewed replications the
t-interval of such a metric can reach below zero (a wait of 60.9 [-5.6, 127.5]); the interval is
then cut at the bound, which keeps its coverage (the true mean is never below the bound, so it
lies in the cut interval whenever it lies in the whole one), and the estimate says so
(``at_bound``): the summary then says that there are too few replications for that metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd


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
             lower: float | None = None) -> Estimate:
    """Mean, sample sd and t-interval of ``values`` (NaNs dropped). One value: no interval.
    ``lower``: the smallest value the quantity can take (e.g. 0), where the interval is cut."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Estimate(mean, math.nan, math.nan, math.nan, 1)
    # The t quantile: scipy.special is much lighter than scipy.stats, and imported only when
    # needed, so that a command refused at once does not wait for it.
    from scipy.special import stdtrit

    sd = float(x.std(ddof=1))
    half = float(stdtrit(n - 1, 0.5 + level / 2.0)) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    if lower is not None and low < lower:
        return Estimate(mean, sd, lower, max(high, lower), n, at_bound=True)
    return Estimate(mean, sd, low, high, n)


def summarise(tidy: pd.DataFrame, by: list[str] | None = None, level: float = 0.95,
              lower: Mapping[str, float | None] | None = None) -> pd.DataFrame:
    """One row per metric (and per ``by`` group) from a tidy table of replication results.

    ``tidy`` has columns ``metric``, ``value``, ``unit`` (and the ``by`` columns); the result
    has ``mean``, ``sd``, ``ci_low``, ``ci_high``, ``replications`` and ``ci_at_bound``.
    ``lower`` gives metrics' smallest possible values (a metric not in it is unbounded).
    """
    keys = (by or []) + ["metric", "unit"]
    bounds = lower or {}
    rows = []
    for key, group in tidy.groupby(keys, sort=False):
        metric = key[len(keys) - 2]
        e = estimate(group["value"].to_numpy(), level, bounds.get(metric))
        rows.append((*key, e.mean, e.sd, e.low, e.high, e.n, e.at_bound))
    return pd.DataFrame(rows, columns=keys + ["mean", "sd", "ci_low", "ci_high", "replications",
                                              "ci_at_bound"])
