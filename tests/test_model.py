"""Functional tests of the patient-flow model: conservation, places, determinism, rules,
blocking, and the response to capacity."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pandas as pd
import pytest

from sim import simulate
from sim.core.model import Model
from sim.core.patient import PHASES
from sim.running.stats import estimate

from conftest import max_concurrent, provider_peaks, small_params
from test_correctness import check_conservation, drawn_admissions


def test_conservation_of_patients():
    """Every admission the admissions stream drew is in the log, and is discharged or still
    in a bed or queueing for one, by the acute-bed pool's own count (independent counts)."""
    model = Model(small_params())
    result = model.run()
    check_conservation(model, result)
    assert len(result.patients) > 1000 and model.beds.in_use > 0


def test_no_patient_in_two_places_at_once(small_run):
    """Each patient's times run forward: arrival, bed, fit, assessed, ready, transferred, left."""
    p = small_run.patients[~small_run.patients["diverted"]]
    times = p[["arrival", "bed", *PHASES]].to_numpy()
    for a, b in zip(times.T[:-1], times.T[1:]):
        both = ~np.isnan(a) & ~np.isnan(b)
        assert (b[both] >= a[both] - 1e-12).all()
        assert not (np.isnan(a) & ~np.isnan(b)).any(), "a later time without an earlier one"


def test_beds_never_hold_more_patients_than_there_are_beds(small_run):
    p = small_run.patients
    beds = small_params().acute.beds
    assert max_concurrent(p["bed"].to_numpy(), p["left"].to_numpy()) <= beds
    # ... and the beds are actually full at times in this system, so the check has teeth.
    assert max_concurrent(p["bed"].to_numpy(), p["left"].to_numpy()) >= beds * 0.95


def test_community_services_never_exceed_capacity():
    """Each pool within its capacity; in a market each provider within its places, by the
    request log (carers' hours may run ``stretch`` over before packages are handed back:
    tests/test_market.py)."""
    params = small_params()
    model = Model(params)
    result = model.run()
    for name, pool in model.pools.items():
        service = params.services[name]
        if not service.market.enabled:
            assert pool.use.peak <= pool.capacity + 1e-9, name
            continue
        assert pool.use.peak <= pool.size.peak * (1 + service.staff.workforce.stretch
                                                  if service.staff else 1) + 1e-9, name
    peaks = provider_peaks(result.service_waits)
    for name in ("step_down", "care_home"):
        market = model.pools[name]
        for provider in market.providers:
            segment = params.services[name].market.segments[provider.segment].name
            assert peaks[(name, segment, provider.index)] <= provider.nominal, (name, segment)
    assert model.beds.use.peak <= params.acute.beds


def test_same_seed_gives_identical_outputs():
    a, b = simulate(small_params()), simulate(small_params())
    pd.testing.assert_frame_equal(a.patients, b.patients)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.daily, b.daily)


def test_different_seeds_or_replications_differ():
    base = simulate(small_params())
    other_seed = simulate(small_params(run__seed=7))
    other_replication = simulate(small_params(), replication=1)
    for other in (other_seed, other_replication):
        assert not base.patients["arrival"].equals(other.patients["arrival"])
        assert base.value("delayed_days") != other.value("delayed_days")


def _weekday(times: pd.Series) -> np.ndarray:
    return np.floor(times.to_numpy()).astype(int) % 7


def test_no_care_home_discharge_at_weekends_while_the_rule_is_on():
    """With care homes taking no admissions at weekends, no pathway-3 patient leaves on a
    Saturday or Sunday; with the rule off, some do. (The discharge team and the brokerage team
    work seven days here, so that the care-home rule is the only weekend rule left.)"""
    many_p3 = dict(assessment__hours__enabled=False, services__care_home__market__hours__enabled=False,
                   pathways__p0__share=0.4,
                   pathways__p1__share=0.3, pathways__p3__share=0.26,
                   services__care_home__capacity=400, services__care_home__initial_utilisation=0.0)
    on = simulate(small_params(**many_p3)).patients
    off = simulate(small_params(pathways__p3__rule__enabled=False, **many_p3)).patients
    p3_on = on[(on["pathway"] == "p3") & on["left"].notna()]
    p3_off = off[(off["pathway"] == "p3") & off["left"].notna()]
    assert len(p3_on) > 200 and len(p3_off) > 200
    assert not np.isin(_weekday(p3_on["left"]), [5, 6]).any()
    weekend_share = np.isin(_weekday(p3_off["left"]), [5, 6]).mean()
    assert weekend_share > 0.15  # about 2/7 if discharges were spread evenly over the week


