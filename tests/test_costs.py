"""Costs (sim/core/costs.py, sim/reporting/money.py): totals worked out by hand on a small
system, costs that pair like any metric, Fieller's interval against its definition, pounds for
people, and the programmes a system has on."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.config.schema import load_config, programmes_on
from sim.core.costs import YEAR, Costs, ServicePrice, cost_names, run_costs, with_costs
from sim.core.params import Market, ParameterError, Params, Segment, override
from sim.reporting.money import cost_comparison, fieller, pounds

PRICES = Costs(price_year="2024/25", acute_bed_day=1000.0, delayed_bed_day=400.0,
               services={"homecare": ServicePrice(20.0, "hour"),
                         "step_down": ServicePrice(500.0, "day"),
                         "care_home": ServicePrice(700.0, "week",
                                                   {"nursing": 1050.0})},
               discharge_team_member_year=73_000.0, seven_day_working_year=365_000.0)


def small_system() -> Params:
    """10 homecare posts of 20 hours (a pool), 8 step-down beds (a pool), 20 care-home places
    in two kinds, 12 residential and 8 nursing (a market), 5 discharge-team staff."""
    return override(Params(), {
        "services.homecare.staff.count": 10, "services.homecare.staff.hours_each": 20.0,
        "services.homecare.staff.workforce.enabled": False,
        "services.homecare.market.enabled": False,
        "services.step_down.capacity": 8.0, "services.step_down.market.enabled": False,
        "services.care_home.capacity": 20.0, "services.care_home.staffing.enabled": False,
        "services.care_home.market": Market(True, [Segment("residential", 0.6, 0.6, 2),
                                                   Segment("nursing", 0.4, 0.4, 1)]),
        "assessment.staff": 5})


METRICS = {"delayed_days_per_30d": 90.0, "homecare.in_use": 140.0, "step_down.in_use": 6.0,
           "care_home.residential.in_use": 10.0, "care_home.nursing.in_use": 7.0}


def test_costs_of_a_small_system_worked_out_by_hand():
    costs = run_costs(small_system(), PRICES, METRICS, ["seven_day_working_year"])
    assert list(costs) == cost_names(small_system())
    expected = {
        "cost.delayed_bed_days": 90 * 400,                     # bed-days per 30 days x price
        "cost.homecare.used": 140 * 20 / 7 * 30,               # hours a week, 1/7 a day
        "cost.homecare.provided": 10 * 20 * 20 / 7 * 30,       # posts x hours x price
        "cost.step_down.used": 6 * 500 * 30,
        "cost.step_down.provided": 8 * 500 * 30,
        "cost.care_home.used": (10 * 700 + 7 * 1050) / 7 * 30,  # by kind of place
        "cost.care_home.provided": (12 * 700 + 8 * 1050) / 7 * 30,
        "cost.discharge_team": 5 * 73_000 * 30 / 365,
        "cost.programmes": 365_000 * 30 / 365,
    }
    for name, value in expected.items():
        assert costs[name] == pytest.approx(value, rel=1e-12), name
    assert costs["cost.total"] == pytest.approx(
        expected["cost.delayed_bed_days"] + expected["cost.homecare.provided"]
        + expected["cost.step_down.provided"] + expected["cost.care_home.provided"]
        + expected["cost.discharge_team"] + expected["cost.programmes"], rel=1e-12)
    assert YEAR == pytest.approx(365 / 30)


def test_a_service_with_no_price_costs_nothing_and_says_so_by_zero():
    prices = Costs(delayed_bed_day=400.0, services={"homecare": ServicePrice(20.0, "hour")})
    costs = run_costs(small_system(), prices, METRICS)
    assert costs["cost.care_home.used"] == costs["cost.care_home.provided"] == 0.0
    assert costs["cost.programmes"] == 0.0


def test_costs_are_added_to_each_replication_from_its_own_metrics():
    tidy = pd.DataFrame([(k, name, value * (1 + k), "u") for k in range(3)
                         for name, value in METRICS.items()],
                        columns=["replication", "metric", "value", "unit"])
    priced = with_costs(tidy, small_system(), PRICES)
    delayed = priced[priced["metric"] == "cost.delayed_bed_days"].set_index("replication")
    assert list(delayed["value"]) == [90 * 400 * (1 + k) for k in range(3)]
    assert set(priced["unit"][priced["metric"].str.startswith("cost.")]) == {"£ per 30 days"}


@pytest.mark.parametrize("make, field", [
    (lambda: Costs(delayed_bed_day=-1.0), "delayed_bed_day"),
    (lambda: ServicePrice(20.0, "fortnight"), "per"),
    (lambda: ServicePrice(20.0, "week", {"nursing": math.inf}), "segments.nursing"),
    (lambda: Costs(carer_turnover_per_pound=1.5), "carer_turnover_per_pound"),
])
def test_a_bad_price_is_refused_naming_it(make, field):
    with pytest.raises(ParameterError) as refused:
        make()
    assert refused.value.field_name == field


def test_a_bad_price_on_the_command_line_is_one_line_naming_it_in_full():
    from sim.config.schema import ConfigError
    with pytest.raises(ConfigError, match=r"^costs\.services\.homecare\.per='fortnight' is "
                                          "not allowed: hour or day or week$"):
        load_config(["costs.services.homecare.per=fortnight"])


def test_fieller_interval_is_the_set_of_ratios_the_t_test_does_not_reject():
    """By its definition: r is in the interval when mean(a - r b) is within its 95%
    t-interval of 0; checked on a grid of r."""
    rng = np.random.default_rng(7)
    b = rng.normal(10.0, 2.0, 20)
    a = 3.0 * b + rng.normal(0.0, 4.0, 20)
    ratio = fieller(a, b)
    assert ratio.value == pytest.approx(a.mean() / b.mean())
    t = stats.t.ppf(0.975, 19)
    grid = np.linspace(ratio.low - 0.5, ratio.high + 0.5, 20_001)
    inside = [abs((a - r * b).mean()) <= t * (a - r * b).std(ddof=1) / math.sqrt(20)
              for r in grid]
    accepted = grid[np.array(inside)]
    step = grid[1] - grid[0]
    assert accepted.min() == pytest.approx(ratio.low, abs=step)
    assert accepted.max() == pytest.approx(ratio.high, abs=step)


def test_a_ratio_whose_denominator_may_be_zero_has_no_finite_interval():
    rng = np.random.default_rng(3)
    b = rng.normal(0.1, 5.0, 10)  # bed-days avoided: not distinguishable from none
    ratio = fieller(rng.normal(100.0, 5.0, 10), b)
    assert not ratio.defined and math.isnan(ratio.low)


def test_a_scenario_against_the_baseline_in_pounds_a_year():
    """Net cost: the paired change in the total; per bed-day avoided: the change in spending
    over the bed-days avoided, both a year."""
    rows = []
    for k in range(5):
        base = {"cost.total": 1000.0 + k, "cost.delayed_bed_days": 400.0 + k,
                "delayed_days_per_30d": 1.0 + k / 400}
        more = {"cost.total": 1050.0 + k, "cost.delayed_bed_days": 380.0 + k + (k % 2),
                "delayed_days_per_30d": 0.95 + k / 400 + (k % 2) / 400}
        rows += [("baseline", k, m, v) for m, v in base.items()]
        rows += [("more", k, m, v) for m, v in more.items()]
    tidy = pd.DataFrame(rows, columns=["scenario", "replication", "metric", "value"])
    [row] = cost_comparison(tidy).to_dict("records")
    changes = [(50.0, -20.0 + (k % 2), -0.05 + (k % 2) / 400) for k in range(5)]
    assert row["net_cost"] == pytest.approx(np.mean([c[0] for c in changes]) * YEAR)
    spending = [(c[0] - c[1]) * YEAR for c in changes]
    avoided = [-c[2] * YEAR for c in changes]
    assert row["per_bed_day"] == pytest.approx(np.mean(spending) / np.mean(avoided))
    assert row["per_bed_day_low"] < row["per_bed_day"] < row["per_bed_day_high"]


@pytest.mark.parametrize("value, text", [(1_234_567.0, "£1.23m"), (-45_600.0, "-£45.6k"),
                                         (789.4, "£789"), (0.0, "£0"), (math.nan, "-")])
def test_pounds_for_people(value, text):
    assert pounds(value) == text


def test_programmes_on_are_the_switches_whose_settings_a_system_has():
    assert programmes_on(load_config([]).params) == ()
    seven = load_config(["scenario=[seven_day_discharge,discharge_to_assess]"]).params
    assert programmes_on(seven) == ("seven_day_working_year",)
    half = load_config(["scenario=seven_day_discharge", "ward.hours.weekend_cover=0.9"]).params
    assert programmes_on(half) == ()  # not all of it: not the programme
