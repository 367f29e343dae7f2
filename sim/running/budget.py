"""The best use of a budget: which mix of levers a budget a year should buy.

A **mix** is how many steps of each lever a budget buys (5 more homecare posts a step, 5
care-home places, 2 step-down beds, a member of the discharge team, 25p an hour more pay for
carers) and which switches it turns on (seven-day working). What a mix costs a year follows
from the prices (:func:`sim.core.costs.spending`): the capacity it adds, as provided, the
pay rise on the carers' hours, a switch's annual cost. The search (Optuna's TPE, two
objectives) proposes mixes that spend a share of the budget split among the levers, runs each
on the same replications (common random numbers), and keeps the Pareto front of spending
against the objective: delayed bed-days, or the system's total cost (:mod:`sim.core.costs`).
The best few mixes are run again on more replications and ranked by that, and the best is
compared, paired, with spending the whole budget on any one lever. The study is kept in a
folder or a shared storage, resumes, and can be shared by several processes, like the
calibration's (:mod:`sim.running.studies`).

This module imports neither Hydra nor matplotlib: a switch's settings (its scenario file's)
come in as data.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from sim.core.costs import YEAR, Costs, run_costs, spending
from sim.core.levers import Lever, get_setting
from sim.core.model import simulate
from sim.core.params import ParameterError, Params, override
from sim.running.stats import estimate
from sim.running.store import model_code_digest
from sim.running.studies import (StudyError, Survey, Worker, evaluated, open_study,
                                 run_trials)

STUDY = "budget"
OBJECTIVES = {"delayed_days": "delayed bed-days per 30 days",
              "total_cost": "total system cost, pounds a year"}
"""What a search minimises, within the budget."""

BATCH = 4
"""Mixes proposed at once (then run in parallel)."""


class BudgetError(StudyError):
    """A budget search that cannot be run; the message is one line."""


@dataclass(frozen=True)
class Option:
    """A lever the budget can buy, as the search uses it: the lever (its ``budget_step``), a
    switch's settings and title (its scenario's), the most steps the search may buy, and what
    a step costs a year."""

    lever: Lever
    settings: tuple[tuple[str, Any], ...] = ()
    max_steps: int = 0
    step_cost: float = 0.0
    title: str = ""

    @property
    def name(self) -> str:
        return self.lever.name


Mix = Mapping[str, int]
"""Steps of each option, by lever name (a switch: 0 or 1)."""


def _bought(options: Sequence[Option], mix: Mix) -> Iterator[tuple[Option, int]]:
    """Each option ``mix`` buys, with its number of steps (options it does not buy left out)."""
    for option in options:
        if mix.get(option.name, 0):
            yield option, mix[option.name]


def apply_mix(params: Params, costs: Costs, programmes: Sequence[str],
              options: Sequence[Option], mix: Mix) -> tuple[Params, Costs, tuple[str, ...]]:
    """The system, its prices and its programmes with ``mix`` bought."""
    updates: dict[str, Any] = {}
    on = list(programmes)
    for option, n in _bought(options, mix):
        lever = option.lever
        if lever.is_switch:
            updates.update(dict(option.settings))
            if lever.cost and lever.cost not in on:
                on.append(lever.cost)
        elif lever.pay:
            rise = n * lever.budget_step
            current = float(get_setting(params, lever.setting))
            updates[lever.setting] = current * (1.0 - costs.carer_turnover_per_pound) ** rise
            price = costs.services[lever.pay]
            costs = replace(costs, services={**costs.services,
                                             lever.pay: replace(price, price=price.price + rise)})
        else:
            current = get_setting(params, lever.setting)
            updates[lever.setting] = type(current)(current + n * lever.budget_step)
    return override(params, updates), costs, tuple(on)


def mix_spend(params: Params, costs: Costs, programmes: Sequence[str],
              options: Sequence[Option], mix: Mix) -> float:
    """What ``mix`` costs a year, pounds: the change in the system's spending."""
    bought = apply_mix(params, costs, programmes, options, mix)
    return (spending(*bought) - spending(params, costs, programmes)) * YEAR


def describe_mix(options: Sequence[Option], mix: Mix) -> str:
    """A mix in words: ``+25 homecare carers (posts), +10 care-home places, seven-day working``
    (``nothing`` when it buys nothing)."""
    parts = []
    for option, n in _bought(options, mix):
        lever = option.lever
        if lever.is_switch:
            parts.append((option.title or option.name.replace("_", " ")).lower())
        elif lever.pay:
            parts.append(f"+£{n * lever.budget_step:.2f} an hour carers' pay")
        else:
            parts.append(f"+{n * lever.budget_step:g} {lever.label.lower()}")
    return ", ".join(parts) or "nothing"


