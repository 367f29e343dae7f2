"""The experiment layer: confidence intervals, common random numbers, parallel = serial, and
sweeps that resume after an interruption without changing the results."""

from __future__ import annotations

import json

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim import simulate
from sim.reporting.analysis import paired_differences
from sim.running.runner import run_replications
from sim.running.store import ReplicationStore, StoreMismatch
from sim.running.stats import estimate
from sim.running.sweep import collect

from conftest import small_params

METRIC = "delayed_days_per_30d"
DRAWN = ["arrival", "pathway", "acute_stay", "transfer", "assessment", "service", "amount",
         "stay", "onward", "onward_amount", "onward_stay"]
"""The patient attributes drawn on arrival: the same in every scenario of one replication."""
CARERS = small_params().services["homecare"].staff.count


def _values(params, replications) -> np.ndarray:
    return np.array([simulate(params, k).value(METRIC) for k in replications])


def test_confidence_interval_shrinks_as_one_over_root_n():
    """Half-widths from 5 and from 20 (disjoint) replications. Each is exactly t(0.975, n-1)
    sd / sqrt(n), with the quantile from a printed table (2.7764 and 2.0930; the normal 1.96
    fails this); and the two sds, from independent replications of one system, agree: their
    ratio lies in the 99% range of sqrt(F(4, 19))."""
    params = small_params(run__days=128.0)
    few, many = estimate(_values(params, range(5))), estimate(_values(params, range(5, 25)))
    for e, t_table in ((few, 2.7764), (many, 2.0930)):
        assert e.half_width / (e.sd / math.sqrt(e.n)) == pytest.approx(t_table, rel=5e-4)
    low, high = np.sqrt(stats.f.ppf([0.005, 0.995], 4, 19))
    assert low <= few.sd / many.sd <= high, (few, many)


def test_a_capacity_change_keeps_every_replications_random_numbers():
    """Common random numbers across scenarios: replication k of a scenario with other
    capacities draws exactly the same patients as replication k of the baseline (arrival,
    pathway, every duration and amount), so the paired difference of the arrivals is exactly
    0; the delays, which depend on capacity, do differ."""
    base_params = small_params(run__days=100.0)
    other_params = small_params(run__days=100.0, acute__beds=base_params.acute.beds - 10,
                                services__homecare__staff__count=2 * CARERS,
                                services__care_home__capacity=60)
    base = run_replications(base_params, 3, workers=1)
    other = run_replications(other_params, 3, workers=1)
    for a, b in zip(base.runs, other.runs):
        assert a.replication == b.replication
        pd.testing.assert_frame_equal(a.patients[DRAWN], b.patients[DRAWN])
    tidy = pd.concat([base.metrics.assign(scenario="baseline"),
                      other.metrics.assign(scenario="other")])
    diffs = paired_differences(tidy).set_index("metric")
    assert diffs.loc["arrivals_total", "difference"] == 0
    assert diffs.loc["arrivals_total", "pairs"] == 3
    assert diffs.loc["delayed_days", "difference"] != 0


def test_common_random_numbers_reduce_the_variance_of_a_difference():
    """Two close scenarios (one more carer): the variance of the paired difference is smaller
    than that of an unpaired one, significantly at the 5% level (F-test)."""
    n = 10
    base = _values(small_params(run__days=128.0), range(n))
    more = _values(small_params(run__days=128.0, services__homecare__staff__count=CARERS + 1),
                   range(n))
    paired = np.var(more - base, ddof=1)
    unpaired = np.var(more, ddof=1) + np.var(base, ddof=1)
    assert paired < unpaired * stats.f.ppf(0.05, n - 1, n - 1), (paired, unpaired)


def test_parallel_replications_equal_serial_ones():
    params = small_params(run__days=80.0)
    serial = run_replications(params, 4, workers=1).metrics
    parallel = run_replications(params, 4, workers=2).metrics
    pd.testing.assert_frame_equal(serial, parallel)


def test_precision_target_adds_replications_until_the_interval_is_narrow():
    """Replications are added until the 95% CI half-width is within 15% of the mean, and no
    further: the run stops at the first n that is precise enough, well before the cap. (The
    metric's coefficient of variation here is about 0.2, so about 8 replications are needed;
    30 replications fall short only if the sample sd is twice the true one, chi-square
    probability below 1e-12.)"""
    precision, cap = 0.15, 30
    params = small_params(run__days=80.0, run__replications=2, run__precision=precision,
                          run__max_replications=cap)
    results = run_replications(params, workers=2)
    values = [r.value(METRIC) for r in results.runs]
    n = len(values)
    assert [r.replication for r in results.runs] == list(range(n))
    assert 2 <= n < cap, "stopped by the cap, not by the precision"
    e = estimate(values)
    assert e.half_width <= precision * e.mean
    for m in range(2, n):  # every shorter run was not yet precise enough
        shorter = estimate(values[:m])
        assert shorter.half_width > precision * shorter.mean, m
    # The stopping point does not depend on how many processes ran the replications.
    serial = [r.value(METRIC) for r in run_replications(params, workers=1).runs]
    assert serial == values


def test_store_refuses_results_of_another_configuration(tmp_path):
    ReplicationStore(tmp_path, small_params())
    with pytest.raises(StoreMismatch):
        ReplicationStore(tmp_path, small_params(services__homecare__staff__count=99))
    ReplicationStore(tmp_path, small_params(run__replications=9))  # more replications: fine


def test_store_refuses_results_of_another_model_version(tmp_path):
    ReplicationStore(tmp_path, small_params())
    stored = json.loads((tmp_path / "params.json").read_text())
    stored["model_code"] = "0" * 16  # as written by a different model core
    (tmp_path / "params.json").write_text(json.dumps(stored))
    with pytest.raises(StoreMismatch, match="model version"):
        ReplicationStore(tmp_path, small_params())


