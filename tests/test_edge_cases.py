"""Edge cases of the patient-flow model: empty, tiny, extreme and degenerate systems.

Every run here is short and bounded. Each case checks that the run finishes, that patients are
conserved (by the model's own metric and by independent counts against the acute-bed pool), and
whatever else the case implies.
"""

from __future__ import annotations

import math
import signal

import numpy as np
import pandas as pd
import pytest

from sim.core.calendar import Calendar

from sim.core.model import Model
from sim.core.params import Distribution, Window

from conftest import max_concurrent, small_params
from test_correctness import check_conservation as shared_check_conservation

H = 1.0 / 24.0
MONDAY_10_TO_11 = Window(True, [0], 10.0, 11.0)
PATHWAYS = ("p0", "p1", "p2", "p3")


def run(params):
    """Run one replication; return the model (pools, queues) and its result."""
    model = Model(params)
    result = model.run()
    return model, result


def check_conservation(model, result):
    """Every admission the admissions stream drew is discharged, diverted or still in, by the
    acute-bed pool's own count and queue (test_correctness.check_conservation); diverted patients
    never had a bed, discharged ones did, and the log's patients in a bed are the pool's."""
    shared_check_conservation(model, result)
    p = result.patients
    diverted = p["diverted"].to_numpy(bool)
    left = p["left"].notna().to_numpy()
    bed = p["bed"].notna().to_numpy()
    assert not bed[diverted].any()
    assert bed[~diverted & left].all()
    assert model.beds.in_use == int((~diverted & ~left & bed).sum())
    assert len(model.beds.queue) == int((~diverted & ~left & ~bed).sum())


