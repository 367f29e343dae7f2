"""Tests that would catch a wrong answer: each result of a run checked against a second,
independent computation of the same quantity.

- admissions against the admissions stream's own draws, and conservation against them and the
  acute-bed pool's own count;
- common random numbers: a change of capacity leaves every patient's drawn attributes unchanged;
- each phase of a stay lasts what was drawn for it (acute stay, transfer, the community stay,
  the step-down place held until onward care is granted);
- the per-cause, per-pathway and per-patient delay metrics against sums over the patient log
  in the measured window;
- the pools' time-averages after the warm-up against integrals over the patient and request
  logs.

Every check holds exactly (to rounding) for any seed; the small system of conftest keeps each
test to a second or two.
"""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from sim import simulate
from sim.core.metrics import compute_metrics
from sim.core.model import Model
from sim.core.patient import NOT_LOGGED, Patient
from sim.core.resources import TimeWeighted
from sim.core.params import Distribution, Params, Window
from sim.core.streams import batch_draw, length_biased_draw, replication_streams

from conftest import small_params

SEEDS = (20240101, 7)
DRAWN = ["arrival", "pathway", "acute_stay", "transfer", "assessment", "service", "amount",
         "stay", "onward", "onward_amount", "onward_stay", "summary", "funding", "choice",
         "equipment", "segment", "complex"]
"""Patient attributes drawn on arrival, from random streams of their own."""
PER = 30.0
SERVICES = ("homecare", "step_down", "care_home")
EXACT = dict(rtol=1e-9, atol=1e-9)


def stretched_params(**overrides) -> Params:
    """The small system with every community service short, so that each has a queue and every
    cause of delay occurs in any seed: care homes full on the first day with three times the
    community referrals, step-down places 20 (of 24) and full, 32 carers (of 35), and twice
    the step-down clients going on to a care home."""
    small = small_params()
    settings = dict(
        services__care_home__initial_utilisation=1.0,
        services__care_home__community_referrals_per_day=(
            3 * small.services["care_home"].community_referrals_per_day),
        services__step_down__capacity=20, services__step_down__initial_utilisation=1.0,
        services__step_down__then={"home": 0.45, "homecare": 0.35, "care_home": 0.20},
        services__homecare__staff__count=32)
    settings.update(overrides)
    return small_params(**settings)


# ---------------------------------------------------------------------------- independent counts
def expected_admissions(params: Params, t: float) -> float:
    """The integral of the admission rate from 0 to t, hour by hour, straight from the
    definition in :class:`sim.core.params.Admissions`."""
    a = params.admissions
    total, hour = 0.0, 0
    while hour < t * 24.0:
        day = hour // 24
        rate = a.per_day * a.day_of_week[day % 7] * a.hour_of_day[hour % 24]
        if a.winter_start <= day % 365 < a.winter_end:
            rate *= a.winter_multiplier
        total += rate / 24.0 * min(1.0, t * 24.0 - hour)
        hour += 1
    return total


def drawn_admissions(params: Params, replication: int = 0) -> int:
    """How many admissions the replication's admissions stream holds before the run's end: the
    unit-exponential running sums that fall below the expected number of admissions by then
    (a Poisson process by time change)."""
    rng = replication_streams(params.run.seed, replication)["admissions"]
    limit = expected_admissions(params, params.run.days)
    count, reached = 0, 0.0
    while reached < limit:
        sums = reached + np.cumsum(rng.exponential(1.0, 512))
        count += int((sums < limit).sum())
        reached = float(sums[-1])
    return count


def check_conservation(model: Model, result) -> None:
    """Every admission drawn is in the patient log, and is discharged, diverted, in a bed or
    queueing for one, by the acute-bed pool's own count and queue (not by the log's flags)."""
    p = result.patients
    drawn = drawn_admissions(model.params, model.replication)
    assert len(p) == drawn == result.value("arrivals_total")
    diverted = p["diverted"].to_numpy(bool)
    left = p["left"].notna().to_numpy()
    discharged = int((~diverted & left).sum())
    assert discharged + int(diverted.sum()) + model.beds.in_use + len(model.beds.queue) == drawn
    assert result.value("discharged_total") == discharged
    assert result.value("diverted_total") == diverted.sum()
    assert result.value("in_system_end") == model.beds.in_use + len(model.beds.queue)
    # Discharges per day, counted by the daily table, add up to the same patients.
    assert result.daily["discharges"].sum() == discharged


