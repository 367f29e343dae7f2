"""The care market (sim/core/market.py): rounds of offers against the chance of acceptance,
segments that do not substitute, closures and suspensions, providers within their places.

Where the answer is known it is checked against its closed form: with ``m`` providers with
room, each accepting with probability ``a``, a round places the client with probability
``1 - (1 - a) ** m``, so the rounds until placement are geometric; a provider closed for ``D``
days removes exactly its places for exactly ``D`` days; a provider suspended for ``D`` days
after exponential gaps of mean ``G`` is suspended ``D / (G + D)`` of the time. Counts and means
are checked within 5 standard errors of the closed form (fixed seeds: a pass is a pass).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from conftest import provider_peaks, small_params
from sim import override, simulate
from sim.core.calendar import Calendar
from sim.core.market import Market as CareMarket, Placement
from sim.core.model import Model
from sim.core.params import Closure, Distribution, Market, Segment, Window
from sim.core.patient import Request

NOTHING = Distribution("fixed", 0.0)


def homecare_market(providers: int, acceptance: float, **market) -> dict:
    """Everyone on pathway 1, straight from medically fit to the homecare market (discharge to
    assess, no summary, equipment, transfer or rule), with room at every provider for every
    package, and the brokerage team always at work."""
    return {
        "pathways.p0.share": 0.0, "pathways.p1.share": 1.0, "pathways.p2.share": 0.0,
        "pathways.p3.share": 0.0, "acute.beds": 10_000, "assessment.in_hospital": False,
        "pathways.p1.summary": NOTHING, "pathways.p1.equipment_share": 0.0,
        "pathways.p1.transfer": NOTHING, "pathways.p1.rule": Window(enabled=False),
        "services.homecare.staff.count": 100_000, "services.homecare.staff.workforce.enabled": False,
        "services.homecare.community_referrals_per_day": 0.0,
        "services.homecare.initial_utilisation": 0.0,
        "services.homecare.market": Market(True, [Segment("all", 1.0, 1.0, providers)],
                                           acceptance=acceptance, hours=Window(False), **market),
    }


def within(values: np.ndarray, mean: float, variance: float, sds: float = 5.0) -> bool:
    """The sample mean within ``sds`` standard errors of ``mean`` (known ``variance``)."""
    return abs(values.mean() - mean) <= sds * math.sqrt(variance / values.size)


def placed(result):
    p = result.patients
    return p[(p["service"] == "homecare") & p["ready"].notna()]


# ---------------------------------------------------------------------------- rounds of offers
@pytest.mark.parametrize("providers, acceptance", [(1, 0.3), (3, 0.3), (4, 0.05)])
def test_rounds_until_placed_are_geometric_with_the_chance_of_acceptance(providers, acceptance):
    """Each round every provider with room says yes with probability a: the rounds until one
    does are geometric with p = 1 - (1 - a)^m (mean 1 / p, variance (1 - p) / p^2), and the
    client waits exactly (rounds - 1) round lengths."""
    params = small_params(**{k.replace(".", "__"): v for k, v in
                             homecare_market(providers, acceptance, round_days=0.5).items()})
    p = placed(simulate(params))
    assert len(p) > 1500
    chance = 1.0 - (1.0 - acceptance) ** providers
    rounds = p["rounds"].to_numpy(float)
    assert within(rounds, 1.0 / chance, (1.0 - chance) / chance ** 2), (rounds.mean(), 1 / chance)
    np.testing.assert_allclose(p["ready"] - p["chosen"], (rounds - 1) * 0.5, rtol=0, atol=1e-9)


def test_complex_needs_are_placed_at_their_own_lower_chance():
    """Half the packages need two carers (twice the hours) and are accepted at a fifth of the
    rate: their rounds are geometric with 1 - (1 - a c)^m, the others' with 1 - (1 - a)^m."""
    a, c, m = 0.6, 0.2, 2
    updates = homecare_market(m, a, complex_share=0.5, complex_amount=2.0,
                              complex_acceptance=c)
    p = placed(simulate(small_params(**{k.replace(".", "__"): v for k, v in updates.items()})))
    for is_complex, chance in ((True, 1 - (1 - a * c) ** m), (False, 1 - (1 - a) ** m)):
        rounds = p.loc[p["complex"] == is_complex, "rounds"].to_numpy(float)
        assert rounds.size > 500
        assert within(rounds, 1 / chance, (1 - chance) / chance ** 2), (is_complex, rounds.mean())
    share = p["complex"].mean()
    assert within(p["complex"].to_numpy(float), 0.5, 0.25), share
    simple = p[~p["complex"]]
    np.testing.assert_allclose(p.loc[p["complex"], "amount"].mean() / simple["amount"].mean(),
                               2.0, rtol=0.15)


