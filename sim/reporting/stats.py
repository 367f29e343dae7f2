"""Statistics across replications: means with t-distribution confidence intervals.

Replications are independent, so a metric's mean over n replications has the interval
``mean +- t(0.975, n-1) * sd / sqrt(n)``. Paired differences (scenario minus baseline on the
same random numbers) use the same formula on the per-replication differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # the t quantile; much lighter to import than scipy.stats


@dataclass(frozen=True)
class Estimate:
    """A mean over replications with its confidence interval."""

    mean: float
    sd: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def estimate(values: np.ndarray | list[float], level: float = 0.95) -> Estimate:
    """Mean, sample sd and t-interval of ``values`` (NaNs dropped). One value: no interval."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return Estimate(mean, math.nan, math.nan, math.nan, 1)
    sd = float(x.std(ddof=1))
    half = float(stdtrit(n - 1, 0.5 + level / 2.0)) * sd / math.sqrt(n)
    return Estimate(mean, sd, mean - half, mean + half, n)


def summarise(tidy: pd.DataFrame, by: list[str] | None = None, level: float = 0.95) -> pd.DataFrame:
    """One row per metric (and per ``by`` group) from a tidy table of replication results.

    ``tidy`` has columns ``metric``, ``value``, ``unit`` (and the ``by`` columns); the result
    has ``mean``, ``sd``, ``ci_low``, ``ci_high``, ``replications``.
    """
    keys = (by or []) + ["metric", "unit"]
    rows = []
    for key, group in tidy.groupby(keys, sort=False):
        e = estimate(group["value"].to_numpy(), level)
        rows.append((*key, e.mean, e.sd, e.low, e.high, e.n))
    return pd.DataFrame(rows, columns=keys + ["mean", "sd", "ci_low", "ci_high", "replications"])