def test_admission_times_are_the_streams_draws_scaled_by_a_flat_rate():
    """With a flat profile the admissions are a Poisson process of rate per_day: arrival i is
    at (E1 + ... + Ei) / per_day, the E's being the admissions stream's unit exponentials."""
    params = small_params(admissions__day_of_week=[1.0] * 7, admissions__hour_of_day=[1.0] * 24)
    arrivals = simulate(params).patients["arrival"].to_numpy()
    rng = replication_streams(params.run.seed, 0)["admissions"]
    times = np.cumsum(rng.exponential(1.0, 2 * arrivals.size + 1000)) / params.admissions.per_day
    expected = times[times < params.run.days]
    assert arrivals.size == expected.size > 2000
    np.testing.assert_allclose(arrivals, expected, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_patients_are_conserved_against_the_admissions_drawn_and_the_bed_pool(seed):
    """Few beds and a limit on the wait for one, so that patients are discharged, diverted and
    still in a bed at the end (and often queueing for one)."""
    params = small_params(run__seed=seed, acute__beds=60, acute__max_wait_for_bed=1.0,
                          run__days=60.0, run__warmup_days=10.0)
    model = Model(params)
    result = model.run()
    check_conservation(model, result)
    p = result.patients
    assert p["diverted"].sum() > 10 and model.beds.in_use > 0
    # Conservation of beds: the pool's count equals the patients the log has in a bed.
    in_bed = p["bed"].notna() & p["left"].isna()
    assert model.beds.in_use == in_bed.sum()
    assert result.value("conservation_error") == 0


def test_conservation_error_counts_a_patient_the_log_lost():
    """The metric checks the log against the bed pool's own count: a log missing one patient
    still in a bed is one patient short (a partition of the log would still say 0)."""
    model = Model(small_params(run__days=60.0, run__warmup_days=10.0))
    result = model.run()
    p = result.patients
    lost = p.index[p["bed"].notna() & p["left"].isna() & p["died"].isna()][0]
    metrics = compute_metrics(model.params, p.drop(index=lost), result.daily,
                              result.service_waits, model.beds, model.assessors, model.pools,
                              model.fit_in_hospital, model.rosters)
    assert metrics.set_index("metric").loc["conservation_error", "value"] == -1


def test_the_expected_admissions_follow_the_profiles():
    """The hour-by-hour integral used above, checked by hand: a week of the default profile
    at 10 a day is 70 (profiles have mean 1), and a winter of 3 days at x2 adds 30."""
    params = small_params(admissions__per_day=10.0)
    assert expected_admissions(params, 7.0) == pytest.approx(70.0, rel=1e-12)
    winter = small_params(admissions__per_day=10.0, admissions__winter_multiplier=2.0,
                          admissions__winter_start=1, admissions__winter_end=4)
    dow = params.admissions.day_of_week
    assert expected_admissions(winter, 7.0) == pytest.approx(70.0 + 10.0 * sum(dow[1:4]),
                                                             rel=1e-12)


# ---------------------------------------------------------------------------- common random numbers
@pytest.mark.parametrize("replication", [0, 1])
def test_a_change_of_capacity_leaves_every_drawn_attribute_identical(replication):
    """Common random numbers: every capacity changed (acute beds, the team, each community
    service, whose initial fill then draws a different number of residents) and yet every
    patient, and every community referral, draws exactly the same numbers; only what depends on
    capacity (when they got a bed, a place, left) moves."""
    base_params = stretched_params()
    services = base_params.services
    changed = stretched_params(
        acute__beds=base_params.acute.beds - 8,
        assessment__staff=base_params.assessment.staff + 1,
        services__homecare__staff__count=services["homecare"].staff.count * 3 // 2,
        services__step_down__capacity=services["step_down"].capacity + 3,
        services__care_home__capacity=services["care_home"].capacity - 20)
    a, b = simulate(base_params, replication), simulate(changed, replication)
    pd.testing.assert_frame_equal(a.patients[DRAWN], b.patients[DRAWN])
    for service in SERVICES:
        assert (a.patients["service"] == service).sum() > 10, service
    assert (a.patients["onward"] != "").sum() > 5

    def referrals(result):
        w = result.service_waits
        w = w[w["source"] == "community"]
        return w.sort_values(["service", "requested"], kind="stable").reset_index(drop=True)

    ra, rb = referrals(a), referrals(b)
    pd.testing.assert_frame_equal(ra[["service", "requested", "amount"]],
                                  rb[["service", "requested", "amount"]])
    both = ra["granted"].notna() & rb["granted"].notna()
    np.testing.assert_array_equal(ra.loc[both, "stay"], rb.loc[both, "stay"])
    # ... while the outcomes do differ, so the runs are not simply the same run.
    assert not a.patients["left"].equals(b.patients["left"])


# ---------------------------------------------------------------------------- phase lengths
def first_open(window: Window, t: float) -> float:
    """The first moment >= t that ``window`` allows, by walking the days (independent of
    :class:`sim.core.calendar.Calendar`)."""
    if not window.enabled:
        return t
    day = math.floor(t)
    for d in range(day, day + 8):
        if d % 7 in window.days:
            opens, closes = d + window.start_hour / 24.0, d + window.end_hour / 24.0
            if t < closes:
                return max(t, opens)
    raise AssertionError("a window that never opens")


def work_done(window: Window, t: float, work: float) -> float:
    """When ``work`` days of work begun at t are done in ``window``'s hours, at its weekend
    pace on Saturdays and Sundays, by walking the days (independent of the Calendar)."""
    if not window.enabled:
        return t + work
    day = math.floor(t)
    while True:
        if day % 7 in window.days:
            opens = max(t, day + window.start_hour / 24.0)
            closes = day + window.end_hour / 24.0
            pace = window.weekend_cover if day % 7 >= 5 else 1.0
            if opens < closes or (work == 0 and opens <= closes):
                if work <= (closes - opens) * pace + 1e-12:
                    return opens + work / pace
                work -= (closes - opens) * pace
        day += 1


@pytest.mark.parametrize("seed", SEEDS)
def test_each_phase_of_the_hospital_stay_lasts_what_was_drawn(seed):
    """fit - bed is the acute stay; the discharge summary is done its drawn work after fit in
    the ward's hours (at the weekend pace on Saturdays and Sundays); the funding decision is at
    the panel's next sitting after its preparation in social workers' hours; the choice takes
    its drawn days; equipment arrives its drawn days after the assessment; the patient is
    summarised and equipped when the later of those and the service is ready; transferred -
    summarised is the transfer; the patient leaves at the first moment the pathway's rule
    allows after the transfer; a pathway with no assessment or no service skips that phase.
    Homecare starts here on weekdays 9-17 only, so that many wait for the rule."""
    params = stretched_params(run__seed=seed,
                              pathways__p1__rule=Window(True, [0, 1, 2, 3, 4], 9.0, 17.0))
    result = simulate(params)
    p = result.patients[~result.patients["diverted"]]
    days = params.run.days
    fit = p[p["fit"].notna()]
    np.testing.assert_allclose(fit["fit"] - fit["bed"], fit["acute_stay"], **EXACT)

    ready = p[p["ready"].notna()]
    assert len(ready) > 1000
    equipment = ready["assessed"] + ready["equipment"]
    equipped = np.where(equipment > ready["ready"], equipment, ready["ready"])
    summary = [f if w <= 0 else work_done(params.ward.hours, f, w)
               for f, w in zip(ready["fit"], ready["summary"])]
    summarised = np.maximum(equipped, summary)
    transferred = summarised + ready["transfer"]
    for column, expected in (("equipped", equipped), ("summarised", summarised),
                             ("transferred", transferred)):
        late = expected > days  # not happened by the end of the run
        assert ready.loc[late, column].isna().all(), column
        np.testing.assert_allclose(ready.loc[~late, column], expected[~late], **EXACT)
    for cause, column in (("equipment", "equipped"), ("summary", "summarised")):
        waited = ready[column] > ready["ready"] + 1e-9
        assert waited.sum() > 20, f"nobody waited for {cause}: the check has no teeth"

    assessed = p[p["assessed"].notna() & p["chosen"].notna()]
    prepared = [a if np.isnan(f) else first_open(params.funding.panel,
                                                 work_done(params.funding.hours, a, f))
                for a, f in zip(assessed["assessed"], assessed["funding"])]
    np.testing.assert_allclose(assessed["funded"], prepared, **EXACT)
    np.testing.assert_allclose(assessed["chosen"], assessed["funded"] + assessed["choice"],
                               **EXACT)
    assert (assessed["funded"] > assessed["assessed"] + 1e-9).sum() >= 3, "some wait for funding"

    out = p[p["left"].notna()]
    rules = {k: pw.rule for k, pw in params.pathways.items()}
    expected = [first_open(rules[k], t) for k, t in zip(out["pathway"], out["transferred"])]
    np.testing.assert_allclose(out["left"], expected, **EXACT)
    assert (out["left"] > out["transferred"] + 1e-6).sum() > 100, "the rules do delay some"
    waiting = p[p["transferred"].notna() & p["left"].isna()]
    assert all(first_open(rules[k], t) >= days - 1e-9
               for k, t in zip(waiting["pathway"], waiting["transferred"]))

    for key, pathway in params.pathways.items():
        mine = fit[fit["pathway"] == key]
        assert len(mine) > 10, key
        done = mine[mine["assessed"].notna()]
        if not pathway.needs_assessment:
            np.testing.assert_array_equal(done["assessed"], done["fit"])
        else:
            assert (done["assessed"] - done["fit"] >= done["assessment"] - 1e-9).all(), key
        placed = mine[mine["ready"].notna()]
        if pathway.service is None:
            np.testing.assert_array_equal(placed["ready"], placed["chosen"])
            assert (mine["service"] == "").all()
        else:
            assert (mine["service"] == pathway.service).all()
        assert mine["funding"].notna().any() == (pathway.funded_share > 0), key
        assert mine["equipment"].notna().any() == (pathway.equipment_share > 0), key


def hospital_requests(result) -> pd.DataFrame:
    """Each patient who asked for a community service, joined to the request made: it was made
    the moment the patient had chosen (after the assessment and any funding decision), for the
    patient's service and amount."""
    p = result.patients
    asked = p[(p["service"] != "") & p["chosen"].notna()]
    w = result.service_waits
    w = w[w["source"] == "hospital"].add_prefix("r_")
    joined = asked.merge(w, left_on=["id", "service"],
                         right_on=["r_patient", "r_service"], how="left", validate="1:1")
    assert joined["r_requested"].notna().all(), "a patient's request is missing from the log"
    np.testing.assert_allclose(joined["r_requested"], joined["chosen"], **EXACT)
    assert len(w) == len(asked), "a request no patient made"
    return joined


@pytest.mark.parametrize("seed", SEEDS)
def test_a_patient_is_ready_when_the_service_is_granted_and_holds_it_for_the_stay(seed):
    """The request log against the patient log: a patient is ready the moment the service is
    granted, asks for the amount drawn, and (with no onward step) frees the service exactly
    the drawn stay after leaving the acute bed."""
    params = stretched_params(run__seed=seed)
    result = simulate(params)
    j = hospital_requests(result)
    np.testing.assert_allclose(j["r_amount"], j["amount"], **EXACT)
    granted = j[j["r_granted"].notna()]
    np.testing.assert_allclose(granted["ready"], granted["r_granted"], **EXACT)
    assert j.loc[j["r_granted"].isna(), "ready"].isna().all()
    assert (granted["r_granted"] > granted["r_requested"]).sum() > 10, "some patients wait"

    simple = j[(j["onward"] == "") & j["left"].notna()]
    for service in SERVICES:
        assert (simple["service"] == service).sum() > 5, service
    # A place is freed the drawn stay after leaving the acute bed, unless its provider handed
    # it back first: then a request "handed_back" is made that moment, for the same amount and
    # the rest of the stay.
    w = result.service_waits
    again = w[w["source"].isin(["handed_back", "moved"])]
    back = set(zip(again["service"], again["requested"], again["amount"]))
    handed = np.array([(s, r, a) in back for s, r, a in
                       zip(simple["service"], simple["r_released"], simple["amount"])])
    assert handed.sum() > 3, "no package was handed back: the check has no teeth"
    ends = (simple["left"] + simple["stay"]).to_numpy()
    released = simple["r_released"].to_numpy()
    kept = ~handed & (ends < params.run.days)
    np.testing.assert_allclose(released[kept], ends[kept], **EXACT)
    assert np.isnan(released[~handed & (ends >= params.run.days)]).all()
    assert (released[handed] < ends[handed]).all()
    # The client, at home, is placed again for what is left of the need: the place is freed at
    # the original end (or at once, if the need ended while being placed again).
    successor = again.set_index(["service", "requested", "amount"])
    rows = [successor.loc[(s, r, a)] for s, r, a in
            zip(simple["service"][handed], released[handed], simple["amount"][handed])]
    placed = np.array([not np.isnan(row["granted"]) for row in rows])
    assert placed.sum() > 3
    # (its use begins when the patient leaves hospital, or at its grant if later: so it ends
    # at the original end, or at its grant if that is later; those handed back again aside)
    freed = np.array([row["released"] for row in rows])
    granted = np.array([row["granted"] for row in rows])
    again_back = np.array([(s, r, a) in back for s, r, a in
                           zip(simple["service"][handed], freed, simple["amount"][handed])])
    check = placed & ~np.isnan(freed) & ~again_back
    assert check.sum() > 3
    np.testing.assert_allclose(freed[check], np.maximum(ends[handed], granted)[check], **EXACT)
    # Community referrals too hold their place for exactly their stay, unless handed back.
    done = w[(w["source"] == "community") & w["released"].notna()]
    assert len(done) > 100
    whole = [(s, r, a) not in back for s, r, a in
             zip(done["service"], done["released"], done["amount"])]
    np.testing.assert_allclose(done["released"][whole] - done["granted"][whole],
                               done["stay"][whole], **EXACT)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_step_down_place_is_held_until_onward_care_is_granted(seed):
    """After a step-down stay a patient who needs homecare or a care home asks for it at the
    end of the stay, and keeps the step-down place until it is granted: the place is freed at
    that grant, not at the end of the stay nor at once. One going home frees it at the end of
    the stay."""
    params = stretched_params(run__seed=seed)
    result = simulate(params)
    days = params.run.days
    j = hospital_requests(result)
    stepped = j[(j["service"] == "step_down") & j["left"].notna()].copy()
    stepped["stay_end"] = stepped["left"] + stepped["stay"]
    stepped = stepped[stepped["stay_end"] < days]

    home = stepped[stepped["onward"] == ""]
    assert len(home) > 5
    np.testing.assert_allclose(home["r_released"], home["stay_end"], **EXACT)

    onward = stepped[stepped["onward"] != ""]
    w = result.service_waits
    moves = w[w["source"] == "step_down"].add_prefix("o_")
    linked = onward.merge(moves, left_on=["id", "onward"],
                          right_on=["o_patient", "o_service"], how="left", validate="1:1")
    assert linked["o_requested"].notna().all(), "an onward request is missing"
    assert len(moves) == len(linked), "an onward request nobody made"
    np.testing.assert_allclose(linked["o_requested"], linked["stay_end"], **EXACT)
    assert set(linked["onward"]) == {"homecare", "care_home"}
    np.testing.assert_allclose(linked["o_amount"], linked["onward_amount"], **EXACT)
    granted = linked[linked["o_granted"].notna()]
    np.testing.assert_allclose(granted["r_released"], granted["o_granted"], **EXACT)
    assert linked.loc[linked["o_granted"].isna(), "r_released"].isna().all()
    assert (granted["o_granted"] > granted["o_requested"] + 1e-6).any(), "some wait onward"
    # The onward stay is held for its drawn days unless its provider handed it back or closed
    # first: then the same patient's request for the rest is made that moment.
    again = w[w["source"].isin(["handed_back", "moved"])]
    placed_again = set(zip(again["patient"], again["service"], again["requested"]))
    kept = np.array([(i, s, r) not in placed_again for i, s, r in
                     zip(granted["id"], granted["onward"], granted["o_released"])])
    finished = granted[kept & (granted["o_granted"] + granted["onward_stay"] < days)]
    assert len(finished) > 5
    np.testing.assert_allclose(finished["o_released"] - finished["o_granted"],
                               finished["onward_stay"], **EXACT)
    np.testing.assert_allclose(finished["o_stay"], finished["onward_stay"], **EXACT)


# ---------------------------------------------------------------------------- delay metrics
def overlap(start: np.ndarray, end: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Days of [start, end) inside [lo, hi); a missing end (NaN) is the run's end."""
    end = np.where(np.isnan(end), hi, end)
    return np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0.0, None)


@pytest.mark.parametrize("seed", SEEDS)
def test_delay_metrics_are_the_patient_logs_sums_over_the_measured_window(seed):
    """Delayed bed-days per 30 days by cause (assessment, funding, choice, the wait for each
    service, equipment, summary, transfer, rule) and by pathway, summed over the patient log between the warm-up and the end, equal
    the metrics; each cause occurs, so a swap of two causes would show."""
    params = stretched_params(run__seed=seed)
    result = simulate(params)
    p = result.patients[result.patients["fit"].notna()]
    lo, hi = params.run.warmup_days, params.run.days
    scale = PER / (hi - lo)
    col = {c: p[c].to_numpy(float) for c in ("fit", "assessed", "funded", "chosen", "ready",
                                               "equipped", "summarised", "transferred", "left")}
    # A phase not reached by the end of the run starts at the end: it adds nothing.
    start = {c: np.where(np.isnan(v), hi, v) for c, v in col.items()}
    cause = {
        "assessment": overlap(start["fit"], col["assessed"], lo, hi),
        "funding": overlap(start["assessed"], col["funded"], lo, hi),
        "choice": overlap(start["funded"], col["chosen"], lo, hi),
        "service": overlap(start["chosen"], col["ready"], lo, hi),
        "equipment": overlap(start["ready"], col["equipped"], lo, hi),
        "summary": overlap(start["equipped"], col["summarised"], lo, hi),
        "transfer": overlap(start["summarised"], col["transferred"], lo, hi),
        "rule": overlap(start["transferred"], col["left"], lo, hi),
    }
    whole = overlap(col["fit"], col["left"], lo, hi)
    np.testing.assert_allclose(sum(cause.values()), whole, **EXACT)

    def metric(name: str, days: np.ndarray) -> None:
        assert days.sum() > 0, f"{name}: no delay of this kind, the check has no teeth"
        assert result.value(name) == pytest.approx(days.sum() * scale, rel=1e-9), name

    metric("delayed_days_per_30d", whole)
    assert result.value("delayed_days") == pytest.approx(whole.sum(), rel=1e-9)
    for name in ("assessment", "funding", "choice", "equipment", "summary", "transfer", "rule"):
        metric(f"delayed_days_per_30d.{name}", cause[name])
    service = p["service"].to_numpy(str)
    for name in SERVICES:
        metric(f"delayed_days_per_30d.{name}", cause["service"][service == name])
    pathway = p["pathway"].to_numpy(str)
    for key in params.pathways:
        metric(f"delayed_days_per_30d.{key}", whole[pathway == key])


@pytest.mark.parametrize("seed", SEEDS)
def test_per_patient_delay_metrics_are_those_of_the_patients_discharged_in_the_window(seed):
    """Mean and 90th-percentile delay (left - fit) and the share of discharges, per pathway
    and by the weekday the patient became fit, over patients discharged after the warm-up."""
    params = stretched_params(run__seed=seed)
    result = simulate(params)
    p = result.patients
    out = p[~p["diverted"] & p["left"].notna() & (p["left"] >= params.run.warmup_days)]
    assert result.value("discharged") == len(out)
    delay = (out["left"] - out["fit"]).to_numpy()
    assert result.value("delay_mean.all") == pytest.approx(delay.mean(), rel=1e-9)
    assert result.value("delay_p90.all") == pytest.approx(np.percentile(delay, 90), rel=1e-9)
    for key in params.pathways:
        mine = delay[(out["pathway"] == key).to_numpy()]
        assert mine.size > 5, key
        assert result.value(f"delay_mean.{key}") == pytest.approx(mine.mean(), rel=1e-9)
        assert result.value(f"delay_p90.{key}") == pytest.approx(np.percentile(mine, 90), rel=1e-9)
        assert result.value(f"discharge_share.{key}") == pytest.approx(mine.size / len(out),
                                                                       rel=1e-12)
    weekday = np.floor(out["fit"].to_numpy()).astype(int) % 7
    for day, name in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")):
        assert result.value(f"delay_mean.fit_{name}") == pytest.approx(
            delay[weekday == day].mean(), rel=1e-9)


def test_the_delay_columns_of_the_log_are_the_phase_lengths(small_run):
    """Each delay column is the length of its phase, and together they make the whole delay."""
    p = small_run.patients
    done = p[p["left"].notna() & p["transferred"].notna() & ~p["diverted"]]
    assert len(done) > 1000
    pairs = {"delay_assessment": ("fit", "assessed"), "delay_funding": ("assessed", "funded"),
             "delay_choice": ("funded", "chosen"), "delay_service": ("chosen", "ready"),
             "delay_equipment": ("ready", "equipped"),
             "delay_summary": ("equipped", "summarised"),
             "delay_transfer": ("summarised", "transferred"),
             "delay_rule": ("transferred", "left"), "delay": ("fit", "left")}
    for column, (a, b) in pairs.items():
        np.testing.assert_allclose(done[column], done[b] - done[a], **EXACT)
        assert (done[column] > 0).any(), column
    parts = done[[c for c in pairs if c != "delay"]]
    np.testing.assert_allclose(parts.sum(axis=1), done["delay"], **EXACT)


# ---------------------------------------------------------------------------- time-averages
@pytest.mark.parametrize("seed, warmup", [(SEEDS[0], 28.0), (SEEDS[1], 28.0), (SEEDS[1], 0.5)])
def test_time_averages_after_the_warm_up_equal_the_logs_integrals(seed, warmup):
    """The pools integrate their own levels; the logs say who held what when. Over the window
    after the warm-up (of weeks, or of half a day) they must agree: occupied acute beds,
    medically fit patients in hospital, each service's units in use and its queue, the waits,
    the midnight counts."""
    params = stretched_params(run__seed=seed, run__warmup_days=warmup)
    result = simulate(params)
    lo, hi = params.run.warmup_days, params.run.days
    window = hi - lo
    p = result.patients
    in_bed = p[p["bed"].notna()]
    beds = overlap(in_bed["bed"].to_numpy(), in_bed["left"].to_numpy(), lo, hi).sum() / window
    assert result.value("acute_occupied_beds") == pytest.approx(beds, rel=1e-9)
    assert result.value("acute_occupancy") == pytest.approx(beds / params.acute.beds, rel=1e-9)
    fit = p[p["fit"].notna()]
    fit_mean = overlap(fit["fit"].to_numpy(), fit["left"].to_numpy(), lo, hi).sum() / window
    assert result.value("fit_in_hospital_mean") == pytest.approx(fit_mean, rel=1e-9)

    midnights = np.arange(math.ceil(lo), math.ceil(hi))
    counts = [((fit["fit"] <= d) & ~(fit["left"] <= d)).sum() for d in midnights]
    assert result.value("fit_in_hospital_midnight") == pytest.approx(np.mean(counts), rel=1e-12)

    # Waits for a bed of the window's arrivals (not diverted), censored at the end.
    arrived = p[(p["arrival"] >= lo) & (p["arrival"] < hi) & ~p["diverted"]]
    wait = (arrived["bed"].fillna(hi) - arrived["arrival"]).to_numpy()
    assert (arrived["bed"].isna() | (arrived["bed"] > arrived["arrival"])).any()
    assert result.value("bed_wait_mean") == pytest.approx(wait.mean(), rel=1e-9)
    assert result.value("bed_wait_share") == pytest.approx((wait > 1e-12).mean(), rel=1e-12)

    w = result.service_waits
    for name, service in params.services.items():
        mine = w[w["service"] == name]
        held = mine[mine["granted"].notna()]
        in_use = (held["amount"].to_numpy() * overlap(
            held["granted"].to_numpy(), held["released"].to_numpy(), lo, hi)).sum() / window
        queue = overlap(mine["requested"].to_numpy(), mine["granted"].to_numpy(), lo, hi).sum()
        assert queue > 0, f"nobody queued for {name}: the check has no teeth"
        assert result.value(f"{name}.in_use") == pytest.approx(in_use, rel=1e-9), name
        size = service.size
        if service.staff is not None and service.staff.workforce.enabled:
            # The hours follow the carers working (in post and not sick), by the roster's
            # own counts: a second record of the same thing.
            in_post = result.value(f"{name}.staff_in_post")
            sick = result.value(f"{name}.staff_off_sick")
            size = (in_post - sick) * service.staff.hours_each
        assert result.value(f"{name}.utilisation") == pytest.approx(
            in_use / size, rel=1e-9), name
        assert result.value(f"{name}.queue_mean") == pytest.approx(queue / window, rel=1e-9), name
        assert result.value(f"{name}.queue_end") == mine["granted"].isna().sum(), name
        onward = [other for other, s in params.services.items() if name in s.then]
        again = [source for source in ("handed_back", "moved") if (mine["source"] == source)
                 .any()]
        for source in ("hospital", "community", *onward, *again):
            asked = mine[(mine["source"] == source) & (mine["requested"] >= lo)]
            assert len(asked) > 0, (name, source)
            waited = asked["granted"].fillna(hi) - asked["requested"]
            assert result.value(f"{name}.wait_mean.{source}") == pytest.approx(
                waited.mean(), rel=1e-9), (name, source)


# ---------------------------------------------------------------------------- draws
DISTRIBUTIONS = [
    Distribution("exponential", 2.0),
    Distribution("lognormal", 3.0, 2.0),
    Distribution("gamma", 4.0, 1.5),
    Distribution("empirical", values=[1.0, 3.0]),
    Distribution("fixed", 2.5),
]


def moments(dist: Distribution) -> tuple[float, float]:
    """E[X] and E[X^2] from the distribution's definition (mean and sd; an exponential's sd is
    its mean; a list's values with equal weight)."""
    if dist.kind == "empirical":
        values = np.asarray(dist.values)
        return float(values.mean()), float((values ** 2).mean())
    sd = dist.mean if dist.kind == "exponential" else dist.sd
    return dist.mean, sd ** 2 + dist.mean ** 2


def within_clt(draws: np.ndarray, expected: float) -> bool:
    """The sample mean within 5 standard errors of ``expected`` (p < 1e-6 by chance)."""
    error = 5 * draws.std(ddof=1) / math.sqrt(draws.size)
    return abs(draws.mean() - expected) <= max(error, 1e-12)


@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda d: d.kind)
def test_draws_have_the_mean_and_sd_asked_for(dist):
    """batch_draw: the first two moments of 50,000 draws match mean and sd (CLT bounds), and
    an empirical list gives its values only."""
    draws = batch_draw(dist, np.random.default_rng(11), 50_000)
    m1, m2 = moments(dist)
    assert within_clt(draws, m1), (draws.mean(), m1)
    assert within_clt(draws ** 2, m2), ((draws ** 2).mean(), m2)
    if dist.kind == "empirical":
        assert set(np.unique(draws)) == set(dist.values)