def test_no_offer_is_accepted_at_a_weekend_when_providers_decline_weekend_offers():
    """weekend_acceptance 0: every placement happens on a weekday; at 1, some at weekends."""
    def weekend_placements(factor: float) -> np.ndarray:
        updates = homecare_market(2, 0.5, weekend_acceptance=factor)
        p = placed(simulate(small_params(**{k.replace(".", "__"): v
                                            for k, v in updates.items()})))
        return np.floor(p["ready"].to_numpy()) % 7 >= 5

    assert not weekend_placements(0.0).any()
    assert weekend_placements(1.0).mean() > 0.15  # about 2/7 if spread over the week


def test_providers_decline_while_the_discharge_summary_is_not_written():
    """incomplete_acceptance 0: nobody is placed before the summary is written, so nobody
    waits for the summary after the package is ready; at 1, some do."""
    def waited_for_summary(factor: float) -> int:
        updates = homecare_market(2, 0.9, incomplete_acceptance=factor)
        updates.update({"assessment.in_hospital": True,
                        "pathways.p1.summary": Distribution("lognormal", 0.3, 0.2)})
        p = placed(simulate(small_params(**{k.replace(".", "__"): v
                                            for k, v in updates.items()})))
        assert len(p) > 1000
        return int((p["summarised"] > p["ready"] + 1e-9).sum())

    assert waited_for_summary(0.0) == 0
    assert waited_for_summary(1.0) > 100


# ---------------------------------------------------------------------------- segments
def test_segments_take_their_share_of_demand_and_do_not_substitute():
    """Hospital referrals fall into the segments by their demand shares (binomial); a rural
    segment with few carers keeps its packages waiting while town carers are free."""
    params = small_params(services__homecare__market__segments=[
        Segment("town", 0.65, 0.9, 3), Segment("rural", 0.35, 0.1, 1)])
    result = simulate(params)
    w = result.service_waits
    hospital = w[(w["service"] == "homecare") & (w["source"] == "hospital")]
    rural = (hospital["segment"] == "rural").to_numpy(float)
    assert within(rural, 0.35, 0.35 * 0.65), rural.mean()
    assert set(hospital["segment"]) == {"town", "rural"}
    assert result.value("homecare.rural.wait_mean.hospital") > 5 * max(
        result.value("homecare.town.wait_mean.hospital"), 0.1)
    assert result.value("homecare.town.utilisation") < 0.9
    assert result.value("homecare.rural.utilisation") > 0.9


def test_places_are_split_whole_among_segments_and_providers():
    """900 places in shares 0.5 / 0.33 / 0.17 and 14 / 9 / 5 homes: whole places, every place
    given out, each home within one place of the others of its kind."""
    model = Model(small_params(services__care_home__capacity=900))
    market = model.pools["care_home"]
    sizes = [[p.nominal for p in segment] for segment in market.segments]
    assert all(float(x).is_integer() for row in sizes for x in row)
    assert sum(map(sum, sizes)) == 900
    assert [round(sum(row)) for row in sizes] == [450, 297, 153]
    assert all(max(row) - min(row) <= 1 for row in sizes)


