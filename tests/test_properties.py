"""Property tests: invariants of the model that hold for every valid configuration.

Hypothesis draws small random but valid systems (admissions, beds, pathway shares, community
capacity, rules, stay distributions, run length, seed); each test checks one invariant on them.
``derandomize=True`` makes the drawn examples the same on every run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings, strategies as st

from sim import Params, override, simulate
from sim.core.model import Model
from sim.core.params import Distribution, Window

from conftest import max_concurrent

PROPERTY = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

def floats(low: float, high: float) -> st.SearchStrategy[float]:
    """Any number in [low, high], subnormals included: a subnormal community referral rate
    once crashed the model (see test_edge_cases.py)."""
    return st.floats(low, high)


DELAY_COLUMNS = ("delay", "delay_assessment", "delay_package", "delay_bed", "delay_transfer",
                 "delay_rule")


@st.composite
def stay(draw, low: float = 0.5, high: float = 15.0) -> Distribution:
    """A lognormal, exponential or fixed duration with a sensible mean."""
    kind = draw(st.sampled_from(["lognormal", "exponential", "fixed"]))
    mean = draw(floats(low, high))
    if kind == "lognormal":
        return Distribution("lognormal", mean, mean * draw(floats(0.2, 1.5)))
    return Distribution(kind, mean)


@st.composite
def shares(draw) -> list[float]:
    """Four pathway shares >= 0 summing to 1 (within 1e-9), exact zeros included."""
    weights = draw(st.lists(st.one_of(st.just(0.0), floats(0.01, 1.0)), min_size=4, max_size=4))
    total = sum(weights)
    if total <= 0:
        weights, total = [1.0, 0.0, 0.0, 0.0], 1.0
    first = [w / total for w in weights[:3]]
    last = 1.0 - sum(first)
    if last < 0.0:  # rounding: the first three already sum to a hair over 1
        last = 0.0
    result = first + [last]
    assert all(0.0 <= s <= 1.0 for s in result) and abs(sum(result) - 1.0) <= 1e-9
    return result


@st.composite
def window(draw) -> Window:
    enabled = draw(st.booleans())
    days = draw(st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True))
    start = draw(st.integers(0, 22))
    end = draw(st.integers(start + 1, 24))
    return Window(enabled, sorted(days), float(start), float(end))


@st.composite
def configs(draw) -> Params:
    """A small valid system: every field the model reads that matters for flow is drawn."""
    days = float(draw(st.integers(20, 80)))
    updates = {
        "run.days": days,
        "run.warmup_days": float(draw(st.integers(0, 10))),
        "run.seed": draw(st.integers(0, 1000)),
        "admissions.per_day": draw(floats(0.0, 30.0)),
        "acute.beds": draw(st.integers(1, 60)),
        "acute.max_wait_for_bed": draw(st.one_of(st.none(), st.just(0.0), floats(0.0, 2.0))),
        "assessment.staff": draw(st.integers(0, 10)),
        "assessment.hours": draw(window()),
        "assessment.in_hospital": draw(st.booleans()),
        "homecare.carers": draw(st.integers(0, 20)),
        "homecare.initial_utilisation": draw(floats(0.0, 1.0)),
        "homecare.community_referrals_per_day": draw(floats(0.0, 2.0)),
        "homecare.package_days": draw(stay(1.0, 30.0)),
        "step_down.beds": draw(st.integers(0, 50)),
        "step_down.initial_utilisation": draw(floats(0.0, 1.0)),
        "step_down.community_referrals_per_day": draw(floats(0.0, 2.0)),
        "step_down.stay": draw(stay(1.0, 30.0)),
        "care_home.beds": draw(st.integers(0, 50)),
        "care_home.initial_utilisation": draw(floats(0.0, 1.0)),
        "care_home.community_referrals_per_day": draw(floats(0.0, 1.0)),
        "care_home.stay": draw(stay(5.0, 200.0)),
    }
    for k, share in enumerate(draw(shares())):
        updates[f"pathways.p{k}.share"] = share
        updates[f"pathways.p{k}.acute_stay"] = draw(stay())
        updates[f"pathways.p{k}.transfer"] = draw(stay(0.01, 1.0))
        updates[f"pathways.p{k}.rule"] = draw(window())
    return override(Params(), updates)  # one call: the shares are validated together


def run_model(params: Params):
    model = Model(params)
    return model, model.run()


@given(configs())
@PROPERTY
def test_patients_are_conserved(params):
    model, result = run_model(params)
    p = result.patients
    diverted = p["diverted"].to_numpy(bool)
    left = p["left"].notna().to_numpy()
    bed = p["bed"].notna().to_numpy()
    discharged, still_in = int((~diverted & left).sum()), int((~diverted & ~left).sum())
    assert result.value("conservation_error") == 0
    assert result.value("arrivals_total") == len(p) == discharged + diverted.sum() + still_in
    assert result.value("discharged_total") == discharged
    assert result.value("diverted_total") == diverted.sum()
    assert result.value("in_system_end") == still_in
    assert not bed[diverted].any() and bed[~diverted & left].all()
    # Still in = in a bed (the pool's count) + queueing for one (the pool's queue).
    assert model.beds.in_use == int((~diverted & ~left & bed).sum())
    assert len(model.beds.queue) == int((~diverted & ~left & ~bed).sum())


@given(configs())
@PROPERTY
def test_delays_are_never_negative(params):
    p = simulate(params).patients
    delay = (p["left"] - p["fit"]).dropna()
    assert (delay >= 0).all(), delay[delay < 0]
    for column in DELAY_COLUMNS:
        values = p[column].dropna()
        assert (values >= 0).all(), (column, values[values < 0])


@given(configs())
@PROPERTY
def test_beds_and_community_places_never_exceed_capacity(params):
    model, result = run_model(params)
    p = result.patients
    beds = params.acute.beds
    assert max_concurrent(p["bed"].to_numpy(float), p["left"].to_numpy(float)) <= beds
    assert model.beds.use.peak <= beds
    for name, pool in model.pools.items():
        # Places are counted in whole units and exactly; carer-hours are float amounts granted
        # within the pool's own 1e-9 tolerance.
        slack = 1e-9 if name == "homecare" else 0.0
        assert pool.use.peak <= pool.capacity + slack, (name, pool.use.peak, pool.capacity)
        assert pool.in_use <= pool.capacity + slack, name


@given(configs())
@PROPERTY
def test_delay_is_attributed_only_where_the_patient_waited(params):
    p = simulate(params).patients
    never_fit = p["fit"].isna()
    # No delay of any kind for a patient who never became medically fit in a bed.
    assert p.loc[never_fit, "delay"].isna().all()
    for column in DELAY_COLUMNS:
        assert not (p.loc[never_fit, column] > 0).any(), column
    # Waiting for a package is pathway 1's, waiting for a bed or place pathways 2-3's.
    assert (p.loc[p["delay_package"] > 0, "pathway"] == 1).all()
    assert p.loc[p["delay_bed"] > 0, "pathway"].isin([2, 3]).all()
    # Pathway 0 meets neither the team nor a community service.
    p0 = p[(p["pathway"] == 0) & ~never_fit]
    for column in ("delay_assessment", "delay_package", "delay_bed"):
        assert (p0[column] == 0).all(), column
    p0_unfit = p[(p["pathway"] == 0) & never_fit]
    for column in ("delay_assessment", "delay_package", "delay_bed"):
        assert not (p0_unfit[column] > 0).any(), column


@given(configs())
@PROPERTY
def test_delayed_days_metric_matches_the_patient_log(params):
    result = simulate(params)
    p = result.patients
    lo, hi = params.run.warmup_days, params.run.days
    fit = p["fit"].to_numpy(float)
    left = p["left"].fillna(hi).to_numpy(float)  # still in: delayed until the run's end
    has_fit = ~np.isnan(fit)
    inside = np.minimum(left[has_fit], hi) - np.maximum(fit[has_fit], lo)
    expected = float(np.clip(inside, 0.0, None).sum())
    assert np.isclose(result.value("delayed_days"), expected, rtol=1e-9, atol=1e-9), (
        result.value("delayed_days"), expected)


@given(configs())
@PROPERTY
def test_same_config_and_seed_give_identical_runs(params):
    a, b = simulate(params), simulate(params)
    pd.testing.assert_frame_equal(a.patients, b.patients)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
