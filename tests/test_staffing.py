"""Care homes whose staff limit the places they can fill (sim.core.params.Staffing).

A home takes a new resident only while its residents are fewer than the places its staff at
work can look after (posts filled and well x places per post, at most its places); nobody is
moved out when staff leave. Checked: on a hand-built market (who is taken, who waits, who is
woken when staff return); after every event of a run with staff coming and going (no
admission beyond the staffed places, no resident moved out, the request log agrees); a limit
that never binds changes nothing, seed for seed; the staffed places follow the workforce's
steady state; bad settings are refused in one line.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from conftest import small_params
from sim import override, simulate
from sim.core.calendar import Calendar
from sim.core.market import Market as CareMarket, Placement, staffing_posts
from sim.core.model import Model
from sim.core.params import Market, ParameterError, Params, Segment, Window
from sim.core.patient import Request

ON = {"services.care_home.staffing.enabled": True}


def _home(places: float = 4.0):
    env = simpy.Environment()
    settings = Market(True, [Segment("all", 1.0, 1.0, 1)], acceptance=1.0, hours=Window(False))
    market = CareMarket(env, "care_home", settings, [[places]], Calendar(settings.hours))
    return env, market, market.segments[0][0]


def test_a_home_short_of_staff_takes_no_one_new_and_moves_no_one_out():
    """A home of 4 places with 3 residents whose staff can look after 2: nobody is moved out,
    a referral waits; when a resident leaves (2 left: still at the limit) it still waits; when
    the staff can look after 4 again it is taken at once."""
    env, market, home = _home()
    moved = []
    market.on_hand_back = lambda request, why: moved.append(request)
    residents = [Request("care_home", "initial", 1.0, 0.0) for _ in range(3)]
    assert all(market.take_at(home, r) for r in residents)
    market.set_staffed(home, 2.0)
    assert moved == [] and len(home.clients) == 3
    new = Request("care_home", "hospital", 1.0, 0.0)
    market.place(new, Placement(0, False, clock=0.0, pick=0.0))
    env.run(until=1.0)
    assert new.provider < 0 and new in market.queue
    market.release(residents[0])
    env.run(until=2.0)
    assert new.provider < 0, "taken while the residents filled what the staff can look after"
    market.set_staffed(home, 4.0)
    env.run(until=3.0)
    assert new.provider == 0 and new not in market.queue and moved == []


def test_a_home_takes_residents_up_to_its_staffed_places_and_no_further():
    """Staff for 2.5 places: a third resident of 1 place does not fit (2 + 1 > 2.5)."""
    env, market, home = _home()
    market.set_staffed(home, 2.5)
    referrals = [Request("care_home", "hospital", 1.0, 0.0) for _ in range(3)]
    for r in referrals:
        market.place(r, Placement(0, False, clock=0.0, pick=0.0))
    env.run(until=1.0)
    assert [r.provider for r in referrals] == [0, 0, -1]
    assert home.fills == 2.5 and home.nominal == 4.0 and home.capacity == 4.0


def test_posts_are_one_per_places_per_post_of_each_homes_places():
    service = Params().services["care_home"]
    service = override(service, {"staffing.enabled": True, "staffing.places_per_post": 1.5})
    assert staffing_posts(service, [[30.0, 31.0], [3.0]]) == [[20, 21], [2]]
    service = override(service, {"staffing.establishment": 1.2})
    assert staffing_posts(service, [[30.0, 31.0], [3.0]]) == [[24, 25], [2]]


def _staffed_run(**changes):
    params = small_params(run__days=200.0, run__warmup_days=0.0,
                          services__care_home__staffing__enabled=True,
                          services__care_home__staffing__workforce__turnover_per_year=2.0,
                          **changes)
    return params, Model(params)


def test_no_home_admits_beyond_the_places_its_staff_can_look_after_at_any_moment():
    """After every event of a run with care staff coming and going fast: no new resident was
    taken by a home at or above its staffed places (each admission checked as it happens),
    every home within its places, and the staff were short at times (else nothing is tested)."""
    params, model = _staffed_run()
    market = model.pools["care_home"]
    take = market._take
    admissions, short = [], []

    def checked(provider, request):
        admissions.append(provider.in_use + request.amount <= provider.fills + 1e-9)
        take(provider, request)

    model.run(until=0.001)  # the residents a home starts with are there already
    market._take = checked
    while model.env.peek() < params.run.days:
        model.env.step()
        for provider in market.providers:
            assert provider.in_use <= provider.capacity + 1e-9
            short.append(provider.staffed < provider.nominal)
    assert admissions and all(admissions)
    assert any(short), "the staff were never short: the test checks nothing"
    assert model.rosters["care_home"].left, "no care staff left"


def test_staff_who_leave_move_no_resident_out():
    params, model = _staffed_run()
    model.run(until=params.run.days)
    result = model._result()
    assert result.value("care_home.moves_per_30d") == 0
    assert result.value("care_home.handbacks_per_30d") == 0
    assert result.value("care_home.leavers_per_year") > 0


def test_a_staffing_limit_that_never_binds_changes_nothing_seed_for_seed():
    """Homes that employ twice the staff their places need, coming and going or always in
    post: they can always fill their places, and the care staff's random numbers are their own,
    so every patient and request is the same."""
    base = small_params(services__care_home__staffing__enabled=False)
    plain = simulate(base)
    for workforce in (True, False):
        params = override(base, {**ON, "services.care_home.staffing.establishment": 2.0,
                                 "services.care_home.staffing.workforce.enabled": workforce,
                                 "services.care_home.staffing.workforce.turnover_per_year": 0.01})
        staffed = simulate(params)
        for table in ("patients", "service_waits"):
            a, b = getattr(plain, table), getattr(staffed, table)
            assert a.equals(b), (table, workforce)


def test_the_staffed_places_follow_the_workforce_steady_state():
    """One home of 1,000 places and 800 posts (1.25 places a post): while the staff are short
    of the places (always, here: the staffed share is about 0.89), the staffed share is the share
    of posts filled and well, (1 - vacancy) x (1 - sick share), checked within 4 standard errors
    of replications' time-averages (each average spans many times a post's turnover)."""
    params = small_params(run__days=3 * 365.0, run__warmup_days=0.0, **{
        "services__care_home__capacity": 1000.0,
        "services__care_home__community_referrals_per_day": 0.0,
        "services__care_home__market__segments": [Segment("all", 1.0, 1.0, 1)],
        "services__care_home__staffing__enabled": True,
        "services__care_home__staffing__workforce__turnover_per_year": 3.0,
        "pathways__p3__share": 0.0, "pathways__p0__share": params_p0_share(),
    })
    workforce = params.services["care_home"].staffing.workforce
    expected = (1 - workforce.vacancy_rate) * (1 - workforce.sickness_days_per_year / 365.0)
    shares = np.array([simulate(params, k).value("care_home.staffed_share") for k in range(6)])
    se = shares.std(ddof=1) / math.sqrt(shares.size)
    assert abs(shares.mean() - expected) <= 4 * max(se, 1e-4), (shares, expected)


def params_p0_share() -> float:
    p = small_params().pathways
    return p["p0"].share + p["p3"].share


@pytest.mark.parametrize("updates, field", [
    ({"services.homecare.staffing.enabled": True}, "services.homecare.staffing.enabled"),
    ({"services.care_home.staffing.places_per_post": 0.0},
     "services.care_home.staffing.places_per_post"),
    ({"services.care_home.staffing.establishment": -1.0},
     "services.care_home.staffing.establishment"),
    ({**ON, "services.care_home.market.enabled": False}, "services.care_home.staffing.enabled"),
])
def test_bad_staffing_settings_are_refused_naming_the_field(updates, field):
    with pytest.raises(ParameterError) as error:
        override(Params(), updates)
    assert field in str(error.value) and "\n" not in str(error.value)
