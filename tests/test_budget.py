"""The budget search (sim/running/budget.py): what a mix costs follows the prices, every mix
stays within the budget, and on a small system whose mixes can all be run the search finds the
best one."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from conftest import small_params
from sim.config.schema import load_config, switches_of
from sim.core.costs import ServicePrice
from sim.core.levers import lever
from sim.running.budget import (BudgetError, describe_mix, evaluate_mixes, make_options,
                                mix_spend, pareto_front, search)

PRICES = replace(load_config([]).costs, discharge_team_member_year=100_000.0,
                 services={"homecare": ServicePrice(20.0, "hour"),
                           "step_down": ServicePrice(100_000.0 / 2 / 365, "day"),
                           "care_home": ServicePrice(700.0, "week")})


def test_a_mix_costs_what_the_prices_say():
    params = small_params()
    homecare = params.services["homecare"].staff
    posts, pay, seven = lever("homecare_posts"), lever("carer_pay"), lever("seven_day")
    options = make_options(params, PRICES, (), [posts, pay, seven], 10_000_000.0,
                           switches_of([seven]))
    # 5 posts of so many hours a week, at £20 an hour, for 365 days
    assert mix_spend(params, PRICES, (), options, {"homecare_posts": 1}) == pytest.approx(
        5 * homecare.hours_each * 20.0 * 365 / 7)
    # 25p an hour more on every post's hours
    assert mix_spend(params, PRICES, (), options, {"carer_pay": 1}) == pytest.approx(
        homecare.count * homecare.hours_each * 0.25 * 365 / 7)
    assert mix_spend(params, PRICES, (), options, {"seven_day": 1}) == pytest.approx(
        PRICES.seven_day_working_year)
    assert describe_mix(options, {"homecare_posts": 2, "carer_pay": 4, "seven_day": 1}) == \
        "+10 homecare carers (posts), +£1.00 an hour carers' pay, seven-day working"
    most = next(o for o in options if o.name == "carer_pay")
    assert most.max_steps == 12  # the pay rise stops at £3 an hour


def test_a_lever_the_budget_cannot_buy_is_refused_in_one_line():
    with pytest.raises(BudgetError, match=r"^experiment.levers='admissions' is not allowed"):
        make_options(small_params(), PRICES, (), [lever("admissions")], 1e6, {})
    with pytest.raises(BudgetError, match=r"^experiment.budget=10 is not allowed"):
        make_options(small_params(), PRICES, (), [lever("discharge_team")], 10.0, {})


def test_the_front_keeps_the_mixes_nothing_cheaper_beats():
    import pandas as pd
    table = pd.DataFrame({"spend": [0, 1, 1, 2, 3, 4], "objective": [10, 9, 8, 8, 5, 6]})
    front = pareto_front(table)
    assert front.to_dict("list") == {"spend": [0, 1, 3], "objective": [10, 8, 5]}


def test_the_search_finds_the_best_mix_that_enumerating_every_mix_finds():
    """Two levers, a step of each costing £100k a year, £300k: ten mixes within the budget.
    Each is run on the same two replications; the search (16 mixes, same replications) finds
    the one with the fewest delayed bed-days, and never spends more than the budget."""
    params = small_params(run__days=120.0, run__warmup_days=28.0)
    levers = [lever("step_down_beds"), lever("discharge_team")]
    options = make_options(params, PRICES, (), levers, 300_000.0, {})
    assert [o.step_cost for o in options] == pytest.approx([100_000.0, 100_000.0])
    mixes = [{"step_down_beds": a, "discharge_team": b}
             for a, b in itertools.product(range(4), repeat=2) if a + b <= 3]
    outcomes = evaluate_mixes(params, PRICES, (), options, mixes, 2, None)
    best = min(outcomes, key=lambda o: np.mean(o.delayed))
    result = search(params, PRICES, (), options, 300_000.0, candidates=16, replications=2,
                    confirm=2, keep=3, seed=0, workers=1)
    assert (result.trials["spend"] <= 300_000.0 + 1e-6).all()
    assert {k: v for k, v in result.best_mix.items() if v} == {k: v for k, v in
                                                             best.mix.items() if v}
    assert result.best["delayed_days_per_30d"].iloc[0] == pytest.approx(np.mean(best.delayed))
    singles = result.against_single.set_index("lever")
    assert set(singles.index) == {"step_down_beds", "discharge_team"}
    assert (singles["difference"] <= 1e-9).all()  # the best mix is no worse than either


def test_a_search_resumes_from_its_folder_to_the_same_mixes(tmp_path):
    params = small_params(run__days=90.0, run__warmup_days=14.0)
    options = make_options(params, PRICES, (), [lever("step_down_beds"),
                                                lever("discharge_team")], 300_000.0, {})
    kwargs = dict(candidates=8, replications=1, confirm=1, keep=2, seed=3, workers=1)
    first = search(params, PRICES, (), options, 300_000.0, folder=tmp_path, **kwargs)
    again = search(params, PRICES, (), options, 300_000.0, folder=tmp_path, **kwargs)
    assert again.trials.equals(first.trials)
    with pytest.raises(BudgetError, match="another system"):
        search(params, PRICES, (), options, 400_000.0, folder=tmp_path, **kwargs)
