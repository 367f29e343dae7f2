"""The default system is stable: over a five-year run nothing drifts.

A system whose demand exceeds what its capacity can serve has a queue that grows all run, and
then every wait depends on how long the run is, not on the system. Over five measured years of
the default system: no queue (for an acute bed, or for any community service) grows all run by
the model's own test (sim/core/metrics.py, ``*.queue_grew``), and the yearly mean of the
midnight count of medically fit patients has no trend: the least-squares slope over the five
years, pooled over replications, has a 99% t-interval that contains 0 (yearly means are far
apart in time compared with how long a patient's delay lasts, so they are nearly independent).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim import Params, override, simulate

YEARS, REPLICATIONS = 5, 3


def _yearly(replication: int) -> tuple[np.ndarray, dict[str, float]]:
    params = Params()
    params = override(params, {"run.days": params.run.warmup_days + 365.0 * YEARS})
    result = simulate(params, replication)
    daily = result.daily[~result.daily["warmup"]]
    year = (daily["day"] - params.run.warmup_days) // 365
    means = daily.groupby(year)["fit_in_hospital"].mean().to_numpy()[:YEARS]
    grew = {m: result.value(m) for m in result.metrics["metric"] if m.endswith("queue_grew")}
    return means, grew


@pytest.mark.slow
def test_nothing_drifts_over_five_years():
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(2) as pool:
        runs = list(pool.map(_yearly, range(REPLICATIONS)))
    for means, grew in runs:
        assert len(means) == YEARS
        assert not any(grew.values()), grew
    years = np.tile(np.arange(YEARS, dtype=float), REPLICATIONS)
    counts = np.concatenate([means for means, _ in runs])
    fit = stats.linregress(years, counts)
    half = stats.t.ppf(0.995, len(counts) - 2) * fit.stderr
    assert abs(fit.slope) <= half, (fit.slope, half, counts.reshape(REPLICATIONS, YEARS))
