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

from conftest import max_concurrent, provider_peaks
from test_correctness import check_conservation, first_open, hospital_requests, overlap

PROPERTY = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

def floats(low: float, high: float) -> st.SearchStrategy[float]:
    """Any number in [low, high], subnormals included: a subnormal community referral rate
    once crashed the model (see test_edge_cases.py)."""
    return st.floats(low, high)


DELAY_COLUMNS = ("delay", "delay_assessment", "delay_funding", "delay_choice", "delay_service",
                 "delay_equipment", "delay_summary", "delay_transfer", "delay_rule")


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
        "services.homecare.staff.count": draw(st.integers(0, 20)),
        "services.homecare.initial_utilisation": draw(floats(0.0, 1.0)),
        "services.homecare.community_referrals_per_day": draw(floats(0.0, 2.0)),
        "services.homecare.stay": draw(stay(1.0, 30.0)),
        "services.step_down.capacity": draw(st.integers(0, 50)),
        "services.step_down.initial_utilisation": draw(floats(0.0, 1.0)),
        "services.step_down.community_referrals_per_day": draw(floats(0.0, 2.0)),
        "services.step_down.stay": draw(stay(1.0, 30.0)),
        "services.care_home.capacity": draw(st.integers(0, 50)),
        "services.care_home.initial_utilisation": draw(floats(0.0, 1.0)),
        "services.care_home.community_referrals_per_day": draw(floats(0.0, 1.0)),
        "services.care_home.stay": draw(stay(5.0, 200.0)),
    }
    # Each service's market on or off, and homecare's workforce and care homes' staffing with it
    # (they need the market).
    for name in ("homecare", "step_down", "care_home"):
        updates[f"services.{name}.market.enabled"] = draw(st.booleans())
        updates[f"services.{name}.market.acceptance"] = draw(floats(0.05, 1.0))
        updates[f"services.{name}.market.hours"] = draw(window())
    updates["services.homecare.staff.workforce.enabled"] = (
        updates["services.homecare.market.enabled"] and draw(st.booleans()))
    updates["services.care_home.staffing.enabled"] = (
        updates["services.care_home.market.enabled"] and draw(st.booleans()))
    updates["services.care_home.staffing.places_per_post"] = draw(floats(0.5, 3.0))
    updates["ward.hours"] = draw(window())
    for k, share in enumerate(draw(shares())):
        updates[f"pathways.p{k}.share"] = share
        updates[f"pathways.p{k}.acute_stay"] = draw(stay())
        updates[f"pathways.p{k}.transfer"] = draw(stay(0.01, 1.0))
        updates[f"pathways.p{k}.rule"] = draw(window())
        updates[f"pathways.p{k}.summary"] = draw(stay(0.01, 0.5))
        updates[f"pathways.p{k}.funded_share"] = draw(floats(0.0, 1.0))
        updates[f"pathways.p{k}.funding"] = draw(stay(0.5, 5.0))
        updates[f"pathways.p{k}.choice"] = draw(stay(0.5, 5.0))
        updates[f"pathways.p{k}.equipment_share"] = draw(floats(0.0, 1.0))
        updates[f"pathways.p{k}.equipment"] = draw(stay(0.5, 5.0))
    return override(Params(), updates)  # one call: the shares are validated together


def run_model(params: Params):
    model = Model(params)
    return model, model.run()


@given(configs())
@PROPERTY
def test_patients_are_conserved(params):
    """Every admission the admissions stream drew is in the log and is discharged, diverted, in
    a bed or queueing for one, by the bed pool's own count (test_correctness.check_conservation)."""
    model, result = run_model(params)
    check_conservation(model, result)
    p = result.patients
    diverted = p["diverted"].to_numpy(bool)
    left = p["left"].notna().to_numpy()
    bed = p["bed"].notna().to_numpy()
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
    """Beds and every pool within capacity; in a market, every provider within its own places,
    by the request log alone, and (with a workforce) within its carers' hours plus the stretch
    it may run at before handing packages back."""
    model, result = run_model(params)
    p = result.patients
    beds = params.acute.beds
    assert max_concurrent(p["bed"].to_numpy(float), p["left"].to_numpy(float)) <= beds
    assert model.beds.use.peak <= beds
    peaks = provider_peaks(result.service_waits)
    for name, pool in model.pools.items():
        # Places are counted in whole units and exactly; carer-hours are float amounts granted
        # within the pool's own 1e-9 tolerance.
        slack = 1e-9 if name == "homecare" else 0.0
        service = params.services[name]
        if not service.market.enabled:
            assert pool.use.peak <= pool.capacity + slack, (name, pool.use.peak, pool.capacity)
            assert pool.in_use <= pool.capacity + slack, name
            continue
        workforce = service.staff is not None and service.staff.workforce.enabled
        stretch = 1.0 + service.staff.workforce.stretch if workforce else 1.0
        hours = service.staff.hours_each if service.staff is not None else 1.0
        for j, provider in enumerate(pool.providers):
            assert provider.in_use <= provider.nominal * stretch + 1e-6, (name, provider.index)
            # Its most (all posts filled) or its places: the ceiling the log must stay under.
            most = model.rosters[name].posts_of(j) * hours if workforce else provider.nominal
            segment = service.market.segments[provider.segment].name
            peak = peaks.get((name, segment, provider.index), 0.0)
            assert peak <= most * stretch + 1e-6, (name, segment, provider.index, peak, most)