# ---------------------------------------------------------------------------- providers change
def closure_system(**closure) -> dict:
    """Care homes only: everyone on pathway 3 to one kind of home, 5 homes of 20 places, full
    on the first day and able to staff every place (no staffing limit), and one home closing."""
    return dict(
        services__care_home__staffing__enabled=False, pathways__p0__share=0.0, pathways__p1__share=0.0, pathways__p2__share=0.0,
        pathways__p3__share=1.0, admissions__per_day=1.0, acute__beds=10_000,
        services__care_home__capacity=100, services__care_home__initial_utilisation=1.0,
        services__care_home__market=Market(
            True, [Segment("all", 1.0, 1.0, 5)], acceptance=0.5, hours=Window(False),
            closures=[Closure(**closure)]))


def test_a_closure_removes_exactly_its_places_for_exactly_its_duration():
    """Home 2 closes on day 50 for 30 days: its 20 places are gone for exactly 30 days (the
    time-average capacity over the window is 100 - 20 x 30 / 200), its residents all move out
    at that moment (one request "moved" each, to be placed again), nobody is placed there while
    it is closed, and it takes residents again afterwards."""
    params = small_params(**closure_system(segment="all", provider=2, start=50.0, days=30.0))
    model = Model(params)
    result = model.run()
    lo, hi = params.run.warmup_days, params.run.days
    assert model.pools["care_home"].size.mean(hi) == pytest.approx(
        100 - 20 * 30 / (hi - lo), rel=1e-12)
    w = result.service_waits
    home = w[(w["service"] == "care_home") & (w["provider"] == 2)]
    there = home[(home["granted"] < 50.0) & ~(home["released"] < 50.0)]
    assert len(there) == 20 and (there["released"] == 50.0).all()
    moved = w[w["source"] == "moved"]
    assert len(moved) == 20 and (moved["requested"] == 50.0).all()
    assert set(moved["amount"]) == {1.0}
    assert not ((home["granted"] >= 50.0) & (home["granted"] < 80.0)).any()
    assert (home["granted"] >= 80.0).any()
    assert result.value("care_home.moves_per_30d") == pytest.approx(20 * 30 / (hi - lo))


def test_a_home_that_stops_admissions_keeps_its_residents_and_places():
    """moves_clients false (an embargo after an inadequate rating): no resident moves and the
    capacity stays, but nobody new is placed there for its duration."""
    params = small_params(**closure_system(segment="all", provider=2, start=50.0, days=30.0,
                                           moves_clients=False))
    model = Model(params)
    result = model.run()
    assert model.pools["care_home"].size.mean(params.run.days) == pytest.approx(100, rel=1e-12)
    w = result.service_waits
    assert not (w["source"] == "moved").any()
    home = w[(w["service"] == "care_home") & (w["provider"] == 2)]
    assert not ((home["granted"] >= 50.0) & (home["granted"] < 80.0)).any()
    assert ((home["granted"] >= 80.0) | (home["granted"] < 50.0)).any()


def test_random_suspensions_take_the_share_of_time_of_an_alternating_renewal():
    """200 homes, each suspended for 50 days after exponential gaps of mean 100 days: each is
    suspended 50 / 150 of the time. The share over a long window is within 5 standard errors:
    per home the share's variance is about N var(C) / E[C]^3 D^2 / T^2 (N cycles of mean
    length E[C] = 150, var(C) = 100^2 in a window T), over 200 independent homes."""
    gap, days, homes, window = 100.0, 50.0, 200, 2000.0
    params = small_params(
        run__days=window + 600.0, run__warmup_days=600.0, admissions__per_day=0.0,
        **{f"services__{name}__community_referrals_per_day": 0.0
           for name in ("homecare", "step_down", "care_home")},
        services__care_home__market=Market(
            True, [Segment("all", 1.0, 1.0, homes)], hours=Window(False),
            suspensions_per_year=365.0 / gap, suspension=Distribution("fixed", days)))
    share = simulate(params).value("care_home.not_taking_share")
    cycle = gap + days
    sd_one = math.sqrt(window * gap ** 2 / cycle ** 3) * days / window
    assert abs(share - days / cycle) <= 5 * sd_one / math.sqrt(homes), share


