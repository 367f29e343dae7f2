"""Statistics across replications, checked against hand calculations.

Every expected number here is worked out by hand from the formula ``mean +- t(q, n-1) * sd /
sqrt(n)`` with the t quantile from a printed table (e.g. t(0.975, 4) = 2.7764), so a wrong
quantile (the normal 1.96 in place of t), a wrong sd (ddof 0) or a wrong root (n - 1) fails.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim.core.catalogue import Metric
from sim.reporting.analysis import paired_differences
from sim.running.stats import estimate, summarise, summarise_metrics, total

# Two-sided t quantiles from a statistical table (Student's t, upper-tail probability 0.025
# unless noted), to 5 significant figures.
T975 = {1: 12.706, 2: 4.3027, 4: 2.7764, 9: 2.2622, 19: 2.0930}
T95_4 = 2.1318  # upper-tail probability 0.05, 4 degrees of freedom (a 90% interval)
TABLE = 5e-4  # the tables' rounding, relative


def test_t_half_width_of_one_to_five_is_1_963():
    """[1, 2, 3, 4, 5]: mean 3, sd sqrt(2.5), half-width 2.7764 * sqrt(2.5) / sqrt(5) = 1.963
    (the normal quantile would give 1.386, and ddof=0 1.756)."""
    e = estimate([1, 2, 3, 4, 5])
    assert e.n == 5 and e.mean == 3.0
    assert e.sd == pytest.approx(math.sqrt(2.5), rel=1e-12)
    assert e.half_width == pytest.approx(1.9632, abs=1e-4)
    assert e.low == pytest.approx(3 - 1.9632, abs=1e-4)
    assert e.high == pytest.approx(3 + 1.9632, abs=1e-4)
    assert e.high - e.mean == pytest.approx(e.mean - e.low, rel=1e-12), "symmetric interval"


def test_t_half_width_of_two_values_is_the_table_quantile():
    """[0, 2]: sd sqrt(2), standard error 1, so the half-width is t(0.975, 1) = 12.706 itself."""
    e = estimate([0.0, 2.0])
    assert e.half_width == pytest.approx(T975[1], rel=TABLE)
    assert (e.low, e.high) == pytest.approx((1 - T975[1], 1 + T975[1]), rel=TABLE)


@pytest.mark.parametrize("n", sorted(T975))
def test_half_width_is_the_t_quantile_times_the_standard_error(n):
    """For every n in the table: the half-width over sd / sqrt(n) is t(0.975, n - 1)."""
    values = np.arange(n + 1, dtype=float) ** 1.5  # any values that are not all equal
    e = estimate(values)
    assert e.n == n + 1
    assert e.sd == pytest.approx(float(np.std(values, ddof=1)), rel=1e-12)
    assert e.half_width / (e.sd / math.sqrt(n + 1)) == pytest.approx(T975[n], rel=TABLE)


def test_a_90_percent_interval_uses_its_own_quantile():
    """level=0.90 on [1..5]: 2.1318 * sqrt(0.5) = 1.5074."""
    assert estimate([1, 2, 3, 4, 5], level=0.90).half_width == pytest.approx(1.5074, abs=1e-4)


def test_half_width_tends_to_the_normal_quantile_for_many_replications():
    """For n = 1000 the quantile is 1.9623: between z = 1.9600 and t(0.975, 100) = 1.9840."""
    values = np.random.default_rng(1).normal(size=1000)
    e = estimate(values)
    ratio = e.half_width / (e.sd / math.sqrt(1000))
    assert 1.9600 < ratio < 1.9840
    assert ratio == pytest.approx(1.9623, abs=1e-4)


def test_nans_are_dropped_and_degenerate_samples_have_no_interval():
    """NaNs are not replications; one value has a mean but no interval; none has nothing;
    equal values have a zero-width interval."""
    assert estimate([1, np.nan, 2, 3, 4, np.nan, 5]) == estimate([1, 2, 3, 4, 5])
    one = estimate([7.0, np.nan])
    assert one.n == 1 and one.mean == 7.0
    assert math.isnan(one.sd) and math.isnan(one.low) and math.isnan(one.high)
    none = estimate([np.nan])
    assert none.n == 0 and math.isnan(none.mean)
    flat = estimate([4.0, 4.0, 4.0])
    assert (flat.mean, flat.sd, flat.low, flat.high) == (4.0, 0.0, 4.0, 4.0)


def test_an_interval_past_the_quantitys_bound_is_cut_there():
    """[0, 0, 10] of a quantity >= 0: mean 3.333, sd 5.7735, half-width 4.3027 * 5.7735 /
    sqrt(3) = 14.343, so the t-interval [-11.01, 17.68] is cut to [0, 17.68] and says so; an
    interval inside the bound is left whole."""
    cut = estimate([0.0, 0.0, 10.0], lower=0.0)
    assert cut.at_bound and cut.low == 0.0
    assert cut.mean == pytest.approx(10 / 3, rel=1e-12)
    assert cut.high == pytest.approx(10 / 3 + 14.343, abs=2e-3)
    whole = estimate([0.0, 0.0, 10.0])
    assert not whole.at_bound and whole.low == pytest.approx(10 / 3 - 14.343, abs=2e-3)
    inside = estimate([1, 2, 3, 4, 5], lower=0.0)
    assert not inside.at_bound and inside == estimate([1, 2, 3, 4, 5])


def test_an_interval_past_a_shares_upper_bound_is_cut_there():
    """[0.9, 1.0, 0.8] of a share in [0, 1]: mean 0.9, sd 0.1, half-width 4.3027 * 0.1 /
    sqrt(3) = 0.24842, so [0.6516, 1.1484] is cut to [0.6516, 1] and says so; both bounds at
    once cut both ends ([0, 0, 1]: [-1.1009, 1.7676] becomes [0, 1])."""
    cut = estimate([0.9, 1.0, 0.8], lower=0.0, upper=1.0)
    assert cut.at_bound and cut.high == 1.0
    assert cut.low == pytest.approx(0.9 - 0.24842, abs=1e-4)
    both = estimate([0.0, 0.0, 1.0], lower=0.0, upper=1.0)
    assert both.at_bound and (both.low, both.high) == (0.0, 1.0)
    assert both.mean == pytest.approx(1 / 3, rel=1e-12)
    inside = estimate([0.4, 0.5, 0.6], lower=0.0, upper=1.0)
    assert not inside.at_bound and inside == estimate([0.4, 0.5, 0.6])


def test_a_total_is_the_sum_over_replications_with_no_interval():
    """A count declared ``total`` (patients who arrived in the whole run): 3 + 4 + 5 = 12, NaN
    dropped, no sd and no interval, however spread the values."""
    t = total([3.0, 4.0, np.nan, 5.0])
    assert (t.mean, t.n) == (12.0, 3)
    assert math.isnan(t.sd) and math.isnan(t.low) and math.isnan(t.high) and not t.at_bound


def test_summarise_metrics_reads_bounds_and_totals_from_the_catalogue():
    """A share, a count declared total, an unbounded slope and a metric the catalogue does not
    declare, over three replications, by hand."""
    entries = {"share": Metric("share", "fraction", "a share", "g", percent=True),
               "count": Metric("count", "patients", "a count", "g", "total"),
               "slope": Metric("slope", "per day", "a slope", "g", lower=None)}
    values = {"share": [0.9, 1.0, 0.8], "count": [3.0, 4.0, 5.0], "slope": [-1.0, 0.0, -2.0],
              "other": [-1.0, 0.0, -2.0]}
    tidy = pd.DataFrame([(m, "u", k, v) for m, vs in values.items() for k, v in enumerate(vs)],
                        columns=["metric", "unit", "replication", "value"])
    s = summarise_metrics(tidy, entries).set_index("metric")
    assert s.loc["share", "ci_high"] == 1.0 and s.loc["share", "ci_at_bound"]
    assert s.loc["count", "mean"] == 12.0 and s.loc["count", "replications"] == 3
    assert np.isnan(s.loc["count", ["sd", "ci_low", "ci_high"]].astype(float)).all()
    # -1 +- 4.3027 * 1 / sqrt(3) = [-3.4841, 1.4841]: unbounded, or not declared: not cut
    for name in ("slope", "other"):
        assert s.loc[name, "ci_low"] == pytest.approx(-1 - 2.4841, abs=1e-4), name
        assert not s.loc[name, "ci_at_bound"], name


def test_t_interval_covers_the_true_mean_95_percent_of_the_time_even_for_three_values():
    """Coverage of 4000 intervals from 3 normal values each. The t-interval covers the true
    mean with probability 0.95 exactly; a 1.96 interval would cover it only 81% of the time.
    The binomial range of the count at 5 sd (p = 6e-7 of failing by chance) is +-0.017."""
    rng = np.random.default_rng(20240101)
    trials = 4000
    covered = 0
    for sample in rng.normal(10.0, 3.0, size=(trials, 3)):
        e = estimate(sample)
        covered += e.low <= 10.0 <= e.high
    tolerance = 5 * math.sqrt(0.95 * 0.05 / trials)
    assert abs(covered / trials - 0.95) < tolerance, covered / trials


def test_summarise_gives_each_metric_and_group_its_own_interval():
    """A tidy table of two scenarios x two metrics: each row's numbers by hand."""
    tidy = pd.DataFrame({
        "scenario": ["a"] * 6 + ["b"] * 6,
        "metric": ["x", "x", "x", "y", "y", "y"] * 2,
        "unit": ["u"] * 12,
        "replication": [0, 1, 2] * 4,
        "value": [1, 2, 3, 10, 10, 10, 2, 4, 6, 0, 5, np.nan],
    })
    s = summarise(tidy, by=["scenario"], lower={"y": 0.0}).set_index(["scenario", "metric"])
    assert list(s.columns) == ["unit", "mean", "sd", "ci_low", "ci_high", "replications",
                               "ci_at_bound"]
    # a/x = [1, 2, 3]: sd 1, half-width 4.3027 / sqrt(3) = 2.4841
    assert s.loc[("a", "x"), "mean"] == 2.0 and s.loc[("a", "x"), "sd"] == 1.0
    assert s.loc[("a", "x"), "ci_high"] - 2.0 == pytest.approx(2.4841, abs=1e-4)
    # a/y: constant, zero width
    assert s.loc[("a", "y"), ["mean", "ci_low", "ci_high"]].tolist() == [10.0, 10.0, 10.0]
    # b/x = [2, 4, 6]: sd 2, half-width 4.9683
    assert s.loc[("b", "x"), "ci_high"] - 4.0 == pytest.approx(4.9683, abs=1e-4)
    # b/y = [0, 5] (NaN dropped): sd 5 / sqrt(2), half-width 12.706 * 2.5 = 31.765; y cannot
    # be negative, so the interval is cut at 0; x has no bound and keeps its whole interval.
    assert s.loc[("b", "y"), "replications"] == 2
    assert s.loc[("b", "y"), "ci_high"] - 2.5 == pytest.approx(31.765, rel=TABLE)
    assert s.loc[("b", "y"), "ci_low"] == 0.0 and s.loc[("b", "y"), "ci_at_bound"]
    assert s.loc[("b", "x"), "ci_low"] == pytest.approx(4.0 - 4.9683, abs=1e-4)
    assert not s.loc[("b", "x"), "ci_at_bound"] and not s.loc[("a", "y"), "ci_at_bound"]