def test_zero_care_home_places_block_pathway_3_for_ever():
    """No care-home places: no pathway-3 patient leaves; each waits in the care-home queue from
    the assessment to the end, is counted as medically fit in hospital by the model's own
    counter, and is delayed from becoming fit to the end of the run."""
    params = small_params(services__care_home__capacity=0)
    model = Model(params)
    result = model.run()
    check_conservation(model, result)
    p = result.patients
    p3 = p[(p["pathway"] == "p3") & p["fit"].notna()]
    assert len(p3) > 5
    assert p3["left"].isna().all(), "no pathway-3 patient can leave without a care-home place"
    assert p3["ready"].isna().all()
    # The care-home queue holds every assessed pathway-3 patient (and every community referral).
    waits = result.service_waits
    care_home = waits[waits["service"] == "care_home"]
    assert care_home["granted"].isna().all()
    queued = (care_home["source"] == "hospital").sum()
    assert queued == p3["assessed"].notna().sum() > 0
    assert len(model.pools["care_home"].queue) == len(care_home)
    # The model's own count of fit patients in a bed includes every one of them at the end.
    still_fit = p["fit"].notna() & p["left"].isna()
    assert model.fit_in_hospital.level == still_fit.sum() >= len(p3)
    # Their delay runs from becoming fit (or the warm-up's end) to the end of the run.
    lo, hi = params.run.warmup_days, params.run.days
    expected = (hi - np.maximum(p3["fit"], lo)).clip(lower=0).sum() * 30.0 / (hi - lo)
    assert result.value("delayed_days_per_30d.p3") == pytest.approx(expected, rel=1e-9)


def test_doubling_homecare_capacity_lowers_the_pathway_1_delay():
    """Paired over 8 replications on common random numbers: the mean pathway-1 delay falls,
    and the 95% CI of the difference lies above zero."""
    base_params = small_params(services__homecare__staff__count=26)
    double_params = small_params(services__homecare__staff__count=52)
    differences = []
    for k in range(8):
        base = simulate(base_params, k).value("delay_mean.p1")
        double = simulate(double_params, k).value("delay_mean.p1")
        differences.append(base - double)
    diff = estimate(differences)
    assert diff.low > 0, f"difference {diff.mean:.3f} days, 95% CI [{diff.low:.3f}, {diff.high:.3f}]"


def test_zero_admissions_run_is_empty_but_well_formed():
    params = small_params(admissions__per_day=0.0)
    model = Model(params)
    result = model.run()
    assert drawn_admissions(params) == 0 == len(result.patients)
    assert model.beds.use.peak == 0 and len(model.beds.queue) == 0
    assert result.value("arrivals_total") == 0
    assert result.value("delayed_days") == 0


def test_a_model_is_replication_0_unless_told_otherwise():
    """Model(params) and simulate(params) both run replication 0, on its random streams."""
    params = small_params(run__days=40.0, run__warmup_days=5.0)
    model = Model(params)
    assert model.replication == 0
    pd.testing.assert_frame_equal(model.run().patients, simulate(params, 0).patients)
    assert not simulate(params, 1).patients["arrival"].equals(simulate(params, 0).patients["arrival"])


def test_a_model_runs_once_and_a_stopped_run_continues_unchanged():
    params = small_params(run__days=60.0)
    whole = simulate(params, 0)
    stopped = Model(params, 0)
    stopped.run(until=45.0)
    with pytest.raises(RuntimeError, match="runs once"):
        stopped.run()
    stopped.env.run(until=params.run.days)
    pd.testing.assert_frame_equal(stopped._result().patients, whole.patients)


