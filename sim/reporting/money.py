"""Money for people: pounds formatted to be read, and what a scenario costs against the
baseline, with its uncertainty.

Against the baseline, on common random numbers, a scenario has a **net cost** (the change in
the total cost a year: more spending, less spent on delayed bed-days) and costs per outcome:
the **cost per delayed bed-day avoided** (the change in spending, everything but delayed
bed-days, over the delayed bed-days avoided) and, with the harm of waiting on, the **cost per
death during a delay avoided**. A cost per outcome is a ratio of two paired means; its 95%
interval is Fieller's, which is exact for a ratio of normal means and honest when the
denominator is uncertain: when the interval of the outcome avoided includes zero, so that the
simulation cannot tell the scenario avoids any, the ratio has no finite interval and is
reported as not defined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from sim.core.costs import YEAR
from sim.running.stats import t_quantile

SPENDING = "cost.spending"
"""The spending of a system: its total cost less the cost of its delayed bed-days."""


def pounds(value: float, per: str = "") -> str:
    """Pounds as people read them: ``£1.23m``, ``£456k``, ``£789``, ``-£12.3k`` (three
    significant figures above a thousand), then ``per`` (``a year``)."""
    if value is None or not math.isfinite(value):
        return "-"
    sign, size = ("-" if value < 0 else ""), abs(value)
    if size >= 1e6:
        text = f"£{size / 1e6:.3g}m"
    elif size >= 1e3:
        text = f"£{size / 1e3:.3g}k"
    else:
        text = f"£{size:,.0f}"
    return f"{sign}{text}" + (f" {per}" if per else "")


@dataclass(frozen=True)
class Ratio:
    """A ratio of two means with its 95% interval (NaN bounds: the interval is not finite)."""

    value: float
    low: float
    high: float

    @property
    def defined(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)


def fieller(numerator: Sequence[float], denominator: Sequence[float],
            level: float = 0.95) -> Ratio:
    """The ratio of the means of paired samples, mean(a) / mean(b), with Fieller's interval:
    the values r for which mean(a) - r mean(b) is within its t-interval of 0. Not finite
    (NaN bounds) when mean(b) is not distinguishable from 0 at this level."""
    a, b = np.asarray(numerator, float), np.asarray(denominator, float)
    n = a.size
    if n < 2 or np.mean(b) == 0:
        return Ratio(math.nan, math.nan, math.nan)
    ma, mb = float(a.mean()), float(b.mean())
    vaa, vbb = float(a.var(ddof=1)) / n, float(b.var(ddof=1)) / n
    vab = float(np.cov(a, b, ddof=1)[0, 1]) / n
    t2 = t_quantile(n - 1, 0.5 + level / 2) ** 2
    # (mb^2 - t2 vbb) r^2 - 2 (ma mb - t2 vab) r + (ma^2 - t2 vaa) <= 0
    qa, qb, qc = mb ** 2 - t2 * vbb, -2 * (ma * mb - t2 * vab), ma ** 2 - t2 * vaa
    ratio = ma / mb
    disc = qb ** 2 - 4 * qa * qc
    if qa <= 0 or disc < 0:
        return Ratio(ratio, math.nan, math.nan)
    root = math.sqrt(disc)
    return Ratio(ratio, (-qb - root) / (2 * qa), (-qb + root) / (2 * qa))


def cost_comparison(tidy: pd.DataFrame, baseline: str = "baseline") -> pd.DataFrame:
    """Each scenario against the baseline, in pounds a year: the net cost (the paired change in
    the total cost) with its 95% interval, and the cost per delayed bed-day avoided and per
    death during a delay avoided (Fieller's interval; NaN when not defined), from a tidy table
    of replications' metrics with a ``scenario`` column, costs included."""
    from sim.running.stats import estimate

    wide = tidy.pivot_table(index=["scenario", "replication"], columns="metric", values="value")
    if "cost.total" not in wide:
        raise ValueError("the runs have no costs: run them with prices (costs)")
    wide[SPENDING] = wide["cost.total"] - wide["cost.delayed_bed_days"]
    base = wide.loc[baseline]
    rows = []
    for scenario in dict.fromkeys(tidy["scenario"]):
        if scenario == baseline:
            continue
        mine = wide.loc[scenario]
        common = mine.index.intersection(base.index)
        change = (mine.loc[common] - base.loc[common]) * YEAR
        net = estimate(change["cost.total"].to_numpy())
        row = {"scenario": scenario, "replications": len(common),
               "net_cost": net.mean, "net_cost_low": net.low, "net_cost_high": net.high}
        avoided = -change["delayed_days_per_30d"]  # bed-days a year
        row.update(spending_change=float(change[SPENDING].mean()),
                   bed_days_avoided=float(avoided.mean()),
                   bed_days_avoided_high=estimate(avoided.to_numpy()).high)
        per_day = fieller(change[SPENDING].to_numpy(), avoided.to_numpy())
        row.update(per_bed_day=per_day.value, per_bed_day_low=per_day.low,
                   per_bed_day_high=per_day.high)
        if "harm.deaths_during_delay" in change:
            deaths = -change["harm.deaths_during_delay"]  # a year
            per_death = fieller(change[SPENDING].to_numpy(), deaths.to_numpy())
            row.update(per_death=per_death.value, per_death_low=per_death.low,
                       per_death_high=per_death.high)
        rows.append(row)
    return pd.DataFrame(rows)


def _between(value: float, low: float, high: float, signed: bool = False) -> str:
    """``£89 (£47 to £1.11k)``; ``not defined`` for a ratio with no finite interval."""
    show = (lambda v: ("+" if v > 0 else "") + pounds(v)) if signed else pounds
    if not math.isfinite(value):
        return "-"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{show(value)} (not defined: no detectable saving)"
    return f"{show(value)} ({show(low)} to {show(high)})"


def cost_table_for_people(table: pd.DataFrame, labels: dict[str, str] | None = None
                          ) -> pd.DataFrame:
    """:func:`cost_comparison` in words and pounds, one row per scenario."""
    rows = []
    for r in table.to_dict("records"):
        if r["spending_change"] == 0:
            per_day = "no spending priced (its cost is not in the prices)"
        elif r["bed_days_avoided_high"] < 0:
            per_day = "adds delayed bed-days"
        else:
            per_day = _between(r["per_bed_day"], r["per_bed_day_low"], r["per_bed_day_high"])
        row = {"scenario": (labels or {}).get(r["scenario"], r["scenario"]),
               "net cost a year [95% CI]": _between(r["net_cost"], r["net_cost_low"],
                                                    r["net_cost_high"], signed=True),
               "cost per delayed bed-day avoided [95% CI]": per_day}
        if "per_death" in r:
            row["cost per death during a delay avoided [95% CI]"] = (
                per_day if r["spending_change"] == 0 else
                _between(r["per_death"], r["per_death_low"], r["per_death_high"]))
        rows.append(row)
    return pd.DataFrame(rows)


def cost_curve_table(tidy: pd.DataFrame, baseline_values: dict[str, float]) -> pd.DataFrame:
    """For each lever and capacity of it (columns ``lever``, ``label``, ``capacity`` of a
    tidy table of priced replications), the total cost a year (mean, 95% CI), the cost of
    delayed bed-days a year, whether the capacity is the baseline's, and whether its total is
    the lowest of the lever's."""
    from sim.running.stats import estimate

    rows = []
    for (lever, label, capacity), group in tidy.groupby(["lever", "label", "capacity"],
                                                        sort=True):
        wide = group.pivot_table(index="replication", columns="metric", values="value")
        total = estimate((wide["cost.total"] * YEAR).to_numpy())
        rows.append({"lever": lever, "label": label, "capacity": capacity,
                     "total": total.mean, "total_low": total.low, "total_high": total.high,
                     "delayed": float(wide["cost.delayed_bed_days"].mean() * YEAR),
                     "delayed_bed_days_per_30d": float(wide["delayed_days_per_30d"].mean()),
                     "replications": total.n,
                     "baseline": capacity == baseline_values[lever]})
    table = pd.DataFrame(rows)
    table["lowest"] = table.groupby("lever")["total"].transform("min") == table["total"]
    return table


def _interval(value: float, low: float, high: float, digits: int = 0, signed: bool = False) -> str:
    form = f"{{:{'+' if signed else ''},.{digits}f}}"
    if not math.isfinite(value):
        return "-"
    text = form.format(value)
    if math.isfinite(low) and math.isfinite(high):
        text += f" ({form.format(low)} to {form.format(high)})"
    return text


def budget_table_for_people(best: pd.DataFrame) -> pd.DataFrame:
    """The best mixes of a budget search (:func:`sim.running.budget.search`) in words."""
    return pd.DataFrame([{
        "rank": r["rank"], "mix": r["mix"], "spend a year": pounds(r["spend"]),
        "delayed bed-days per 30 days [95% CI]": _interval(
            r["delayed_days_per_30d"], r["delayed_low"], r["delayed_high"]),
        "change from baseline [95% CI]": _interval(
            r["delayed_change"], r["delayed_change_low"], r["delayed_change_high"],
            signed=True),
        "net cost a year [95% CI]": _between(r["net_cost"], r["net_cost_low"],
                                             r["net_cost_high"], signed=True)}
        for r in best.to_dict("records")])


def single_table_for_people(table: pd.DataFrame, objective: str) -> pd.DataFrame:
    """The best mix against each single lever's allocation, in words."""
    money = objective == "total_cost"
    show = (lambda v, lo, hi: _between(v, lo, hi, signed=True)) if money else (
        lambda v, lo, hi: _interval(v, lo, hi, signed=True))
    return pd.DataFrame([{
        "the whole budget on": r["single"],
        "best mix minus it [95% CI]": show(r["difference"], r["difference_low"],
                                           r["difference_high"]),
        "what it means": ("the mix does better" if r["better"] else
                          "the mix does worse" if r["difference_low"] > 0 else
                          "no difference the simulation can detect")}
        for r in table.to_dict("records")])