def test_paired_differences_by_hand():
    """Scenario minus baseline replication by replication, over the replications both have:
    b - base = [1, 2, 3] (replication 3 only in b is ignored): mean 2, half-width 2.4841."""
    rows = []
    for scenario, values in (("baseline", [1.0, 2.0, 3.0]), ("b", [2.0, 4.0, 6.0, 100.0])):
        for k, v in enumerate(values):
            rows.append((scenario, "m", "u", k, v))
    tidy = pd.DataFrame(rows, columns=["scenario", "metric", "unit", "replication", "value"])
    d = paired_differences(tidy).set_index("scenario").loc["b"]
    assert d["pairs"] == 3 and d["difference"] == 2.0
    assert d["diff_ci_high"] - 2.0 == pytest.approx(2.4841, abs=1e-4)
    assert 2.0 - d["diff_ci_low"] == pytest.approx(2.4841, abs=1e-4)


def test_pairing_is_by_replication_number_not_by_row_order():
    """The same pairs in shuffled row order give the same difference: a constant +5 has a
    zero-width interval, which an unpaired (or mis-paired) difference would not."""
    rng = np.random.default_rng(3)
    base = rng.normal(size=8)
    rows = [("baseline", "m", k, v) for k, v in enumerate(base)]
    rows += [("up", "m", k, v + 5.0) for k, v in enumerate(base)]
    tidy = pd.DataFrame(rows, columns=["scenario", "metric", "replication", "value"])
    tidy = tidy.sample(frac=1.0, random_state=4).reset_index(drop=True)
    d = paired_differences(tidy).set_index("scenario").loc["up"]
    assert d["pairs"] == 8
    assert d["difference"] == pytest.approx(5.0, abs=1e-12)
    assert d["diff_ci_low"] == pytest.approx(5.0, abs=1e-12)
    assert d["diff_ci_high"] == pytest.approx(5.0, abs=1e-12)