def make_options(params: Params, costs: Costs, programmes: Sequence[str], levers: Sequence[Lever],
                 budget: float, switches: Mapping[str, tuple[tuple[tuple[str, Any], ...], str]]
                 ) -> list[Option]:
    """The options of a search: each lever with what a step costs a year and the most steps
    the budget buys (a switch already on, or that the budget cannot afford, is left out);
    ``switches``: each switch lever's settings and title (its scenario file's). Refuses a
    lever the budget cannot buy, or whose setting the system does not have."""
    options = []
    for lever in levers:
        if not lever.budget_step:
            raise BudgetError(f"experiment.levers={lever.name!r} is not allowed: a lever a "
                              "budget can buy (one with a budget_step in sim/core/levers.py)")
        settings, title = switches.get(lever.name, ((), ""))
        option = Option(lever, tuple(settings), title=title)
        try:
            cost = mix_spend(params, costs, programmes, [option], {lever.name: 1})
        except (ParameterError, AttributeError, KeyError) as error:
            raise BudgetError(f"experiment.levers={lever.name!r} is not allowed: this system "
                              f"cannot have it ({error})") from None
        if cost <= 0:
            continue  # on already (a switch), or free: nothing to buy
        most = 1 if lever.is_switch else int(budget / cost + 1e-9)
        if lever.pay:
            most = min(most, int(round(PAY_LIMIT / lever.budget_step)))
        if most >= 1 and cost <= budget:
            options.append(replace(option, max_steps=most, step_cost=cost))
    if not options:
        raise BudgetError(f"experiment.budget={budget:g} is not allowed: enough to buy a step "
                          "of at least one lever")
    return options


PAY_LIMIT = 3.0
"""The largest pay rise a search may buy, pounds an hour: the evidence on pay and turnover
(docs/costs.md) covers rises of a pound or two, not more."""


@dataclass
class Outcome:
    """A mix's results over replications: the objective's and spending's means, and each
    replication's delayed bed-days per 30 days and total cost a year."""

    mix: dict[str, int]
    spend: float
    delayed: list[float] = field(default_factory=list)
    total_cost: list[float] = field(default_factory=list)

    def objective(self, name: str) -> float:
        values = self.delayed if name == "delayed_days" else self.total_cost
        return float(np.mean(values)) if values else math.nan


def _outcome(args: tuple[Params, Costs, tuple[str, ...], int]) -> tuple[float, float]:
    """One replication: delayed bed-days per 30 days, and the total cost a year."""
    params, costs, programmes, k = args
    metrics = simulate(params, k).metrics
    values = dict(zip(metrics["metric"], metrics["value"].astype(float)))
    return (values["delayed_days_per_30d"],
            run_costs(params, costs, values, programmes)["cost.total"] * YEAR)


def evaluate_mixes(params: Params, costs: Costs, programmes: Sequence[str],
                   options: Sequence[Option], mixes: Sequence[Mix], replications: int,
                   pool: Executor | None) -> list[Outcome]:
    """Each mix on replications 0..n-1 (common random numbers), in parallel on ``pool``."""
    tasks, outcomes = [], []
    for mix in mixes:
        bought = apply_mix(params, costs, programmes, options, mix)
        outcomes.append(Outcome(dict(mix), mix_spend(params, costs, programmes, options, mix)))
        tasks += [(*bought, k) for k in range(replications)]
    results = list(pool.map(_outcome, tasks)) if pool is not None else list(map(_outcome, tasks))
    for i, outcome in enumerate(outcomes):
        mine = results[i * replications:(i + 1) * replications]
        outcome.delayed = [r[0] for r in mine]
        outcome.total_cost = [r[1] for r in mine]
    return outcomes


@dataclass
class BudgetResult:
    """What a search found: every mix tried (``trials``), the Pareto front of spending against
    the objective, the best mixes run again on more replications (``best``, ranked), the
    best mix against the whole budget on each single lever (``against_single``), and the
    baseline's outcome on those replications."""

    budget: float
    objective: str
    options: list[Option]
    trials: pd.DataFrame
    front: pd.DataFrame
    best: pd.DataFrame
    against_single: pd.DataFrame
    baseline: Outcome
    best_mix: dict[str, int]
    confirmed: int


