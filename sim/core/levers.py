"""The levers a planner pulls, each in one place: the setting it moves, its unit and step, its
label, and what a unit of it costs; and the plain-English names of the other settings people
read.

A lever is a number (homecare posts, care-home places, ...) that sets one setting, or a switch
(seven-day working, discharge to assess) that applies a scenario: a file of settings in
``configs/scenario/`` (scenarios stay Hydra configs, and a switch's title and description are
the scenario file's own). The app's sidebar, the chart and table labels, the HTML report, the
sweeps and the budget search read this table; no lever's key or label is written anywhere
else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Lever:
    """One lever.

    ``setting``: the dotted setting a number lever sets (``scenario`` empty), or ``scenario``:
    the scenario file a switch applies (``setting`` empty). ``label`` names it for people, with
    its ``unit``; ``short`` names it in a what-if's label (``285 carers (+25)``); ``help`` says
    what it is. ``step`` is the app's step, ``scale`` how the app shows it (100: a share as a
    per cent). ``needs``: a setting that must be true for the lever to act (else it is not
    offered). ``budget_step``: the step in which a budget buys it (0: a budget cannot buy it);
    what a step costs follows from the prices (:func:`sim.core.costs.spending`): the capacity
    it adds, as provided, or for a switch its ``cost``, the annual cost item of
    :class:`sim.core.costs.Costs` it incurs. ``pay``: a pay rise of so many pounds an hour for
    the carers of the service it names, which cuts their turnover (``setting``) by the
    prices' ``carer_turnover_per_pound`` for each pound and adds the pounds to the service's
    hourly price (it is not offered as a plain setting)."""

    name: str
    label: str = ""
    unit: str = ""
    short: str = ""
    help: str = ""
    setting: str = ""
    scenario: str = ""
    step: float = 1
    scale: float = 1.0
    needs: str = ""
    cost: str = ""
    budget_step: float = 0.0
    pay: str = ""

    @property
    def is_switch(self) -> bool:
        return bool(self.scenario)

    def shown(self, value: float) -> float:
        """The value as the app shows it (a share as a per cent)."""
        return round(value * self.scale, 9) if self.scale != 1 else value

    def value(self, shown: float) -> float:
        """The setting's value from the one shown."""
        return shown / self.scale if self.scale != 1 else shown


LEVERS: tuple[Lever, ...] = (
    Lever("homecare_posts", "Homecare carers (posts)", "posts", "carers",
          "Homecare carers' posts (each a set number of hours a week with clients); while the "
          "workforce comes and goes, some posts are vacant or their carers off sick.",
          setting="services.homecare.staff.count", budget_step=5),
    Lever("carer_turnover", "Carers leaving a year (%)", "a year", "% carer turnover",
          "Turnover: carers who leave in a year, as a per cent of those in post. A post stays "
          "vacant until it is filled again.",
          setting="services.homecare.staff.workforce.turnover_per_year", step=5, scale=100,
          needs="services.homecare.staff.workforce.enabled"),
    Lever("carer_time_to_fill", "Days to fill a carer post", "days",
          "days to fill a carer post", "Mean days a carer's post stays vacant after a carer "
          "leaves.", setting="services.homecare.staff.workforce.time_to_fill.mean", step=7,
          needs="services.homecare.staff.workforce.enabled"),
    Lever("care_home_places", "Care-home places", "places", "care-home places",
          "Care-home places the system can buy, shared with people referred from the "
          "community.", setting="services.care_home.capacity", budget_step=5),
    Lever("step_down_beds", "Step-down / rehab beds", "beds", "step-down beds",
          "Step-down or rehabilitation beds (pathway 2).",
          setting="services.step_down.capacity", budget_step=2),
    Lever("discharge_team", "Discharge-team staff", "staff", "discharge-team staff",
          "Staff assessing patients' needs before discharge (pathways 1-3).",
          setting="assessment.staff", budget_step=1),
    Lever("carer_pay", "Carers' pay rise (£ an hour)", "£ an hour", "£/hour carers' pay rise",
          "A pay rise for homecare carers, so that fewer leave (turnover falls by the prices' "
          "carer_turnover_per_pound for each pound); providers' hourly price rises by as much.",
          setting="services.homecare.staff.workforce.turnover_per_year", budget_step=0.25,
          pay="homecare", needs="services.homecare.staff.workforce.enabled"),
    Lever("admissions", "Emergency admissions per day", "a day", "admissions/day",
          "Mean emergency admissions of older patients a day.", setting="admissions.per_day"),
    Lever("seven_day", scenario="seven_day_discharge", cost="seven_day_working_year",
          budget_step=1),
    Lever("discharge_to_assess", scenario="discharge_to_assess"),
    Lever("winter", scenario="winter_surge"),
)
"""Every lever: the numbers first, then the switches."""

SETTING_LABELS: Mapping[str, str] = {
    "services.homecare.staff.hours_each": "hours a week each carer works with clients",
    "assessment.in_hospital": "assessment in hospital (false: discharge to assess)",
    "assessment.hours.days": "days the discharge team works",
    "admissions.winter_multiplier": "winter admissions multiplier",
    "admissions.winter_start": "winter starts (day of year)",
    "admissions.winter_end": "winter ends (day of year)",
    "acute.beds": "acute beds",
    "run.replications": "replications",
    "run.days": "simulated days (with warm-up)",
    "run.warmup_days": "warm-up days (not measured)",
    "run.seed": "random seed",
}
"""Plain-English names of settings people read that are not levers (any other setting is shown
by its code name)."""

_RULE_PARTS = {"days": "days discharges may happen", "enabled": "discharge rule applies",
               "start_hour": "discharges from (hour)", "end_hour": "discharges until (hour)"}


def lever(name: str) -> Lever:
    """A lever by its name."""
    for item in LEVERS:
        if item.name == name:
            return item
    raise KeyError(f"no lever named {name!r}: " + ", ".join(item.name for item in LEVERS))


def lever_of_setting(key: str) -> Lever | None:
    """The number lever that sets ``key``, if any (not a pay rise, which moves it)."""
    return next((item for item in LEVERS if item.setting == key and not item.pay), None)


def setting_label(key: str) -> str:
    """A setting as people read it: a lever's label in lower case (``services.care_home.capacity``
    -> ``care-home places``), another setting's plain name, the pathways' rules in words
    (``pathways.p1.rule.days`` -> ``pathway 1: days discharges may happen``); any other
    setting keeps its code name."""
    found = lever_of_setting(key)
    if found is not None:
        return found.label[:1].lower() + found.label[1:]
    if key in SETTING_LABELS:
        return SETTING_LABELS[key]
    parts = key.split(".")
    if len(parts) >= 3 and parts[0] == "pathways" and parts[2] == "rule":
        return f"pathway {parts[1][1:]}: {_RULE_PARTS.get(parts[-1], parts[-1])}"
    return key


def get_setting(config: Any, key: str) -> Any:
    """A setting of parameters (or a config) by its dotted name (tables by key, lists by
    index: ``services.homecare.market.segments.0.providers``)."""
    value = config
    for part in key.split("."):
        if isinstance(value, Mapping):
            value = value[part]
        elif isinstance(value, (list, tuple)):
            value = value[int(part)]
        else:
            value = getattr(value, part)
    return value