def test_admission_times_invert_the_cumulative_rate_exactly():
    from sim.core.arrivals import AdmissionRate
    from sim.core.params import override
    params = override(small_params(), {"admissions.winter_multiplier": 1.5,
                                       "admissions.winter_start": 3, "admissions.winter_end": 9})
    rate = AdmissionRate(params, 20.0)
    a = params.admissions

    def expected_by(t: float) -> float:  # the integral of the rate from 0 to t, hour by hour
        total, h = 0.0, 0
        while (h + 1) / 24.0 <= t:
            total += rate.per_day[h] / 24.0
            h += 1
        return total + rate.per_day[h] * (t - h / 24.0)

    assert rate.per_day[26] == a.per_day * a.day_of_week[1] * a.hour_of_day[2]
    assert rate.per_day[24 * 4 + 5] == 1.5 * a.per_day * a.day_of_week[4] * a.hour_of_day[5]
    targets = np.random.default_rng(3).uniform(0.0, rate.cumulative[-1], 200)
    times = rate.inverse(targets)
    assert np.allclose([expected_by(t) for t in times], targets, rtol=1e-9, atol=1e-9)
    assert np.isinf(rate.inverse(np.array([rate.cumulative[-1] + 1.0]))).all()


def test_admissions_follow_the_hour_of_week_and_winter_profile():
    """Counts per hour-of-week cell, in and out of winter, against their Poisson expectations:
    a chi-square goodness-of-fit test at the 0.1% level (fixed seed)."""
    from scipy import stats
    from sim.core.arrivals import AdmissionRate
    params = small_params(run__days=728.0, admissions__per_day=40.0, acute__beds=2000,
                          admissions__winter_multiplier=1.3, admissions__winter_start=0,
                          admissions__winter_end=120)
    arrivals = simulate(params).patients["arrival"].to_numpy()
    rate = AdmissionRate(params, params.run.days)
    hours = np.arange(rate.per_day.size)
    winter = ((hours // 24) % 365) < 120
    cell = (hours % 168) * 2 + winter
    expected = np.bincount(cell, weights=rate.per_day / 24.0, minlength=336)
    h = np.floor(arrivals * 24.0).astype(int)
    observed = np.bincount(cell[h], minlength=336)
    assert observed.sum() == pytest.approx(expected.sum(), abs=4 * np.sqrt(expected.sum()))
    assert stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue > 0.001


def test_capacity_changed_during_a_run_is_granted_first_come_first_served():
    import simpy
    from sim.core.resources import CapacityPool
    env = simpy.Environment()
    pool = CapacityPool(env, "care_home", 2)
    assert pool.try_take() and pool.try_take() and not pool.try_take()
    first, second = pool.request(), pool.request()
    pool.set_capacity(1)        # a provider fails: places in use stay, none is re-granted
    pool.release()
    assert not first.triggered and pool.in_use == 1
    pool.set_capacity(3)        # recruitment: both queued requests fit now, in order
    assert first.triggered and second.triggered and pool.in_use == 3


@pytest.mark.parametrize("overrides", [
    {},  # markets, workforce, named steps: placements and hand-backs still pending at the end
    {"harm__death__enabled": True, "harm__escalation__enabled": True,
     "harm__unwell_again__enabled": True, "harm__readmission__enabled": True},
    {"acute__beds": 60, "acute__max_wait_for_bed": 0.5},  # patients queueing for a bed
])
def test_a_finished_run_is_freed_without_the_cycle_collector(overrides):
    """A finished run lets go of the events still scheduled (they refer back to the model), so
    the model and its logs are freed as soon as it is let go, by reference counting: with the
    cycle collector off, nothing of it is left. (Left to the collector, a default run took
    0.4 s to free.)"""
    params = small_params(**overrides)
    gc.collect()
    gc.disable()
    try:
        model = Model(params)
        result = model.run()
        assert len(model.beds.queue) > 0 or not overrides.get("acute__beds")
        left = weakref.ref(model)
        del model
        assert left() is None, "a reference cycle holds the finished model"
    finally:
        gc.enable()
    assert len(result.patients) > 1000


def test_asking_for_a_metric_that_does_not_exist_names_it(small_run):
    """A misspelt metric is a KeyError that says which name was not found."""
    assert small_run.value("delayed_days") > 0
    with pytest.raises(KeyError, match="no metric named 'delayed_dayz'"):
        small_run.value("delayed_dayz")