@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda d: d.kind)
def test_a_client_found_in_service_has_a_length_biased_stay(dist):
    """length_biased_draw (the stay of a client found in service at a random moment, used to
    fill services on the first day) has mean E[X^2] / E[X]: twice the mean for an exponential,
    mean + sd^2 / mean in general, (1 + 9) / (1 + 3) = 2.5 for the list [1, 3]."""
    rng = np.random.default_rng(12)
    draws = np.array([length_biased_draw(dist, rng) for _ in range(20_000)])
    m1, m2 = moments(dist)
    assert within_clt(draws, m2 / m1), (draws.mean(), m2 / m1)
    if dist.kind == "empirical":
        assert set(np.unique(draws)) == set(dist.values)
    assert length_biased_draw(Distribution("empirical", values=[0.0, 0.0]), rng) == 0.0


def test_the_logs_columns_have_their_types(small_run):
    """Times and amounts are floats (NaN for not yet), flags are booleans, names are strings:
    a flag left as an object column would make ``~flag`` wrong."""
    p = small_run.patients
    for f in fields(Patient):
        if f.name in NOT_LOGGED:  # objects the model uses, not columns of the log
            assert f.name not in p.columns, f.name
            continue
        column = p[f.name]
        if isinstance(f.default, bool):
            assert column.dtype == bool, f.name
        elif f.type in ("float", float):
            assert column.dtype == np.float64, f.name
        elif f.type in ("int", int):
            assert np.issubdtype(column.dtype, np.integer), f.name
        elif f.type in ("str", str):
            assert column.map(type).eq(str).all(), f.name
    w = small_run.service_waits
    for name in ("amount", "requested", "granted", "released", "stay"):
        assert w[name].dtype == np.float64, name


