"""The harm of waiting (issue 12): deconditioning, new illness, death and readmission.

Each mechanism against a closed form on a system where the answer is known: a constant daily
probability p over a fixed stay of d days happens with probability 1 - (1 - p)^d (the model
turns p into the hazard rate -ln(1 - p) and draws each patient's clock on arrival, so the form
is exact for any d, not only whole days). Counts are checked against a binomial interval of
4 standard deviations (fixed seeds, so a pass is a pass). Then: escalation probability 0 leaves
the model unchanged, conservation counts the dead, readmissions come back within 30 days of a
discharge, and the time medically unfit again is not a delay.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from conftest import small_params
from sim import override, simulate
from sim.core.model import Model
from sim.core.params import Distribution, Params, Pathway, Service, Window

ALL_ON = {"harm.escalation.enabled": True, "harm.unwell_again.enabled": True,
          "harm.death.enabled": True, "harm.readmission.enabled": True}


def fixed_system(acute: float, delay: float, **updates) -> Params:
    """Everyone on pathway 0: a fixed acute stay, then a fixed transfer of ``delay`` days and
    no rule, so that every patient is delayed exactly ``delay`` days (plenty of beds)."""
    return override(small_params(), {
        "pathways.p0.share": 1.0, "pathways.p1.share": 0.0, "pathways.p2.share": 0.0,
        "pathways.p3.share": 0.0, "acute.beds": 10_000,
        "pathways.p0.acute_stay": Distribution("fixed", acute),
        "pathways.p0.transfer": Distribution("fixed", delay),
        "pathways.p0.summary": Distribution("fixed", 0.0),
        "pathways.p0.rule": Window(enabled=False), **updates})


def within_binomial(k: int, n: int, p: float, sds: float = 4.0) -> bool:
    return abs(k - n * p) <= sds * math.sqrt(n * p * (1 - p)) + 1e-9


def complete(patients: pd.DataFrame, params: Params, days: float) -> pd.DataFrame:
    """Ordinary admissions given a bed early enough for their whole stay to fit in the run."""
    p = patients[patients["readmission_of"] < 0]
    return p[p["bed"].notna() & (p["bed"] < params.run.days - days - 1)]


# ------------------------------------------------------------------------------ closed forms
def test_death_follows_the_daily_probability_in_the_acute_stay_and_in_the_delay():
    acute, delay, pa, pd_ = 4.0, 3.5, 0.03, 0.06
    params = fixed_system(acute, delay, **{"harm.death.enabled": True,
                                           "harm.death.acute_per_day": pa,
                                           "harm.death.delayed_per_day": pd_})
    p = complete(simulate(params, 0).patients, params, acute + delay)
    dead_acute = p["died"].notna() & p["fit"].isna()
    assert within_binomial(int(dead_acute.sum()), len(p), 1 - (1 - pa) ** acute)
    survivors = p[p["fit"].notna()]
    dead_delay = survivors["died"].notna()
    assert within_binomial(int(dead_delay.sum()), len(survivors), 1 - (1 - pd_) ** delay)
    assert dead_delay.sum() > 0 and dead_acute.sum() > 0
    assert survivors.loc[dead_delay, "left"].isna().all()  # a death is not a discharge
    died = survivors.loc[dead_delay]
    assert ((died["died"] >= died["fit"]) & (died["died"] < died["fit"] + delay)).all()


def test_a_return_to_unfit_follows_the_daily_probability_and_is_not_a_delay():
    acute, delay, p_unwell = 2.0, 5.0, 0.04
    params = fixed_system(acute, delay, **{"harm.unwell_again.enabled": True,
                                           "harm.unwell_again.per_day": p_unwell})
    result = simulate(params, 0)
    p = complete(result.patients, params, acute + delay + 60)
    episode = p["unfit_again"].notna()
    assert within_binomial(int(episode.sum()), len(p), 1 - (1 - p_unwell) ** delay)
    e = p[episode]
    # Unfit when due to leave: a new transfer after recovering; the days unfit are no delay.
    assert np.allclose(e["left"], e["unfit_again_end"] + delay)
    assert np.allclose(e["delay"], e["unfit_again"] - e["fit"] + delay)
    assert np.allclose(p.loc[~episode, "delay"], delay)
    # The cause table counts no day unfit: delayed days = days in bed after fit - days unfit.
    lo, hi = params.run.warmup_days, params.run.days
    phases = result.value("delayed_days")
    everyone = result.patients[result.patients["fit"].notna()]
    in_window = np.clip(np.minimum(everyone["left"].fillna(hi), hi) - np.maximum(everyone["fit"], lo),
                        0, None).sum()
    unfit = result.value("harm.unfit_again_days") * (hi - lo) / 30.0
    assert phases == pytest.approx(in_window - unfit, rel=1e-9)
    # and the midnight count of medically fit patients leaves them out
    midnight = result.daily.set_index("day")["fit_in_hospital"]
    for day in (60, 100, 150):
        fit_then = everyone[(everyone["fit"] <= day) & (everyone["left"].fillna(hi) > day)]
        unfit_then = fit_then[(fit_then["unfit_again"] <= day) & (fit_then["unfit_again_end"] > day)]
        assert midnight[day] == len(fit_then) - len(unfit_then)


def test_a_patient_unfit_again_for_a_short_while_still_waits_for_the_summary_and_equipment():
    """Short episodes (an hour) after becoming fit, often: a patient who recovers before the
    summary is written or the equipment has come still leaves only after both (the summary's
    time walked through the ward's hours independently of the model's calendar)."""
    from test_correctness import work_done

    params = small_params(**{"harm.unwell_again.enabled": True, "harm.unwell_again.per_day": 0.3,
                             "harm.unwell_again.duration": Distribution("fixed", 0.05)})
    result = simulate(params, 0)
    p = result.patients
    out = p[p["left"].notna() & p["unfit_again"].notna() & p["escalated"].isna()]
    assert len(out) > 100
    written = np.array([f if w <= 0 else work_done(params.ward.hours, f, w)
                        for f, w in zip(out["fit"], out["summary"])])
    assert (out["left"].to_numpy() >= written - 1e-9).all()
    equipped = (out["assessed"] + out["equipment"]).to_numpy()
    assert (~(out["left"].to_numpy() < equipped - 1e-9)).all()  # NaN: no equipment needed
    early = out["unfit_again_end"].to_numpy() < written  # recovered before the summary
    assert early.sum() > 20, "no episode ended before the summary: no teeth"


def test_escalation_follows_the_daily_probability_and_moves_to_the_next_pathway():
    acute, delay, p_escalate = 3.0, 4.0, 0.05
    params = fixed_system(acute, delay, **{"harm.escalation.enabled": True,
                                           "pathways.p0.escalation_per_day": p_escalate})
    result = simulate(params, 0)
    p = complete(result.patients, params, acute + delay + 60)
    escalated = p["escalated"].notna()
    assert within_binomial(int(escalated.sum()), len(p), 1 - (1 - p_escalate) ** delay)
    e = p[escalated]
    assert (e["escalated_from"] == "p0").all() and (e["pathway"] == "p1").all()
    assert (e["service"] == "homecare").all() and (e["first_service"] == "").all()
    assert ((e["escalated"] >= e["fit"]) & (e["escalated"] < e["fit"] + delay)).all()
    assert (e["assessed"] >= e["escalated"]).all()  # assessed again for the new need
    # one request for homecare per escalated patient who reached the wait for it
    everyone = result.patients
    asked = (result.service_waits["source"] == "hospital").sum()
    assert everyone["ready"].notna()[everyone["escalated"].notna()].sum() <= asked
    assert asked <= everyone["escalated"].notna().sum()


def test_escalation_probability_zero_leaves_every_metric_unchanged():
    base = small_params()
    zero = override(base, {"harm.escalation.enabled": True, "pathways.p0.escalation_per_day": 0.0,
                           "pathways.p1.escalation_per_day": 0.0})
    a, b = simulate(base, 1).metrics, simulate(zero, 1).metrics
    pd.testing.assert_frame_equal(a, b)


def test_each_mechanism_leaves_ordinary_admissions_their_random_numbers():
    """Common random numbers: whatever the harm does, ordinary admissions draw the same
    attributes (readmissions and the harm's clocks have streams of their own)."""
    columns = ["arrival", "pathway", "acute_stay"]
    off = simulate(small_params(), 2).patients[columns]
    on = simulate(override(small_params(), ALL_ON), 2).patients
    on = on[on["readmission_of"] < 0].reset_index(drop=True)
    on["pathway"] = on["pathway"].where(on["escalated_from"] == "", on["escalated_from"])
    on = on[columns]
    pd.testing.assert_frame_equal(off, on)


# ------------------------------------------------------------------------------ conservation
def test_conservation_counts_deaths_and_no_place_is_lost():
    params = override(small_params(), {**ALL_ON, "acute.max_wait_for_bed": 0.5,
                                       "harm.escalation.enabled": True})
    model = Model(params, 3)
    result = model.run()
    m = result.metrics.set_index("metric")["value"]
    assert m["died_total"] > 0 and m["diverted_total"] > 0
    assert m["arrivals_total"] == (m["discharged_total"] + m["died_total"] + m["diverted_total"]
                                   + m["in_system_end"])
    assert m["conservation_error"] == 0
    p = result.patients
    assert (p["died"].notna() & p["left"].notna()).sum() == 0
    still_in = p["bed"].notna() & p["left"].isna() & p["died"].isna()
    assert model.beds.in_use == still_in.sum()
    waits = result.service_waits
    for name, pool in model.pools.items():
        held = waits[(waits["service"] == name) & waits["granted"].notna() & waits["released"].isna()]
        assert pool.in_use == pytest.approx(held["amount"].sum(), abs=1e-6)
    withdrawn = waits[waits["cancelled"].notna()]
    assert withdrawn["granted"].isna().all()


def test_residential_care_escalates_to_nursing_care_when_the_service_is_added():
    """A second kind of care-home place, added in config: pathway 3 escalates to a nursing-home
    pathway (no admissions of its own); escalated patients withdraw from the care-home queue."""
    base = small_params()
    params = override(base, {
        "services.nursing_home": Service(unit="places", capacity=30,
                                         stay=Distribution("lognormal", 600.0, 800.0),
                                         initial_utilisation=0.9),
        "services.care_home.capacity": 20, "services.care_home.initial_utilisation": 1.0,
        "pathways.p3n": Pathway(share=0.0, service="nursing_home",
                                transfer=Distribution("lognormal", 10.0, 7.0),
                                rule=Window(True, [0, 1, 2, 3, 4], 9, 17)),
        "pathways.p3.escalates_to": {"p3n": 1.0}, "pathways.p3.escalation_per_day": 0.05,
        "harm.escalation.enabled": True})
    model = Model(params, 0)
    result = model.run()
    p = result.patients
    moved = p[p["escalated_from"] == "p3"]
    assert len(moved) > 0 and (moved["pathway"] == "p3n").all()
    assert (moved["service"] == "nursing_home").all()
    assert (p["pathway"] == "p3n").sum() == len(moved)  # none admitted to it directly
    waits = result.service_waits
    assert ((waits["service"] == "care_home") & waits["cancelled"].notna()).any()
    assert ((waits["service"] == "nursing_home") & (waits["source"] == "hospital")).sum() > 0
    assert result.value("harm.escalated_to.nursing_home") > 0
    assert result.value("conservation_error") == 0


# ------------------------------------------------------------------------------ readmissions
def test_readmissions_come_back_within_30_days_of_a_discharge_at_the_set_rate():
    p_back = 0.2
    params = override(small_params(), {"harm.readmission.enabled": True,
                                       "harm.readmission.probability": p_back,
                                       "harm.readmission.incomplete_share": 0.0,
                                       "harm.readmission.incomplete_share_weekend": 0.0})
    result = simulate(params, 4)
    p = result.patients.set_index("id")
    back = p[p["readmission_of"] >= 0]
    earlier = p.loc[back["readmission_of"]]
    assert earlier["left"].notna().all() and earlier["died"].isna().all()
    gap = back["arrival"].to_numpy() - earlier["left"].to_numpy()
    assert ((gap >= 0) & (gap <= 30.0)).all()
    seen = p[p["left"].notna() & (p["left"] < params.run.days - 30)]
    came_back = seen.index.isin(back["readmission_of"])
    assert within_binomial(int(came_back.sum()), len(seen), p_back)
    # an exponential of mean 14 days cut at 30: the share back within 7 days
    within_week = (1 - math.exp(-7 / 14)) / (1 - math.exp(-30 / 14))
    assert within_binomial(int((gap <= 7).sum()), len(gap), within_week)


def test_an_incomplete_discharge_raises_the_chance_of_readmission():
    params = override(small_params(), {"harm.readmission.enabled": True,
                                       "harm.readmission.probability": 0.1,
                                       "harm.readmission.incomplete_share": 0.5,
                                       "harm.readmission.incomplete_share_weekend": 0.5,
                                       "harm.readmission.incomplete_relative_risk": 3.0})
    p = simulate(params, 5).patients.set_index("id")
    seen = p[p["left"].notna() & (p["left"] < params.run.days - 30)]
    back = seen.index.isin(p.loc[p["readmission_of"] >= 0, "readmission_of"])
    incomplete = seen["incomplete_discharge"].to_numpy(bool)
    assert within_binomial(int(back[incomplete].sum()), int(incomplete.sum()), 0.3)
    assert within_binomial(int(back[~incomplete].sum()), int((~incomplete).sum()), 0.1)


def test_harm_parameters_are_refused_out_of_range():
    from sim.core.params import ParameterError
    with pytest.raises(ParameterError, match="harm.death.delayed_per_day"):
        override(Params(), {"harm.death.delayed_per_day": 1.0})
    with pytest.raises(ParameterError, match="pathways.p1.escalates_to"):
        override(Params(), {"pathways.p1.escalates_to": {"p1": 1.0}})