SWEEP = ["services.homecare.staff.count=30,40", "run.days=80", "run.warmup_days=14",
         "run.replications=4", "admissions.per_day=10", "acute.beds=106",
         "services.homecare.market.segments.0.providers=6",
         "services.homecare.market.segments.1.providers=3",
         "services.step_down.capacity=16", "services.care_home.capacity=80",
         "services.homecare.community_referrals_per_day=0.8",
         "services.step_down.community_referrals_per_day=0.16",
         "services.care_home.community_referrals_per_day=0.07", "assessment.staff=3",
         "output.patients_csv=false", "output.charts=false"]


def _sweep(folder: Path, *extra: str, **popen) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "discharge-sim"
    return subprocess.Popen([str(exe), "-m", *SWEEP, f"hydra.sweep.dir={folder}", *extra],
                            cwd=folder.parent, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, **popen)


@pytest.mark.slow
def test_interrupted_sweep_resumes_to_the_same_table(tmp_path):
    clean = tmp_path / "clean"
    assert _sweep(clean).wait(timeout=600) == 0
    expected = collect(clean)
    assert len(expected["job"].unique()) == 2 and set(expected["replication"]) == {0, 1, 2, 3}

    interrupted = tmp_path / "interrupted"
    process = _sweep(interrupted, "hydra/launcher=basic", start_new_session=True)
    deadline = time.time() + 300
    while not list(interrupted.glob("*/replications/rep-0001.metrics.csv")):
        assert time.time() < deadline and process.poll() is None, "sweep ended too soon"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the worst interruption: no clean-up at all
    process.wait()
    partial = collect(interrupted, write=False)
    finished = len(partial[["job", "replication"]].drop_duplicates())
    assert 2 <= finished < 8, "the sweep was interrupted part-way, after two replications"

    assert _sweep(interrupted).wait(timeout=600) == 0
    resumed = collect(interrupted)
    pd.testing.assert_frame_equal(resumed, expected)
    assert (interrupted / "sweep_results.parquet").is_file()
    pd.testing.assert_frame_equal(pd.read_parquet(interrupted / "sweep_results.parquet"), expected)


@pytest.mark.slow
def test_a_sweep_gives_the_same_table_on_one_or_two_processes(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert _sweep(one, "hydra.launcher.n_jobs=1").wait(timeout=600) == 0
    assert _sweep(two, "hydra.launcher.n_jobs=2").wait(timeout=600) == 0
    pd.testing.assert_frame_equal(collect(one), collect(two))


def test_the_scenario_comparison_table_has_bounded_levels_and_unbounded_differences(tmp_path):
    """The experiment's table (``scenario_comparison.md``), as written after a sweep: deaths
    during delay of [0, 0, 120] in the baseline would have the t-interval [-132, 212]; it is
    [0, 212]†, with the note, while the paired difference keeps its negative end; labels come
    from the catalogue."""
    from sim.config.experiments import analyse
    from sim.config.schema import load_config
    from sim.core.catalogue import describe

    values = {("baseline", "harm.deaths_during_delay"): [0.0, 0.0, 120.0],
              ("better", "harm.deaths_during_delay"): [0.0, 0.0, 0.0],
              ("baseline", "delayed_days_per_30d"): [500.0, 520.0, 510.0],
              ("better", "delayed_days_per_30d"): [400.0, 430.0, 420.0]}
    tidy = pd.DataFrame([(f"scenario={s}", s, k, m, v, describe(m).unit)
                         for (s, m), vs in values.items() for k, v in enumerate(vs)],
                        columns=["job", "scenario", "replication", "metric", "value", "unit"])
    config = load_config(["experiment.analysis=scenario_comparison"])
    analyse(config, tidy, tmp_path)
    table = pd.read_csv(tmp_path / "scenario_comparison.csv").set_index(["metric", "scenario"])
    deaths = table.loc["harm.deaths_during_delay"]
    assert deaths.loc["baseline", "ci_low"] == 0 and deaths.loc["baseline", "ci_at_bound"]
    assert deaths.loc["better", "diff_ci_low"] == pytest.approx(-40 - 172.11, abs=0.05)
    text = (tmp_path / "scenario_comparison.md").read_text()
    row = next(line for line in text.splitlines() if "| harm.deaths_during_delay |" in line
               and "| baseline |" in line)
    assert describe("harm.deaths_during_delay").label in row
    assert "| baseline | 40 | 0 | 212.1† |" in row and "too few replications" in text
    better = next(line for line in text.splitlines() if "| harm.deaths_during_delay |" in line
                  and "| better |" in line)
    assert "| better | 0 | 0 | 0 | -40 | -212.1 | 132.1 |" in better


def test_a_scenario_on_a_fitted_set_adds_the_same_count_and_sets_the_same_rate():
    """fitted_sets: 25 more carers than the set has (a count is a step from the set's value);
    seven-day working's weekend pace of 1 whatever the set's pace (a rate is set as it is)."""
    from sim.config.experiments import on_fitted_set, scenario_changes
    from sim.config.schema import load_config
    base = load_config([]).params
    fitted = {"services.homecare.staff.count": 250, "assessment.hours.weekend_cover": 0.95}
    more = scenario_changes(base, load_config(["scenario=extra_homecare"]).params)
    seven = scenario_changes(base, load_config(["scenario=seven_day_discharge"]).params)
    step = more["services.homecare.staff.count"] - base.services["homecare"].staff.count
    assert on_fitted_set(base, fitted, more).services["homecare"].staff.count == 250 + step
    on_seven = on_fitted_set(base, fitted, seven)
    assert on_seven.assessment.hours.weekend_cover == 1.0
    assert on_seven.services["homecare"].staff.count == 250