def test_a_time_weighted_level_by_hand():
    """A level of 3 from day 2, 5 from day 4: the average to day 6 is (3 x 2 + 5 x 2) / 4 = 4;
    restarted on day 6 it is 5 from then on, and at the very moment of a (re)start the level
    itself."""
    level = TimeWeighted(level=3.0, start=2.0)
    assert level.mean(2.0) == 3.0
    level.set(4.0, 5.0)
    assert level.mean(6.0) == 4.0 and level.peak == 5.0
    level.restart(6.0)
    assert level.mean(6.0) == 5.0 and level.mean(8.0) == 5.0
    level.set(7.0, 1.0)
    assert level.mean(8.0) == pytest.approx(3.0, abs=1e-12)


# ---------------------------------------------------------------------------- daily counts and trends
@pytest.mark.parametrize("seed", SEEDS)
def test_daily_discharges_by_pathway_add_up_to_the_patients_discharged(seed):
    """The daily table's discharges, in all and per pathway, counted by the day each patient
    left, add up to the log's discharged patients of that pathway."""
    params = stretched_params(run__seed=seed)
    result = simulate(params)
    p = result.patients
    out = p[~p["diverted"] & p["left"].notna()]
    daily = result.daily
    assert daily["discharges"].sum() == len(out)
    for key in params.pathways:
        mine = out[out["pathway"] == key]
        assert daily[f"discharges_{key}"].sum() == len(mine) > 0, key
        by_day = np.bincount(np.floor(mine["left"]).astype(int), minlength=len(daily))
        np.testing.assert_array_equal(daily[f"discharges_{key}"], by_day[:len(daily)])
    assert (daily[[f"discharges_{k}" for k in params.pathways]].sum(axis=1)
            == daily["discharges"]).all()