def search(params: Params, costs: Costs, programmes: Sequence[str], options: Sequence[Option],
           budget: float, objective: str = "delayed_days", candidates: int = 60,
           replications: int = 5, confirm: int = 20, keep: int = 5, seed: int = 0,
           folder: Path | None = None, workers: int | None = None,
           pool: Executor | None = None,
           progress: Callable[[int, int, str], None] | None = None,
           storage: str = "") -> BudgetResult | None:
    """Find the mix of ``options`` that minimises ``objective`` within ``budget`` pounds a
    year: ``candidates`` mixes on ``replications`` each (a batch of :data:`BATCH` at a time,
    each batch's sampler seeded from ``seed`` and the mixes before it), the ``keep`` best run
    again on ``confirm`` replications and ranked by that, and the best compared with spending
    the budget on each single lever. With ``folder`` the study is kept there (or in
    ``storage``, :data:`sim.running.studies.STORAGE_FORMS`) and a rerun resumes it; several
    processes can share it, and the one that runs the last mixes returns the result (the
    others None). The replications run on ``pool`` (any executor: a Dask cluster's) or else
    on ``workers`` local processes. ``progress(done, total, what)`` is told as each batch
    finishes."""
    from sim.running.runner import replication_pool

    if objective not in OBJECTIVES:
        raise BudgetError(f"experiment.objective={objective!r} is not allowed: one of "
                          + ", ".join(OBJECTIVES))
    if not (budget > 0 and math.isfinite(budget)):
        raise BudgetError(f"experiment.budget={budget!r} is not allowed: pounds a year > 0")
    with replication_pool(pool, workers, BATCH * replications) as pool:
        fingerprint = _fingerprint(params, costs, programmes, options, budget, objective,
                                   replications, seed)
        try:
            study = open_study(folder, STUDY, fingerprint, "a budget search",
                               ("minimize", "minimize"), storage,
                               first=_anchors(options, budget))
        except StudyError as error:
            raise BudgetError(str(error)) from None
        if not _search(study, params, costs, programmes, options, budget, objective,
                       candidates, replications, seed, pool, progress):
            return None
        return _results(study, params, costs, programmes, options, budget, objective,
                        replications, confirm, keep, pool, progress)


def _fingerprint(params: Params, costs: Costs, programmes: Sequence[str],
                 options: Sequence[Option], budget: float, objective: str, replications: int,
                 seed: int) -> str:
    from sim.core.params import Run

    system = asdict(params)
    for key in Run.HOW_MANY:
        system["run"].pop(key)
    setup = {"params": system, "model_code": model_code_digest(), "costs": asdict(costs),
             "programmes": list(programmes), "options": [asdict(o) for o in options],
             "budget": budget, "objective": objective, "replications": replications,
             "seed": seed, "batch": BATCH}
    return hashlib.sha256(json.dumps(setup, default=str).encode()).hexdigest()[:20]


def propose(trial, options: Sequence[Option], budget: float, params: Params, costs: Costs,
            programmes: Sequence[str]) -> dict[str, int] | None:
    """A mix from an Optuna trial: a share of the budget to spend, split among the number
    levers by weights, after the switches it turns on; None if its switches cost more than
    that share."""
    spend = trial.suggest_float("spend", 0.0, 1.0) * budget
    mix: dict[str, int] = {}
    for option in options:
        if option.lever.is_switch:
            mix[option.name] = trial.suggest_int(f"on.{option.name}", 0, 1)
            spend -= mix[option.name] * option.step_cost
    if spend < 0:
        return None
    numbers = [o for o in options if not o.lever.is_switch]
    weights = {o.name: trial.suggest_float(f"weight.{o.name}", 0.0, 1.0) for o in numbers}
    total = sum(weights.values())
    for option in numbers:
        share = weights[option.name] / total if total > 0 else 0.0
        # (a step's cost is a difference of sums: a hair over its exact value must not lose it)
        mix[option.name] = min(option.max_steps, int(spend * share / option.step_cost + 1e-9))
    while mix_spend(params, costs, programmes, options, mix) > budget + 1e-6:
        dearest = max((o for o in numbers if mix[o.name]), key=lambda o: mix[o.name] * o.step_cost)
        mix[dearest.name] -= 1  # a pay rise on added posts costs a little more than apart
    return mix