def _two_scenarios(metric: str, baseline: list[float], other: list[float]) -> pd.DataFrame:
    rows = [(s, metric, "u", k, v) for s, values in (("baseline", baseline), ("other", other))
            for k, v in enumerate(values)]
    return pd.DataFrame(rows, columns=["scenario", "metric", "unit", "replication", "value"])


def test_scenario_comparison_cuts_levels_at_their_bounds_but_not_differences():
    """Deaths during delay, baseline [0, 0, 120] (t-interval 40 +- 172.1, i.e. [-132, 212]),
    another scenario [0, 0, 0]: the levels cannot be negative, so the baseline's is cut at 0
    and marked; the paired difference [0, 0, -120] = -40 +- 172.1 keeps its negative end. A
    share reaching past 100% is cut at 100%."""
    from sim.reporting.analysis import scenario_comparison
    deaths = "harm.deaths_during_delay"
    tidy = pd.concat([_two_scenarios(deaths, [0.0, 0.0, 120.0], [0.0, 0.0, 0.0]),
                      _two_scenarios("acute_occupancy", [0.9, 1.0, 0.8], [0.5, 0.5, 0.5])])
    table = scenario_comparison(tidy, metrics=(deaths, "acute_occupancy")).set_index(
        ["metric", "scenario"])
    base = table.loc[(deaths, "baseline")]
    assert base["ci_low"] == 0.0 and base["ci_at_bound"]
    assert base["ci_high"] == pytest.approx(40 + 172.11, abs=0.05)
    other = table.loc[(deaths, "other")]
    assert other["difference"] == -40.0
    assert other["diff_ci_low"] == pytest.approx(-40 - 172.11, abs=0.05)
    assert other["diff_ci_high"] == pytest.approx(-40 + 172.11, abs=0.05)
    occupancy = table.loc[("acute_occupancy", "baseline")]
    assert occupancy["ci_high"] == 1.0 and occupancy["ci_at_bound"]
    assert not table.loc[("acute_occupancy", "other"), "ci_at_bound"]


