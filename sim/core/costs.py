"""What a run costs: delayed bed-days, community capacity used and provided, staff and
programmes, in pounds, from a run's metrics and a set of unit prices.

The prices are inputs a planner replaces with their own area's (``configs/costs/``, each with
its source and price year; docs/costs.md). Costs are worked out from the metrics after a run,
so a change of price needs no new run, and a replication's costs are a sum of its metrics
times prices: the costs of two scenarios are paired replication by replication like any other
metric.

- **Delayed bed-days**: delayed bed-days x the price of a delayed bed-day.
- **Community capacity used**: each service's units in use (time-average) x its price (care
  homes by kind of place), as spot purchases are paid; **provided**: its capacity (places, or
  carers' posts x their hours), as block contracts are paid.
- **The discharge team**: its staff x the annual cost of one.
- **Programmes**: the switch levers that are on (seven-day working), at their annual cost.
- **Total**: delayed bed-days + capacity provided + the discharge team + programmes: what the
  system costs when its capacity is bought on block terms, the basis on which a lever's extra
  capacity is bought.

Every cost is per 30 days (the metrics' period); per year is 365 / 30 times as much.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, Iterable, Mapping

from sim.core.params import ParameterError, Params, Service

if TYPE_CHECKING:
    import pandas as pd

PER_DAY = {"hour": 1 / 7, "day": 1.0, "week": 1 / 7}
"""Days' worth of a price, by what it is for: an hour of a service counted in hours a week
(one hour a week for a day is 1/7 of an hour), a day of a place, a week of a place."""

DAYS = 30.0
"""The period costs are reported per (as delayed bed-days are)."""

YEAR = 365.0 / DAYS
"""Per year is this many times per 30 days."""


def _price(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ParameterError(name, value, "a price in pounds >= 0")


@dataclass(frozen=True)
class ServicePrice:
    """The price of a community service: ``price`` pounds ``per`` hour (of a service counted
    in carer-hours a week), day or week (of a place); ``segments``: the price of each kind of
    place that costs something else (a nursing-home week)."""

    price: float = 0.0
    per: str = "day"
    segments: Dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _price("price", self.price)
        if self.per not in PER_DAY:
            raise ParameterError("per", self.per, " or ".join(PER_DAY))
        for name, value in self.segments.items():
            _price(f"segments.{name}", value)

    def per_unit_day(self, segment: str = "") -> float:
        """Pounds a unit of the service (a place, or an hour a week) costs a day."""
        return self.segments.get(segment, self.price) * PER_DAY[self.per]


@dataclass(frozen=True)
class Costs:
    """Unit prices, in pounds at ``price_year`` prices (docs/costs.md gives each one's source).

    ``delayed_bed_day``: a bed-day of a medically fit patient; ``acute_bed_day``: an average
    acute bed-day (for reference: a delayed day costs less, with no treatment); ``services``:
    each community service's price; ``discharge_team_member_year`` and ``social_worker_year``:
    a member of staff for a year, all costs; ``care_worker_recruitment``: recruiting one care
    worker; ``seven_day_working_year``: weekend working of the discharge team, pharmacy and
    brokerage over the baseline's; ``carer_turnover_per_pound``: the share by which a pay rise
    of a pound an hour cuts carers' turnover (the retention lever)."""

    price_year: str = ""
    acute_bed_day: float = 0.0
    delayed_bed_day: float = 0.0
    services: Dict[str, ServicePrice] = field(default_factory=dict)
    discharge_team_member_year: float = 0.0
    social_worker_year: float = 0.0
    care_worker_recruitment: float = 0.0
    seven_day_working_year: float = 0.0
    carer_turnover_per_pound: float = 0.0
    reablement_episode: float = 0.0

    def __post_init__(self) -> None:
        for name in ("acute_bed_day", "delayed_bed_day", "discharge_team_member_year",
                     "social_worker_year", "care_worker_recruitment", "seven_day_working_year",
                     "reablement_episode"):
            _price(name, getattr(self, name))
        if not (0 <= self.carer_turnover_per_pound < 1):
            raise ParameterError("carer_turnover_per_pound", self.carer_turnover_per_pound,
                                 "a share in [0, 1): how much a pound an hour cuts turnover")

    def per_year(self, item: str) -> float:
        """An annual cost by its name (a lever's ``cost``)."""
        return float(getattr(self, item))


def capacity_units(params: Params, name: str) -> dict[str, float]:
    """A service's capacity by kind of place (segment; "" for a service without a market), in
    its unit: places, or carer-hours a week."""
    service = params.services[name]
    if not service.market.enabled:
        return {"": service.size}
    return {g.name: service.size * g.capacity for g in service.market.segments}


def cost_names(params: Params) -> list[str]:
    """The cost metrics of a system, in the order reported (all pounds per 30 days)."""
    names = ["cost.delayed_bed_days"]
    for name in params.services:
        names += [f"cost.{name}.used", f"cost.{name}.provided"]
    return names + ["cost.discharge_team", "cost.programmes", "cost.total"]


def run_costs(params: Params, costs: Costs, metrics: Mapping[str, float],
              programmes: Iterable[str] = ()) -> dict[str, float]:
    """One replication's costs, pounds per 30 days, by the names of :func:`cost_names`, from
    its ``metrics`` (by name) and the annual cost items of the ``programmes`` that are on (the
    switch levers', e.g. ``seven_day_working_year``)."""
    out = {"cost.delayed_bed_days": metrics["delayed_days_per_30d"] * costs.delayed_bed_day}
    provided_total = 0.0
    for name, service in params.services.items():
        price = costs.services.get(name)
        if price is None:
            out[f"cost.{name}.used"] = out[f"cost.{name}.provided"] = 0.0
            continue
        out[f"cost.{name}.used"] = _used(metrics, name, service, price) * DAYS
        provided = sum(units * price.per_unit_day(segment)
                       for segment, units in capacity_units(params, name).items()) * DAYS
        out[f"cost.{name}.provided"] = provided
        provided_total += provided
    out["cost.discharge_team"] = params.assessment.staff * costs.discharge_team_member_year / YEAR
    out["cost.programmes"] = sum(costs.per_year(item) for item in programmes) / YEAR
    out["cost.total"] = (out["cost.delayed_bed_days"] + provided_total
                         + out["cost.discharge_team"] + out["cost.programmes"])
    return out


def spending(params: Params, costs: Costs, programmes: Iterable[str] = ()) -> float:
    """What the system spends, pounds per 30 days: its total cost less its delayed bed-days
    (community capacity provided, the discharge team, programmes), from the parameters alone."""
    metrics = {"delayed_days_per_30d": 0.0}
    for name, service in params.services.items():
        metrics[f"{name}.in_use"] = 0.0
        for g in service.market.segments:
            metrics[f"{name}.{g.name}.in_use"] = 0.0
    return run_costs(params, costs, metrics, programmes)["cost.total"]


def _used(metrics: Mapping[str, float], name: str, service: Service,
          price: ServicePrice) -> float:
    """Pounds a day of the service's units in use: by kind of place where it has a market."""
    if not service.market.enabled:
        return metrics[f"{name}.in_use"] * price.per_unit_day()
    return sum(metrics[f"{name}.{g.name}.in_use"] * price.per_unit_day(g.name)
               for g in service.market.segments)


def with_costs(tidy: "pd.DataFrame", params: Params, costs: Costs,
               programmes: Iterable[str] = ()) -> "pd.DataFrame":
    """A tidy table of replications' metrics (``replication``, ``metric``, ``value``,
    ``unit``) with each replication's costs added as metrics of their own."""
    import pandas as pd

    programmes = tuple(programmes)
    rows = []
    for replication, group in tidy.groupby("replication", sort=True):
        values = dict(zip(group["metric"], group["value"].astype(float)))
        rows += [(replication, name, value, "£ per 30 days")
                 for name, value in run_costs(params, costs, values, programmes).items()]
    added = pd.DataFrame(rows, columns=["replication", "metric", "value", "unit"])
    return pd.concat([tidy, added[[c for c in tidy.columns if c in added.columns]]],
                     ignore_index=True)