def _search(study, params: Params, costs: Costs, programmes: Sequence[str],
            options: Sequence[Option], budget: float, objective: str, candidates: int,
            replications: int, seed: int, pool: Executor | None,
            progress: Callable[[int, int, str], None] | None) -> bool:
    """Run the search's mixes, a batch at a time, until ``candidates`` are evaluated; whether
    this process is to write the results (:func:`sim.running.studies.run_trials`)."""
    started = time.monotonic()

    def run_batch(worker: Worker, survey: Survey, size: int) -> int:
        asked, mixes = [], []
        while len(asked) < size:
            trial = worker.claim()
            if trial is None:
                break
            mix = propose(trial, options, budget, params, costs, programmes)
            if mix is None:  # its switches alone cost more than it spends
                worker.tell(trial, None, {"over_budget": True}, evaluated=False)
                continue
            asked.append(trial)
            mixes.append(mix)
        for trial, outcome in zip(asked, evaluate_mixes(params, costs, programmes, options,
                                                        mixes, replications, pool)):
            worker.tell(trial, [outcome.objective(objective), outcome.spend],
                        {"mix": outcome.mix, "spend": outcome.spend,
                         "delayed": outcome.delayed, "total_cost": outcome.total_cost})
        if progress is not None and asked:
            progress(survey.done + len(asked), candidates,
                     f"{survey.done + len(asked)} of {candidates} mixes, "
                     f"{time.monotonic() - started:.0f} s")
        return len(asked)

    return run_trials(study, candidates, seed, BATCH, run_batch, "budget")


def _anchors(options: Sequence[Option], budget: float) -> list[dict[str, float]]:
    """The trials' values of the first mixes: buying nothing, and the whole budget on each
    lever alone (as :func:`propose` reads them), so that the front starts from them."""
    switches = [o for o in options if o.lever.is_switch]
    numbers = [o for o in options if not o.lever.is_switch]

    def values(spend: float, on: str = "", weight: str = "") -> dict[str, float]:
        out: dict[str, float] = {"spend": spend}
        out.update({f"on.{o.name}": int(o.name == on) for o in switches})
        out.update({f"weight.{o.name}": float(o.name == weight) for o in numbers})
        return out

    anchors = [values(0.0)]
    anchors += [values(1.0, weight=o.name) for o in numbers]
    anchors += [values(min(1.0, o.step_cost / budget * (1 + 1e-9)), on=o.name) for o in switches]
    return anchors


def _trials_table(study, options: Sequence[Option], objective: str) -> pd.DataFrame:
    rows = []
    for t in study.get_trials(deepcopy=False):
        if not evaluated(t):
            continue
        mix = t.user_attrs["mix"]
        row = {"trial": t.number, "mix": describe_mix(options, mix), "spend": t.user_attrs["spend"],
               "delayed_days_per_30d": float(np.mean(t.user_attrs["delayed"])),
               "total_cost": float(np.mean(t.user_attrs["total_cost"])),
               "replications": len(t.user_attrs["delayed"])}
        row.update({f"steps.{o.name}": mix.get(o.name, 0) for o in options})
        rows.append(row)
    table = pd.DataFrame(rows)
    key = "delayed_days_per_30d" if objective == "delayed_days" else "total_cost"
    table["objective"] = table[key]
    return table.sort_values(["objective", "trial"], kind="stable").reset_index(drop=True)


def pareto_front(table: pd.DataFrame, x: str = "spend", y: str = "objective") -> pd.DataFrame:
    """The rows no other row beats on both ``x`` and ``y`` (lower is better), by ``x``."""
    ordered = table.sort_values([x, y], kind="stable")
    front, best = [], math.inf
    for i, row in ordered.iterrows():
        if row[y] < best:
            front.append(i)
            best = row[y]
    return ordered.loc[front].reset_index(drop=True)


def single_lever_mixes(options: Sequence[Option], budget: float) -> dict[str, dict[str, int]]:
    """The whole budget on each lever alone (a switch: turned on, if it is affordable)."""
    out = {}
    for option in options:
        steps = 1 if option.lever.is_switch else min(option.max_steps,
                                                     int(budget / option.step_cost + 1e-9))
        out[option.name] = {option.name: steps}
    return out