# ---------------------------------------------------------------------------- capacity
def test_providers_stay_within_their_places_and_their_carers_hours_at_every_moment():
    """After every event of a run with carers coming and going: each provider within its
    carers' hours plus the stretch it may run at (packages beyond are handed back at once), and
    each care home within its places; and the request log agrees."""
    params = small_params(run__days=120.0, run__warmup_days=0.0,
                          services__homecare__staff__workforce__turnover_per_year=3.0)
    model = Model(params)
    model.run(until=0.01)
    stretch = 1.0 + params.services["homecare"].staff.workforce.stretch
    while model.env.peek() < params.run.days:
        model.env.step()
        for provider in model.pools["homecare"].providers:
            assert provider.in_use <= provider.nominal * stretch + 1e-6
        for name in ("step_down", "care_home"):
            for provider in model.pools[name].providers:
                assert provider.in_use <= provider.capacity + 1e-9
    model.env.run(until=params.run.days)
    result = model._result()
    assert result.value("homecare.handbacks_per_30d") > 0, "no package was handed back"
    peaks = provider_peaks(result.service_waits)
    for (service, segment, index), peak in peaks.items():
        if service == "care_home":
            g = [s.name for s in params.services[service].market.segments].index(segment)
            assert peak <= model.pools[service].segments[g][index].nominal


def test_a_place_moved_before_the_patient_left_is_released_after_the_stay():
    """Homecare providers close and move their clients, again and again, so that some
    patients' packages are moved after they were granted and before the patient left hospital
    (or while the patient waits at home for the new one). Every hospital patient's package,
    wherever it was placed last, is released by the later of leaving and its grant plus the
    drawn stay: no place is held for ever."""
    params = small_params(services__homecare__market__closures=[
        Closure("town", j % 2, 30.0 + 7.3 * j, 3.0, True) for j in range(24)])
    result = simulate(params)
    days = params.run.days
    w = result.service_waits
    p = result.patients.set_index("id")
    mine = w[(w["service"] == "homecare") & (w["patient"] >= 0) & w["granted"].notna()]
    mine = mine.join(p[["left", "stay", "service"]].add_prefix("patient_"), on="patient")
    mine = mine[mine["patient_service"] == "homecare"]  # not packages after a step-down stay
    moved = mine[mine["source"] == "moved"]
    early = moved[~(moved["patient_left"] <= moved["requested"])]  # before the patient left
    assert len(early) > 3, "no package was moved before its patient left: no teeth"
    due = np.maximum(mine["patient_left"], mine["granted"]) + mine["patient_stay"]
    ended = mine[mine["patient_left"].notna() & (due < days)]
    assert ended["released"].notna().all(), ended[ended["released"].isna()]
    assert (ended["released"] <= due[ended.index] + 1e-9).all()


@pytest.mark.parametrize("settings, field", [
    ({"services.homecare.market.complex_amount": 100.0}, "services.homecare.market.complex_amount"),
    ({"services.homecare.market.segments": [Segment("a", 0.5, 1.0, 2), Segment("b", 0.5, 0.0, 2)]},
     "services.homecare.market.segments[1].capacity"),
    ({"services.homecare.market.segments": [Segment("a", 1.0, 1.0, 2000)]},
     "services.homecare.market.segments[0].providers"),
])
def test_a_market_that_could_never_place_some_clients_is_refused_before_the_run(settings, field):
    """A segment clients need with no capacity, or providers all too small for some clients'
    packages: those clients would wait for ever, and keep their beds."""
    from sim.core.feasibility import check_feasible
    from sim.core.params import ParameterError
    with pytest.raises(ParameterError) as refused:
        check_feasible(override(small_params(), settings))
    assert str(refused.value).startswith(f"{field}=")