def weekday_and_hour(times: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    t = times.to_numpy(float)
    return np.floor(t).astype(int) % 7, (t - np.floor(t)) * 24.0


# ---------------------------------------------------------------------------- empty systems
def test_zero_community_capacity_blocks_pathways_1_to_3_for_ever():
    """No community capacity at all: no patient who needs a service ever leaves, each waits in
    that service's queue from the assessment to the end of the run, and the model's own count
    of medically fit patients in a bed holds every one of them."""
    params = small_params(run__days=90.0, run__warmup_days=10.0,
                          services__homecare__staff__count=0, services__step_down__capacity=0,
                          services__care_home__capacity=0)
    model, result = run(params)
    check_conservation(model, result)
    p = result.patients
    community = p[p["pathway"] != "p0"]
    assert community["fit"].notna().sum() > 50, "the case needs fit pathway 1-3 patients"
    assert community["left"].isna().all(), "no pathway 1-3 patient can leave"
    assert community["ready"].isna().all()
    assert (p[p["pathway"] == "p0"]["left"].notna()).sum() > 50, "pathway 0 still flows"
    # No community service was ever granted, to anyone, and nobody holds one.
    waits = result.service_waits
    assert waits["granted"].isna().all()
    assert (waits["source"] == "community").any()
    for name, pool in model.pools.items():
        assert pool.capacity == 0 and pool.in_use == 0 and pool.use.peak == 0, name
        # Every request for the service is still in its queue, and each assessed patient asked.
        mine = waits[waits["service"] == name]
        assert len(pool.queue) == len(mine), name
        asked = community[(community["service"] == name) & community["assessed"].notna()]
        assert (mine["source"] == "hospital").sum() == len(asked) > 0, name
    # The blocked patients are all still medically fit in a bed at the end, by the model's count.
    still_fit = p["fit"].notna() & p["left"].isna()
    assert model.fit_in_hospital.level == still_fit.sum() >= community["fit"].notna().sum()


def test_zero_admissions_leave_the_hospital_empty_and_the_community_running():
    params = small_params(run__days=30.0, run__warmup_days=5.0, admissions__per_day=0.0)
    model, result = run(params)
    check_conservation(model, result)
    assert len(result.patients) == 0
    daily = result.daily
    assert len(daily) == 30
    for column in ("in_hospital", "fit_in_hospital", "waiting_for_bed", "discharges"):
        assert (daily[column] == 0).all(), column
    assert model.beds.use.peak == 0 and model.beds.in_use == 0
    assert result.value("delayed_days") == 0
    # The community services still serve their own referrals.
    waits = result.service_waits
    assert (waits["source"] == "community").any()
    assert (waits["source"] == "hospital").sum() == 0


def test_an_empty_patient_table_still_has_numeric_time_columns():
    result = run(small_params(run__days=10.0, run__warmup_days=1.0, admissions__per_day=0.0))[1]
    p = result.patients
    assert len(p) == 0
    for column in ("arrival", "bed", "fit", "assessed", "ready", "transferred", "left", "delay",
                   "delay_assessment", "delay_service", "delay_transfer", "delay_rule"):
        assert p[column].dtype == np.float64, column
    assert max_concurrent(p["bed"].to_numpy(), p["left"].to_numpy()) == 0


def test_a_tiny_community_referral_rate_means_almost_no_referrals():
    params = small_params(run__days=20.0, run__warmup_days=2.0, admissions__per_day=0.0,
                          services__homecare__community_referrals_per_day=1e-310)
    model, result = run(params)
    check_conservation(model, result)
    waits = result.service_waits
    assert not ((waits["service"] == "homecare") & (waits["source"] == "community")).any()


def test_a_service_whose_clients_take_nothing_starts_empty_and_the_run_ends():
    """Homecare packages of 0 carer-hours: filling the service on the first day must stop (no
    number of such clients reaches a utilisation), so the run ends, within seconds, with no
    initial clients."""
    params = small_params(run__days=30.0, run__warmup_days=5.0,
                          services__homecare__amount=Distribution("fixed", 0.0))

    def endless(*_):
        raise TimeoutError("filling a service whose clients take nothing never ends")

    previous = signal.signal(signal.SIGALRM, endless)
    signal.alarm(30)
    try:
        model, result = run(params)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    check_conservation(model, result)
    waits = result.service_waits
    assert not ((waits["service"] == "homecare") & (waits["source"] == "initial")).any()
    assert ((waits["service"] == "step_down") & (waits["source"] == "initial")).any()


# ---------------------------------------------------------------------------- tiny systems
def test_a_single_acute_bed_holds_one_patient_at_a_time_in_arrival_order():
    params = small_params(run__days=60.0, run__warmup_days=5.0, acute__beds=1)
    model, result = run(params)
    check_conservation(model, result)
    p = result.patients
    in_bed = max_concurrent(p["bed"].to_numpy(), p["left"].to_numpy())
    assert in_bed == 1
    assert model.beds.use.peak == 1
    assert len(model.beds.queue) > 10, "the single bed should be overwhelmed"
    # First come, first served: beds go out in arrival order, nobody overtakes.
    bed = p.sort_values("id")["bed"].to_numpy()
    given = ~np.isnan(bed)
    assert given[0] and not np.any(~given[:-1] & given[1:]), "a later arrival got a bed first"
    assert np.all(np.diff(bed[given]) >= 0)


def test_a_run_shorter_than_a_week():
    params = small_params(run__days=3.0, run__warmup_days=1.0)
    model, result = run(params)
    check_conservation(model, result)
    p = result.patients
    assert len(p) > 5
    assert (p["arrival"] < 3.0).all()
    for column in ("bed", "fit", "assessed", "ready", "left"):
        assert (p[column].dropna() <= 3.0).all(), column
    daily = result.daily
    assert daily["day"].tolist() == [0, 1, 2]
    assert daily["warmup"].tolist() == [True, False, False]
    assert result.value("window_days") == 2.0
    assert math.isnan(result.value("weekend_discharge_ratio")), "no weekend in Mon-Wed"


# ---------------------------------------------------------------------------- one pathway only
@pytest.mark.parametrize("pathway", ["p0", "p1", "p2", "p3"])
def test_every_patient_on_one_pathway(pathway):
    # All four shares change in the one override call, so they are validated together.
    shares = {f"pathways__{k}__share": (1.0 if k == pathway else 0.0) for k in PATHWAYS}
    params = small_params(run__days=60.0, run__warmup_days=5.0, **shares)
    assert [pw.share for pw in params.pathways.values()] == [
        1.0 if k == pathway else 0.0 for k in PATHWAYS]
    model, result = run(params)
    check_conservation(model, result)
    p = result.patients
    assert len(p) > 100
    assert (p["pathway"] == pathway).all()
    hospital = result.service_waits[result.service_waits["source"] == "hospital"]
    if pathway == "p0":
        assert hospital.empty
        assert (p["assessed"].dropna() == p["fit"].dropna()).all()
    else:
        expected = {"p1": "homecare", "p2": "step_down", "p3": "care_home"}[pathway]
        assert len(hospital) > 0 and (hospital["service"] == expected).all()
    discharged = p[p["left"].notna() & ~p["diverted"]]
    assert len(discharged) > 0
    assert result.value(f"discharge_share.{pathway}") == 1.0


# ---------------------------------------------------------------------------- rules
def test_all_rules_off_means_no_rule_delay_and_discharges_at_any_hour():
    updates = {f"pathways__{k}__rule__enabled": False for k in PATHWAYS}
    params = small_params(run__days=60.0, run__warmup_days=5.0, acute__beds=500,
                          assessment__hours__enabled=False, assessment__staff=100, **updates)
    model, result = run(params)
    check_conservation(model, result)
    p = result.patients
    out = p[p["left"].notna() & ~p["diverted"]]
    assert len(out) > 200
    # Leaving happens as soon as the transfer is done.
    np.testing.assert_allclose(out["left"], out["transferred"], rtol=0, atol=1e-9)
    assert result.value("delayed_days_per_30d.rule") == pytest.approx(0.0, abs=1e-9)
    # With a team always at work and never short of staff, assessment takes exactly its duration.
    assessed = p[(p["pathway"] != "p0") & p["assessed"].notna()]
    assert len(assessed) > 100
    np.testing.assert_allclose(assessed["assessed"] - assessed["fit"], assessed["assessment"],
                               rtol=0, atol=1e-9)
    weekday, hour = weekday_and_hour(out["left"])
    assert np.isin(weekday, [5, 6]).any(), "discharges at weekends"
    assert ((hour < 8) | (hour >= 20)).any(), "discharges at night"


def test_all_rules_strict_monday_10_to_11():
    updates = {f"pathways__{k}__rule": MONDAY_10_TO_11 for k in PATHWAYS}
    params = small_params(run__days=120.0, run__warmup_days=7.0, acute__beds=2000,
                          assessment__hours=MONDAY_10_TO_11, assessment__staff=500, **updates)
    model, result = run(params)
    check_conservation(model, result)
    p = result.patients
    out = p[p["left"].notna() & ~p["diverted"]]
    for k in PATHWAYS:
        assert (out["pathway"] == k).sum() > 0, f"no {k} discharge: the test has no teeth"
    weekday, hour = weekday_and_hour(out["left"])
    assert (weekday == 0).all(), "a discharge outside Monday"
    assert ((hour >= 10 - 1e-6) & (hour < 11 + 1e-6)).all(), "a discharge outside 10-11"
    # Assessments end in the team's hour: on a Monday, after 10:00 and by 11:00.
    assessed = p[(p["pathway"] != "p0") & p["assessed"].notna()]
    assert len(assessed) > 20
    weekday, hour = weekday_and_hour(assessed["assessed"])
    assert (weekday == 0).all()
    assert ((hour > 10) & (hour <= 11 + 1e-6)).all()


def test_an_assessment_of_exactly_one_session_ends_when_that_session_closes():
    """Team on Monday 10-11 only and assessments of exactly one hour: an assessment that begins
    at a session's opening ends at 11:00 that Monday (none waits for an assessor here)."""
    params = small_params(run__days=60.0, run__warmup_days=5.0, acute__beds=2000,
                          assessment__hours=MONDAY_10_TO_11, assessment__staff=500,
                          assessment__duration=Distribution("fixed", H))
    model, result = run(params)
    check_conservation(model, result)
    p = result.patients
    assessed = p[(p["pathway"] != "p0") & p["assessed"].notna()]
    assert len(assessed) > 50
    fit = assessed["fit"].to_numpy()
    week = np.floor(fit / 7.0) * 7.0
    offset = fit - week
    start = np.where(offset < 10 * H, week + 10 * H, week + 7.0 + 10 * H)
    # From inside a session, the hour is this session's rest plus next week's beginning.
    expected = np.where((offset >= 10 * H) & (offset < 11 * H), fit + 7.0, start + H)
    np.testing.assert_allclose(assessed["assessed"].to_numpy(), expected, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------- the discharge team
def test_zero_assessors_block_pathways_1_to_3_and_leave_pathway_0_untouched():
    common = dict(run__days=60.0, run__warmup_days=5.0, acute__beds=1000)
    model, none = run(small_params(assessment__staff=0, **common))
    check_conservation(model, none)
    _, staffed = run(small_params(assessment__staff=10, **common))
    p = none.patients
    community = p[p["pathway"] != "p0"]
    assert community["fit"].notna().sum() > 50
    assert community["assessed"].isna().all() and community["left"].isna().all()
    # Each joined the team's queue at its first working hour after becoming fit.
    team = Calendar(model.params.assessment.hours)
    fit = community["fit"].dropna()
    joined = sum(team.next_open(t) < model.params.run.days for t in fit)
    assert len(model.assessors.queue) == joined and joined > 50
    assert math.isnan(none.value("assessors_utilisation"))
    # With staff, the same patients do leave, so the block is the team's absence.
    s = staffed.patients
    assert s[s["pathway"] != "p0"]["left"].notna().sum() > 50
    # Pathway 0 does not meet the team: with beds to spare its patients are the very same.
    pd.testing.assert_frame_equal(p[p["pathway"] == "p0"], s[s["pathway"] == "p0"])
    assert p[p["pathway"] == "p0"]["left"].notna().sum() > 50


def test_zero_assessors_do_not_block_discharge_to_assess():
    params = small_params(run__days=60.0, run__warmup_days=5.0, acute__beds=1000,
                          assessment__staff=0, assessment__in_hospital=False)
    model, result = run(params)
    check_conservation(model, result)
    p = result.patients
    assert p[p["pathway"] != "p0"]["left"].notna().sum() > 50
    assert len(model.assessors.queue) > 50, "the assessments wait in the community instead"


# ---------------------------------------------------------------------------- diversion
@pytest.mark.parametrize("limit", [0.0, 0.5])
def test_diverted_patients_never_get_a_bed(limit):
    params = small_params(run__days=60.0, run__warmup_days=5.0, acute__beds=5,
                          acute__max_wait_for_bed=limit)
    model, result = run(params)
    check_conservation(model, result)
    p = result.patients
    diverted = p[p["diverted"]]
    admitted = p[~p["diverted"] & p["bed"].notna()]
    assert len(diverted) > 50 and len(admitted) > 10
    assert diverted["bed"].isna().all() and diverted["fit"].isna().all()
    for column in ("assessed", "ready", "transferred"):
        assert diverted[column].isna().all(), column
    # Diverted after exactly the allowed wait; admitted within it.
    np.testing.assert_allclose(diverted["left"] - diverted["arrival"], limit, rtol=0, atol=1e-9)
    assert ((admitted["bed"] - admitted["arrival"]) <= limit + 1e-9).all()
    if limit == 0:
        assert (admitted["bed"] == admitted["arrival"]).all()
        assert len(model.beds.queue) == 0
    assert max_concurrent(p["bed"].to_numpy(), p["left"].to_numpy()) <= 5
    assert model.beds.use.peak <= 5
    assert result.value("diverted_total") == len(diverted)


# ---------------------------------------------------------------------------- distributions
@pytest.mark.parametrize("dist", [
    Distribution("empirical", values=[0.5, 2.0, 7.0]),
    Distribution("gamma", 5.0, 3.0),
    Distribution("fixed", 4.0),
    Distribution("fixed", 0.0),
], ids=["empirical", "gamma", "fixed", "fixed-zero"])
def test_acute_stay_distributions(dist):
    updates = {f"pathways__{k}__acute_stay": dist for k in PATHWAYS}
    params = small_params(run__days=60.0, run__warmup_days=5.0, acute__beds=1000, **updates)
    model, result = run(params)
    check_conservation(model, result)
    p = result.patients
    assert len(p) > 400
    stay = p["acute_stay"].to_numpy()
    became_fit = p[p["fit"].notna()]
    assert len(became_fit) > 300
    np.testing.assert_allclose(became_fit["fit"] - became_fit["bed"], became_fit["acute_stay"],
                               rtol=0, atol=1e-9)
    if dist.kind == "empirical":
        assert set(np.unique(stay)) == set(dist.values), "every value, and only those"
    elif dist.kind == "fixed":
        assert (stay == dist.mean).all()
    else:
        assert (stay > 0).all()
        assert abs(stay.mean() - dist.mean) < 0.6  # ~5 standard errors for ~600 draws
        assert abs(stay.std() - dist.sd) < 0.6


# ---------------------------------------------------------------------------- calendars
def test_whole_days_open_back_to_back_make_one_open_period():
    """Monday and Tuesday open all day: one period from Monday 00:00 to Wednesday 00:00 (two
    days a week). Half a day of work begun on Tuesday at noon ends on Tuesday at midnight; a
    whole day begun then ends at noon the next Monday; two and a half days end at the close of
    the next Tuesday, not at the opening after it."""
    calendar = Calendar(Window(True, [0, 1], 0.0, 24.0))
    assert calendar.periods == [(0.0, 2.0)] and calendar.open_per_week == 2.0
    assert calendar.next_open(0.5) == 0.5 and calendar.next_open(1.0) == 1.0
    assert calendar.next_open(2.5) == 7.0
    assert calendar.add_open_time(1.5, 0.5) == pytest.approx(2.0, abs=1e-12)
    assert calendar.add_open_time(1.5, 1.0) == pytest.approx(7.5, abs=1e-12)
    assert calendar.add_open_time(1.5, 2.5) == pytest.approx(9.0, abs=1e-12)


def test_no_work_takes_no_time_even_when_closed_and_an_always_open_team_works_straight_on():
    """No work ends where it starts, even on a Saturday when the team is away; with the
    team's hours switched off, work takes exactly its length, at any hour of any day."""
    weekdays = Calendar(Window(True, [0, 1, 2, 3, 4], 9.0, 17.0))
    assert weekdays.add_open_time(5.5, 0.0) == 5.5
    always = Calendar(Window(False, [0], 9.0, 10.0))
    assert always.add_open_time(5.5, 0.25) == 5.75
    assert always.add_open_time(6.9, 0.2) == pytest.approx(7.1, abs=1e-12)
