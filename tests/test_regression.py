"""Back-test: the system before the mechanisms of issue 11 (``scenario=one_pool``: one pool per
service, a fixed workforce, certain acceptance, no named steps in hospital) and its seven-day
discharge give, metric for metric, the numbers stored in ``tests/data/regression/`` (written by
the model before the structure became data). So every mechanism added since, switched off,
changes nothing, seed for seed.

A deliberate change to what the model computes rewrites the tables, in the same commit, with

    .venv/bin/python tests/test_regression.py --write

and the commit says why the numbers moved. Any other change must leave them as they are.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim import override, simulate
from sim.config.schema import load_config

TABLES = Path(__file__).parent / "data" / "regression"
REPLICATIONS = (0, 1)
SEVEN_DAYS = [0, 1, 2, 3, 4, 5, 6]
SCENARIOS = {
    "baseline": {},
    "seven_day_discharge": {"assessment.hours.days": SEVEN_DAYS,
                            "pathways.p1.rule.days": SEVEN_DAYS,
                            "pathways.p2.rule.days": SEVEN_DAYS,
                            "pathways.p3.rule.days": SEVEN_DAYS},
}


def _run(args: tuple[str, int]) -> pd.DataFrame:
    scenario, replication = args
    one_pool = load_config(["scenario=one_pool"]).params
    metrics = simulate(override(one_pool, SCENARIOS[scenario]), replication).metrics
    return metrics.assign(replication=replication)[["replication", "metric", "value", "unit"]]


def scenario_table(scenario: str) -> pd.DataFrame:
    with ProcessPoolExecutor(2) as pool:
        frames = list(pool.map(_run, [(scenario, k) for k in REPLICATIONS]))
    return pd.concat(frames, ignore_index=True)


RENAMED = {"delayed_days_per_30d.package": ["delayed_days_per_30d.homecare"],
           "delayed_days_per_30d.bed": ["delayed_days_per_30d.step_down",
                                        "delayed_days_per_30d.care_home"]}
"""Metrics renamed when community services became data (issue 9): the wait for a homecare
package is now the wait for the homecare service, and the wait for a bed the sum of the waits
for step-down beds and care-home places."""


NEW_METRICS = [
    "died_total", "harm.escalations", "harm.escalated_to.homecare", "harm.escalated_to.step_down",
    "harm.escalated_to.care_home", "harm.escalation_days", "harm.returns_to_unfit",
    "harm.returns_to_unfit_share", "harm.unfit_again_days", "harm.deaths_in_hospital",
    "harm.deaths_during_delay", "harm.deaths_during_delay_share", "harm.readmissions",
    "harm.readmission_share", "harm.readmission_days",
    # Issue 10, queues that grew all run (added; bed waits now count those still waiting).
    "bed_queue_end", "bed_queue_growth", "bed_queue_grew",
    *[f"{service}.{metric}" for service in ("homecare", "step_down", "care_home")
      for metric in ("queue_growth", "queue_grew", "requests_per_day", "granted_per_day")],
    # Issue 11, why patients wait: the named steps of a discharge (0 here: all off) and long
    # stays.
    *[f"delayed_days_per_30d.{cause}" for cause in ("funding", "choice", "equipment", "summary")],
    "long_stay_share", "delay_mean.long_stay", "fit_discharged_next_day_share",
    "long_stay_delayed_so_far",
    # Issue 23, the response to capacity: delays by who answers for them.
    "delayed_days_per_30d.social_care", "delayed_days_per_30d.nhs",
]
"""Metrics added after the tables were stored (issue 12, the harm of waiting: all its
mechanisms are off here, so these are 0 or NaN); every stored metric must still be equal."""


def _as_stored(now: pd.DataFrame) -> pd.DataFrame:
    """Today's metrics under the names the stored tables use."""
    now = now[~now["metric"].isin(NEW_METRICS)]
    old_names = [now]
    for old, parts in RENAMED.items():
        rows = now[now["metric"].isin(parts)]
        summed = rows.groupby("replication", as_index=False).agg(
            value=("value", "sum"), unit=("unit", "first"))
        old_names.append(summed.assign(metric=old))
    table = pd.concat(old_names, ignore_index=True)
    return table[~table["metric"].isin([p for parts in RENAMED.values() for p in parts])]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_metrics_equal_the_stored_tables(scenario):
    stored = pd.read_csv(TABLES / f"{scenario}.csv")
    now = _as_stored(scenario_table(scenario))
    merged = stored.merge(now, on=["replication", "metric"], how="outer",
                          suffixes=("_stored", "_now"), indicator=True)
    missing = merged.loc[merged["_merge"] != "both", ["metric", "_merge"]]
    assert missing.empty, f"metrics added or lost:\n{missing.to_string()}"
    a, b = merged["value_stored"].to_numpy(float), merged["value_now"].to_numpy(float)
    close = np.isclose(a, b, rtol=1e-9, atol=1e-9) | (np.isnan(a) & np.isnan(b))
    assert close.all(), f"metrics changed:\n{merged.loc[~close].to_string()}"
    assert (merged["unit_stored"] == merged["unit_now"]).all()


if __name__ == "__main__" and "--write" in sys.argv:
    TABLES.mkdir(parents=True, exist_ok=True)
    for name in SCENARIOS:
        scenario_table(name).to_csv(TABLES / f"{name}.csv", index=False, float_format="%.17g")
        print(f"wrote {TABLES / name}.csv")