@pytest.mark.parametrize("key", ["services.homecare.market.acceptance",
                                 "services.homecare.market.complex_acceptance",
                                 "services.care_home.market.segments.0.acceptance"])
def test_an_acceptance_of_zero_is_refused_in_one_line_naming_the_setting(key):
    from sim.config.schema import ConfigError, load_config
    with pytest.raises(ConfigError) as refused:
        load_config([f"{key}=0"])
    name = key.replace(".0.", "[0].")
    assert str(refused.value).startswith(f"{name}=0.0 is not allowed: ")


# ---------------------------------------------------------------------------- waking referrals
def test_a_referral_asleep_for_room_gets_one_round_when_room_appears_behind_rounds_due():
    """Room freed while nobody waits for it wakes nobody; room freed while a referral waits
    queues one wake-up, behind the rounds already due at that moment. The brokerage team works
    12:00-18:00 (days 0.5-0.75); a home of 2 places holds A and B. Overnight, S (who needs both
    places, and declines: clock 1e9) is referred, then B's stay is set to end at noon, then A
    leaves (nobody waits: no wake-up), then Z is referred (needs 1 place, accepts at once:
    clock 0). At noon, in that order: S's first round finds room for 1 only, so S sleeps;
    B leaves (room for 2, S asleep: one wake-up, queued now, so after Z's round); Z's round
    takes a place; the wake-up finds room for 1 only, so S sleeps on. S had exactly one round
    and, as no room appears after, has one for good. A wake-up queued for A's place while
    nobody slept (the guard's ``and`` read as ``or``: one whenever none is due, and a second
    while one is) runs before Z's round and gives S an extra round, then one a day after."""
    env = simpy.Environment()
    hours = Window(True, start_hour=12.0, end_hour=18.0)
    settings = Market(True, [Segment("all", 1.0, 1.0, 1)], acceptance=0.5, hours=hours)
    market = CareMarket(env, "homecare", settings, [[2.0]], Calendar(hours))
    home = market.segments[0][0]
    a, b = (Request("homecare", "initial", 1.0, 0.0) for _ in range(2))
    assert market.take_at(home, a) and market.take_at(home, b)
    s = Request("homecare", "hospital", 2.0, 0.875)
    z = Request("homecare", "hospital", 1.0, 1.125)
    noon = 1.5  # all times are exact binary fractions, so the events at noon are at one moment

    def at(t: float, action) -> None:
        env.timeout(t - env.now).callbacks.append(lambda _: action())

    at(0.875, lambda: market.place(s, Placement(0, False, clock=1e9, pick=0.0)))
    at(0.9375, lambda: at(noon, lambda: market.release(b)))
    at(1.0, lambda: market.release(a))
    at(1.125, lambda: market.place(z, Placement(0, False, clock=0.0, pick=0.0)))
    env.run(until=5.0)
    assert z.provider == 0 and home.clients == {z: None}, "Z should hold 1 of the 2 places"
    assert list(market.queue) == [s] and s in {x.request for x in market.asleep[0]}
    assert s.rounds == 1, f"S had {s.rounds} rounds of offers, not 1"


# ---------------------------------------------------------------------------- the response to capacity
def _two_homes(env: simpy.Environment, in_use: tuple[int, int], **settings) -> CareMarket:
    """Two homes of 10 places, always open, holding ``in_use`` residents each."""
    market = CareMarket(env, "care_home", Market(True, [Segment("all", 1.0, 1.0, 2)],
                                                 hours=Window(False), **settings),
                        [[10.0, 10.0]], Calendar(Window(False)))
    for home, n in zip(market.segments[0], in_use):
        for _ in range(n):
            assert market.take_at(home, Request("care_home", "initial", 1.0, 0.0))
    return market