@given(configs())
@PROPERTY
def test_delay_is_attributed_only_where_the_patient_waited(params):
    p = simulate(params).patients
    never_fit = p["fit"].isna()
    # No delay of any kind for a patient who never became medically fit in a bed.
    assert p.loc[never_fit, "delay"].isna().all()
    for column in DELAY_COLUMNS:
        assert not (p.loc[never_fit, column] > 0).any(), column
    # Only a patient whose pathway needs a community service waits for one.
    assert (p.loc[p["delay_service"] > 0, "service"] != "").all()
    # A pathway with neither an assessment nor a service (p0) meets neither the team nor a
    # community service.
    plain = [k for k, pw in params.pathways.items()
             if not pw.needs_assessment and pw.service is None]
    assert "p0" in plain
    p0 = p[p["pathway"].isin(plain) & ~never_fit]
    for column in ("delay_assessment", "delay_service"):
        # (NaN: still on an earlier step, such as a family's choice, at the end of the run)
        assert (p0[column].dropna() == 0).all(), column
    assert p0["assessed"].notna().all()
    p0_unfit = p[p["pathway"].isin(plain) & never_fit]
    for column in ("delay_assessment", "delay_service"):
        assert not (p0_unfit[column] > 0).any(), column


@given(configs())
@PROPERTY
def test_delayed_days_metric_matches_the_patient_log(params):
    """Delayed days in the measured window, in all, by pathway and by cause (each service's
    wait apart), equal the patient log's sums (NaN phase ends: the end of the run)."""
    result = simulate(params)
    p = result.patients[result.patients["fit"].notna()]
    lo, hi = params.run.warmup_days, params.run.days
    scale = 30.0 / (hi - lo)
    phases = ("fit", "assessed", "funded", "chosen", "ready", "equipped", "summarised",
              "transferred", "left")
    col = {c: p[c].to_numpy(float) for c in phases}
    start = {c: np.where(np.isnan(v), hi, v) for c, v in col.items()}
    whole = overlap(col["fit"], col["left"], lo, hi)
    cause = {"assessment": overlap(start["fit"], col["assessed"], lo, hi),
             "funding": overlap(start["assessed"], col["funded"], lo, hi),
             "choice": overlap(start["funded"], col["chosen"], lo, hi),
             "equipment": overlap(start["ready"], col["equipped"], lo, hi),
             "summary": overlap(start["equipped"], col["summarised"], lo, hi),
             "transfer": overlap(start["summarised"], col["transferred"], lo, hi),
             "rule": overlap(start["transferred"], col["left"], lo, hi)}
    waiting = overlap(start["chosen"], col["ready"], lo, hi)
    service = p["service"].to_numpy(str)
    for name in params.services:
        cause[name] = np.where(service == name, waiting, 0.0)
    expected = {"delayed_days": whole.sum(), "delayed_days_per_30d": whole.sum() * scale}
    expected.update({f"delayed_days_per_30d.{c}": v.sum() * scale for c, v in cause.items()})
    pathway = p["pathway"].to_numpy(str)
    expected.update({f"delayed_days_per_30d.{k}": whole[pathway == k].sum() * scale
                     for k in params.pathways})
    for name, value in expected.items():
        assert np.isclose(result.value(name), value, rtol=1e-9, atol=1e-9), (name, value)


@given(configs())
@PROPERTY
def test_each_phase_lasts_what_was_drawn(params):
    """The acute stay, the transfer and the rule's wait are what was drawn and what the rule
    allows, in any system, and the steps come in their order; a patient is ready when the
    service is granted."""
    result = simulate(params)
    p = result.patients
    fit = p[p["fit"].notna()]
    np.testing.assert_allclose(fit["fit"] - fit["bed"], fit["acute_stay"], rtol=0, atol=1e-9)
    moved = p[p["transferred"].notna()]
    np.testing.assert_allclose(moved["transferred"] - moved["summarised"], moved["transfer"],
                               rtol=0, atol=1e-9)
    assert (moved["summarised"] >= moved["equipped"]).all()
    assert (moved["equipped"] >= moved["ready"]).all()
    assert (moved["ready"] >= moved["chosen"]).all() and (moved["chosen"] >= moved["funded"]).all()
    out = p[p["left"].notna() & ~p["diverted"]]
    expected = [first_open(params.pathways[k].rule, t)
                for k, t in zip(out["pathway"], out["transferred"])]
    np.testing.assert_allclose(out["left"].to_numpy(), np.array(expected, dtype=float),
                               rtol=0, atol=1e-9)
    if params.assessment.in_hospital:
        j = hospital_requests(result)
        granted = j[j["r_granted"].notna()]
        np.testing.assert_allclose(granted["ready"], granted["r_granted"], rtol=0, atol=1e-9)
        assert j.loc[j["r_granted"].isna(), "ready"].isna().all()


@given(configs())
@PROPERTY
def test_same_config_and_seed_give_identical_runs(params):
    a, b = simulate(params), simulate(params)
    pd.testing.assert_frame_equal(a.patients, b.patients)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