@pytest.mark.parametrize("days", [3.0, 40.0])
def test_queue_growth_is_the_least_squares_slope_of_the_midnight_counts(days):
    """Acute beds far too few: the midnight queue for a bed grows, and its growth is the
    least-squares slope (numpy's polyfit) of the measured midnights' counts, also for a window
    of only two midnights."""
    params = small_params(acute__beds=3, run__days=days, run__warmup_days=1.0)
    result = simulate(params)
    measured = result.daily[~result.daily["warmup"]]
    assert len(measured) == days - 1
    slope = np.polyfit(measured["day"], measured["waiting_for_bed"], 1)[0]
    assert slope > 0
    assert result.value("bed_queue_growth") == pytest.approx(slope, rel=1e-9)


def test_with_escalation_on_the_causes_still_add_up_to_the_delayed_days():
    """Needs that escalate while waiting: each delayed day is still attributed to one cause
    (the old pathway's until the escalation, the new one's after), so the causes add up to the
    delayed days in the log (from fit to leaving the bed, or dying, or the end)."""
    params = stretched_params(harm__escalation__enabled=True)
    result = simulate(params)
    p = result.patients[result.patients["fit"].notna()]
    assert p["escalated"].notna().sum() > 5
    lo, hi = params.run.warmup_days, params.run.days
    gone = p["died"].fillna(p["left"]).to_numpy(float)
    whole = overlap(p["fit"].to_numpy(float), gone, lo, hi) * PER / (hi - lo)
    causes = ["assessment", "funding", "choice", *params.services, "equipment", "summary",
              "transfer", "rule"]
    total = sum(result.value(f"delayed_days_per_30d.{c}") for c in causes)
    assert total == pytest.approx(whole.sum(), rel=1e-9)
    assert result.value("delayed_days_per_30d") == pytest.approx(whole.sum(), rel=1e-9)
    pathway = p["pathway"].to_numpy(str)
    for key in params.pathways:
        assert result.value(f"delayed_days_per_30d.{key}") == pytest.approx(
            whole[pathway == key].sum(), rel=1e-9, abs=1e-9), key