def _one_round(in_use: tuple[int, int], clock: float, pick: float, private: bool = False,
               **settings) -> tuple[Request, CareMarket]:
    env = simpy.Environment()
    market = _two_homes(env, in_use, **settings)
    request = Request("care_home", "hospital", 1.0, 0.0)
    market.place(request, Placement(0, False, clock, pick, private))
    return request, market


def test_a_home_near_full_says_yes_less_often_by_its_free_share():
    """choosiness 1, reference 0.5: home 0 has 1 of 10 places free (free share 0.1), home 1
    has 5 (0.5). Home 0 says yes with a (0.1 / 0.5), home 1 with a: the first round's hazard is
    -log(1 - a / 5) - log(1 - a). A client whose clock is just below it is placed in the first
    round, just above it is not; among those that say yes, a home takes the client in
    proportion to its hazard (the client's pick below home 0's part: home 0)."""
    a = 0.3
    h0, h1 = -math.log1p(-a * 0.1 / 0.5), -math.log1p(-a)
    settings = dict(acceptance=a, choosiness=1.0, reference_free=0.5)
    placed, _ = _one_round((9, 5), h0 + h1 - 1e-9, pick=0.0, **settings)
    assert placed.provider == 0 and placed.rounds == 1
    declined, market = _one_round((9, 5), h0 + h1 + 1e-9, pick=0.0, **settings)
    assert declined.provider == -1 and declined.rounds == 1 and declined in market.queue
    share = h0 / (h0 + h1)
    assert _one_round((9, 5), 0.0, pick=share - 1e-9, **settings)[0].provider == 0
    assert _one_round((9, 5), 0.0, pick=share + 1e-9, **settings)[0].provider == 1
    # at choosiness 0 both homes say yes with a, however full: 2 x -log(1 - a)
    plain = dict(acceptance=a)
    assert _one_round((9, 5), -2 * math.log1p(-a) - 1e-9, 0.0, **plain)[0].provider == 0
    assert _one_round((9, 5), -2 * math.log1p(-a) + 1e-9, 0.0, **plain)[0].provider == -1


def test_an_empty_home_that_surely_says_yes_takes_the_client():
    """A free share so far above the reference that a yes is certain: placed in the first
    round whatever the clock, by that home."""
    request, _ = _one_round((10 - 1, 0), clock=50.0, pick=0.99, acceptance=0.5,
                            choosiness=2.0, reference_free=0.2)
    assert request.provider == 1 and request.rounds == 1


def test_homes_say_yes_to_self_funders_more_readily():
    """private_acceptance 2: a self-funder's chance of a yes is doubled (2a at each of the two
    homes), a council-funded client's is not."""
    a = 0.2
    council, self_funder = -2 * math.log1p(-a), -2 * math.log1p(-2 * a)
    between = (council + self_funder) / 2
    assert _one_round((0, 0), between, 0.0, private=True, acceptance=a,
                      private_acceptance=2.0)[0].provider == 0
    assert _one_round((0, 0), between, 0.0, private=False, acceptance=a,
                      private_acceptance=2.0)[0].provider == -1


def test_self_funders_are_the_patients_without_a_funding_decision_and_a_share_of_referrals():
    """In a run: a hospital patient on pathway 3 pays their own fees exactly when the pathway's
    funding step found so (no funding decision to wait for); community referrals to care homes
    pay their own with community_private_share (binomial, within 5 standard errors)."""
    share = 0.4
    params = small_params(services__care_home__market__private_acceptance=1.5,
                          services__care_home__market__community_private_share=share,
                          services__care_home__community_referrals_per_day=2.0)
    model = Model(params)
    model.run()
    by_id = {p.id: p for p in model.patients}
    hospital = [r for r in model.requests if r.service == "care_home" and r.source == "hospital"]
    assert hospital and all(r.placement.private == math.isnan(by_id[r.patient].funding)
                            for r in hospital)
    community = np.array([r.placement.private for r in model.requests
                          if r.service == "care_home" and r.source == "community"], float)
    assert community.size > 200 and within(community, share, share * (1 - share))