def test_every_analysis_table_has_bounded_levels():
    """The response curve, the weekend rules and the warm-up series: a delay or a count of
    [0, 0, 9] (9 +- ... reaches below 0) is cut at 0 in each."""
    from sim.reporting.analysis import response_curve, warmup, weekend_rules
    values = [0.0, 0.0, 9.0]
    curve = pd.DataFrame({"job": "j", "scenario": "s", "replication": [0, 1, 2],
                          "metric": "delay_mean.p1", "value": values, "unit": "days",
                          "beds": 100})
    weekday = _two_scenarios("delay_mean.fit_Mon", values, values)
    daily = pd.DataFrame({"day": [0, 0, 0], "replication": [0, 1, 2], "fit_in_hospital": values})
    tables = {"response curve": response_curve(curve, "beds", metrics=("delay_mean.p1",)),
              "weekend rules": weekend_rules(weekday), "warm-up": warmup(daily)[0]}
    for name, table in tables.items():
        assert (table["ci_low"] == 0.0).all() and table["ci_at_bound"].all(), name


def test_a_markdown_table_marks_an_interval_cut_at_its_bound_and_says_why(tmp_path):
    """The † of the run summary, after the interval's ``ci_high``, and the note under the
    table; the CSV keeps the column, the Markdown shows no True/False."""
    from sim.running.tables import BOUND_NOTE, write_table
    table = pd.DataFrame({"metric": ["a", "b"], "mean": [3.0, 5.0], "ci_low": [0.0, 4.0],
                          "ci_high": [17.7, 6.0], "ci_at_bound": [True, False]})
    write_table(table, tmp_path, "t", "# A table")
    text = (tmp_path / "t.md").read_text()
    assert "| a | 3 | 0 | 17.7† |" in text and "| b | 5 | 4 | 6 |" in text
    assert BOUND_NOTE in text and "True" not in text and "ci_at_bound" not in text
    assert "ci_at_bound" in (tmp_path / "t.csv").read_text()
    write_table(table.iloc[1:], tmp_path, "whole", "# No cut")
    assert BOUND_NOTE not in (tmp_path / "whole.md").read_text()