def _results(study, params: Params, costs: Costs, programmes: Sequence[str],
             options: Sequence[Option], budget: float, objective: str, replications: int,
             confirm: int, keep: int, pool: Executor | None,
             progress: Callable[[int, int, str], None] | None) -> BudgetResult:
    """The trials, the front, the best mixes confirmed, and the best against single levers."""
    trials = _trials_table(study, options, objective)
    front = pareto_front(trials)
    top = trials.head(keep)
    mixes = [study.trials[int(n)].user_attrs["mix"] for n in top["trial"]]
    singles = single_lever_mixes(options, budget)
    n = max(confirm, replications)
    if progress is not None:
        progress(len(trials), len(trials), f"the {len(mixes)} best mixes, the baseline and "
                 f"{len(singles)} single levers again on {n} replications")
    runs = evaluate_mixes(params, costs, programmes, options,
                          [{}, *mixes, *singles.values()], n, pool)
    baseline, confirmed, single_runs = runs[0], runs[1:1 + len(mixes)], runs[1 + len(mixes):]
    best = _confirmed_table(baseline, confirmed, options, objective)
    winner = confirmed[int(best["candidate"].iloc[0])]
    against = _against_single(winner, dict(zip(singles, single_runs)), options, objective)
    return BudgetResult(budget, objective, list(options), trials, front, best, against,
                        baseline, winner.mix, n)


def _value(outcome: Outcome, objective: str) -> list[float]:
    return outcome.delayed if objective == "delayed_days" else outcome.total_cost


def _confirmed_table(baseline: Outcome, confirmed: Sequence[Outcome],
                     options: Sequence[Option], objective: str) -> pd.DataFrame:
    rows = []
    for i, outcome in enumerate(confirmed):
        delayed, cost = estimate(outcome.delayed), estimate(outcome.total_cost)
        change = estimate(np.subtract(outcome.delayed, baseline.delayed))
        cost_change = estimate(np.subtract(outcome.total_cost, baseline.total_cost))
        rows.append({"candidate": i, "mix": describe_mix(options, outcome.mix),
                     "spend": outcome.spend,
                     "delayed_days_per_30d": delayed.mean, "delayed_low": delayed.low,
                     "delayed_high": delayed.high, "delayed_change": change.mean,
                     "delayed_change_low": change.low, "delayed_change_high": change.high,
                     "total_cost": cost.mean, "total_cost_low": cost.low,
                     "total_cost_high": cost.high, "net_cost": cost_change.mean,
                     "net_cost_low": cost_change.low, "net_cost_high": cost_change.high,
                     "objective": float(np.mean(_value(outcome, objective))),
                     "replications": delayed.n})
    table = pd.DataFrame(rows).sort_values(["objective", "candidate"], kind="stable")
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.reset_index(drop=True)


def _against_single(best: Outcome, singles: Mapping[str, Outcome], options: Sequence[Option],
                    objective: str) -> pd.DataFrame:
    """The best mix minus the whole budget on each lever alone, paired by replication."""
    rows = []
    by_name = {o.name: o for o in options}
    for name, outcome in singles.items():
        diff = estimate(np.subtract(_value(best, objective), _value(outcome, objective)))
        rows.append({"lever": name, "single": describe_mix([by_name[name]], outcome.mix),
                     "single_spend": outcome.spend,
                     "single_objective": float(np.mean(_value(outcome, objective))),
                     "best_objective": float(np.mean(_value(best, objective))),
                     "difference": diff.mean, "difference_low": diff.low,
                     "difference_high": diff.high, "replications": diff.n,
                     "better": bool(diff.high < 0)})
    return pd.DataFrame(rows)


def on_fitted_sets(params_sets: Mapping[int, Params], costs: Costs, programmes: Sequence[str],
                   options: Sequence[Option], best_mix: Mix, budget: float, objective: str,
                   replications: int, pool: Executor | None) -> pd.DataFrame:
    """The best mix against each single lever on each fitted parameter set: does it still
    do best when the fit changes? Each set's mixes on common random numbers; changes and
    differences in the objective's unit."""
    rows = []
    singles = single_lever_mixes(options, budget)
    for rank, system in params_sets.items():
        runs = evaluate_mixes(system, costs, programmes, options,
                              [{}, dict(best_mix), *singles.values()], replications, pool)
        base, best, rest = runs[0], runs[1], runs[2:]
        change = estimate(np.subtract(_value(best, objective), _value(base, objective)))
        row = {"set": rank, "best_mix_change": change.mean, "best_mix_low": change.low,
               "best_mix_high": change.high}
        beaten = 0
        for name, outcome in zip(singles, rest):
            diff = estimate(np.subtract(_value(best, objective), _value(outcome, objective)))
            row[f"minus_{name}"] = diff.mean
            beaten += diff.high < 0
        row["singles_beaten"] = beaten
        row["singles"] = len(singles)
        rows.append(row)
    return pd.DataFrame(rows)


def print_progress(done: int, total: int, what: str) -> None:
    """Progress on the console (the command line's ``progress``)."""
    print(f"budget: {what}", file=sys.stderr, flush=True)
