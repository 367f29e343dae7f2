"""Experiments: one way to define them and one way to run them.

Every experiment is a named config, ``configs/experiment/NAME.yaml``, holding overrides of the
baseline and an ``experiment:`` block (:class:`sim.config.schema.Experiment`), and is run by

    .venv/bin/python experiments/run.py NAME [overrides]

which writes everything to ``results/NAME/``. There are two kinds:

* a **sweep** of the system (scenario comparison, response curves, weekend rules, warm-up,
  the calibration check): a Hydra multirun over the experiment's ``hydra.sweeper.params``, its
  jobs in parallel, each finished replication kept; when it ends the sweep is collected into
  one tidy table and the experiment's analysis (:data:`ANALYSES`) writes its table and chart;
* a **study** that runs its own cases (:data:`STUDIES`): validation against queueing theory
  and a peer simulator; the calibration check (the configured system against a targets file,
  ``configs/targets/``); and the calibration itself (Optuna fits the targets file's parameters,
  resumably, and saves the best sets as scenarios), and the scenario comparison rerun on each
  of those sets, to say which conclusions hold on all of them.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from concurrent.futures import Executor
from contextlib import contextmanager, nullcontext
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterator, Sequence

import pandas as pd

from sim.config.schema import (CONFIG_DIR, AppConfig, programmes_on, scenario_titles,
                               switches_of)
from sim.core.costs import Costs, run_costs
from sim.core.levers import LEVERS, get_setting, lever
from sim.core.catalogue import catalogue, describe
from sim.core.model import simulate
from sim.core.params import Params, Run, override
from sim.reporting import analysis, charts
from sim.reporting.money import (budget_table_for_people, cost_comparison, cost_curve_table,
                                 cost_table_for_people, pounds, single_table_for_people)
from sim.running.files import write_csv
from sim.running.tables import write_table

RESULTS = Path("results")
"""Where every experiment writes: ``results/NAME/`` (relative to the working directory)."""


def experiment_names() -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


# ----------------------------------------------------------------------------- analyses of sweeps
def _labelled(table: pd.DataFrame, config: AppConfig) -> pd.DataFrame:
    """A table for people: each metric's plain-English label and unit beside its code name
    (from the catalogue of the experiment's system)."""
    entries = [describe(m, config.params) for m in table["metric"]]
    labelled = table.copy()
    labelled.insert(1, "measure", [e.label for e in entries])
    if "unit" not in labelled.columns:
        labelled.insert(2, "unit", [e.unit for e in entries])
    return labelled


def _scenario_comparison(tidy: pd.DataFrame, folder: Path, config: AppConfig) -> None:
    baseline = config.experiment.baseline
    table = analysis.scenario_comparison(tidy, baseline, entries=catalogue(config.params))
    n = int(table["replications"].min())
    write_table(_labelled(table, config), folder, "scenario_comparison",
                f"# Scenario comparison\n\nMean and 95% CI over {n} replications per scenario; "
                f"difference = scenario - {baseline}, paired on common random numbers, with its "
                "95% CI. A difference whose CI excludes 0 is a real effect of the scenario.")
    charts.scenario_comparison(table, folder / "scenario_comparison.png", baseline,
                               labels=scenario_titles())
    _cost_comparison(tidy, folder, baseline)


def _cost_comparison(tidy: pd.DataFrame, folder: Path, baseline: str) -> None:
    """Each scenario's net cost a year and cost per delayed bed-day (and death during a delay)
    avoided against the baseline, when the sweep's runs were priced."""
    if "cost.total" not in set(tidy["metric"]):
        return
    table = cost_comparison(tidy, baseline)
    n = int(table["replications"].min())
    write_table(cost_table_for_people(table, scenario_titles()), folder, "cost_comparison",
                f"# What each scenario costs against {baseline}\n\nPounds a year, paired on "
                f"common random numbers over {n} replications: the net cost (the change in the "
                "total cost: spending, less what fewer delayed bed-days save) with its 95% CI; "
                "the cost per delayed bed-day avoided (the change in spending over the bed-days "
                "avoided) and per death during a delay avoided (harm of waiting on), each with "
                "Fieller's 95% interval, not defined where the simulation cannot tell that "
                "the scenario avoids any.", data=table)


def _harm_comparison(tidy: pd.DataFrame, folder: Path, config: AppConfig) -> None:
    """The scenario comparison with the harm of waiting on, with every harm metric, and the
    circle of harm."""
    baseline = config.experiment.baseline
    table = analysis.scenario_comparison(tidy, baseline, analysis.HARM_METRICS,
                                         entries=catalogue(config.params))
    n = int(table["replications"].min())
    write_table(_labelled(table, config), folder, "harm_comparison",
                f"# How much harm each lever avoids\n\nWith the harm of waiting switched on in "
                f"every scenario (docs/harm.md). Mean and 95% CI over {n} replications per "
                f"scenario; difference = scenario - {baseline}, paired on common random numbers, "
                "with its 95% CI.")
    titles = scenario_titles()
    charts.scenario_comparison(table, folder / "harm_comparison.png", baseline, labels=titles)
    charts.harm_circle(table, folder / "harm_circle.png", labels=titles)
    _cost_comparison(tidy, folder, baseline)


def _response_curve(tidy: pd.DataFrame, folder: Path, config: AppConfig) -> None:
    parameter = config.experiment.parameter
    table = analysis.response_curve(tidy, parameter, entries=catalogue(config.params))
    n = int(table["replications"].min())
    write_table(_labelled(table, config), folder, "response_curve",
                f"# Response to {parameter}\n\nMean and 95% CI over {n} replications per value.")
    charts.response_curve(table, parameter, folder / "response_curve.png")


def _weekend_rules(tidy: pd.DataFrame, folder: Path, config: AppConfig) -> None:
    table = analysis.weekend_rules(tidy, catalogue(config.params))
    n = int(table["replications"].min())
    write_table(table, folder, "weekend_rules",
                "# Delay by the day patients became medically fit\n\nMean days from medically "
                f"fit to leaving the acute bed, 95% CI over {n} replications.")
    charts.weekend_rules(table, folder / "weekend_rules.png", labels=scenario_titles())


def _warmup(tidy: pd.DataFrame, folder: Path, config: AppConfig) -> None:
    """The daily counts of the sweep's one job, from an empty hospital (``run.warmup_days=0``)."""
    jobs = sorted(set(tidy["job"]))
    if len(jobs) != 1:
        raise analysis.AnalysisError(f"analysis=warmup needs one job; this sweep has {len(jobs)}")
    daily = pd.read_csv(folder / jobs[0] / "daily.csv")
    series, suggested = analysis.warmup(daily, catalogue(config.params))
    configured = Run().warmup_days  # the default warm-up, to judge it (this run has none)
    n = int(series["replications"].max())
    enough = "long enough" if configured >= suggested else "too short"
    write_table(series, folder, "warmup",
                f"# Warm-up analysis: {config.name}\n\n{n} replications of {config.run.days:g} "
                f"days from an empty hospital. MSER-5 suggests a warm-up of {suggested} days; "
                f"the configured warm-up is {configured:g} days ({enough}).")
    charts.warmup(series, suggested, configured, folder / "warmup.png")
    print(f"MSER-5 warm-up: {suggested} days; configured: {configured:g} days ({enough})")


Analysis = Callable[[pd.DataFrame, Path, AppConfig], None]
ANALYSES: dict[str, Analysis] = {
    "scenario_comparison": _scenario_comparison,
    "harm_comparison": _harm_comparison,
    "response_curve": _response_curve,
    "weekend_rules": _weekend_rules,
    "warmup": _warmup,
}
"""Analyses of a collected sweep, by the name an experiment config gives."""


def analyse(config: AppConfig, tidy: pd.DataFrame, folder: Path) -> None:
    """Run the experiment's analysis on a collected sweep; raises AnalysisError if it does not
    fit the sweep."""
    name = config.experiment.analysis
    if name not in ANALYSES:
        raise analysis.AnalysisError(f"experiment.analysis={name!r} is not allowed for a sweep: "
                                     "one of " + ", ".join(ANALYSES))
    ANALYSES[name](tidy, Path(folder), config)


# ----------------------------------------------------------------------------- studies
def _validation(config: AppConfig, folder: Path) -> int:
    """The model against queueing theory, Little's law and ciw; exit status 1 if a case fails."""
    from concurrent.futures import ProcessPoolExecutor

    from sim.checks.validation import run_all
    from sim.running.runner import default_workers

    replications = config.run.replications
    if replications < 2:
        print(f"experiments/run.py: error: run.replications={replications} is not allowed: an "
              "integer >= 2 (a confidence interval needs two)", file=sys.stderr)
        return 2
    with ProcessPoolExecutor(default_workers(replications)) as pool:
        table = run_all(replications, workers=pool.map)
    passed = int(table["pass"].sum())
    write_table(table, folder, "validation",
                f"# Validation\n\n{passed} of {len(table)} cases pass: the reference value lies "
                "inside the simulation's confidence interval over replications (for ciw, the "
                "interval of the difference of the two simulators' means; for Little's law, of "
                "the paired difference). Each interval is at the Bonferroni level "
                f"{table['ci_level'].iloc[0]:.4f}, so that all {len(table)} hold together with "
                "99% confidence.")
    charts.validation(table, folder / "validation.png")
    print(table.to_string(index=False))
    print(f"\n{passed} of {len(table)} cases pass. Report: {folder}/validation.md, validation.png")
    return 0 if passed == len(table) else 1


def _targets(config: AppConfig) -> Path:
    return CONFIG_DIR / "targets" / f"{config.experiment.targets}.yaml"


def _active_targets(config: AppConfig) -> list:
    """The targets the model can express; one line says how many others the file lists."""
    from sim.running.calibration import load_targets

    targets = load_targets(_targets(config), config.params, include_skipped=True, notices=False)
    active = [t for t in targets if t.active]
    if len(active) < len(targets):
        print(f"{len(targets) - len(active)} of the {len(targets)} targets in "
              f"{_targets(config).name} have no model metric yet (metric: null; each says why)")
    return active


def _calibration_check(config: AppConfig, folder: Path) -> int:
    """The configured system's outputs against a targets file: the fit table and its chart."""
    from sim.running.calibration import evaluate_targets, fit_table

    params = config.params
    targets = _active_targets(config)
    values = evaluate_targets(params, targets, config.run.replications)
    table = fit_table(targets, values, {t.name: t.unit(params) for t in targets})
    return _write_fit(table, folder, f"Calibration check: {config.name} against "
                      f"{_targets(config).name}", config.run.replications)


def _calibration(config: AppConfig, folder: Path) -> int:
    """Fit the targets file's parameters to its targets (Optuna; resumable in the folder), and
    save the best sets as scenarios."""
    from sim.running.calibration import calibrate, load_parameters, write_results

    params, experiment, path = config.params, config.experiment, _targets(config)
    targets = _active_targets(config)
    parameters = load_parameters(path, params)
    with _engine(config) as pool, _ended_by_sigterm():
        result = calibrate(params, targets, parameters, trials=experiment.trials,
                           replications=config.run.replications, seed=config.run.seed,
                           store_folder=folder, keep=experiment.keep,
                           time_limit=experiment.time_limit_minutes * 60,
                           confirm=experiment.confirm_replications, progress=True,
                           from_configured=True, storage=experiment.storage, pool=pool)
    if result is None:
        return _left_to_others("calibration")
    write_results(result, folder, path.name)
    return _write_fit(result.fit, folder, f"Calibration fit to {path.name}: best of "
                      f"{len(result.trials)} trials (loss {result.best_loss:.4g})",
                      result.fit_replications, write=False)


def _engine(config: AppConfig) -> ContextManager[Executor | None]:
    """Where a study's replications run: the Dask cluster at ``experiment.dask``, or (None)
    local processes."""
    from sim.running.studies import dask_pool

    return dask_pool(config.experiment.dask) if config.experiment.dask else nullcontext()


@contextmanager
def _ended_by_sigterm() -> Iterator[None]:
    """SIGTERM (SLURM's at a time limit, ``scancel``) stops a study: the trials this worker
    runs are queued to run again at once, not when their lease runs out, and the command ends
    with status 143 (:func:`sim.running.studies.stop`)."""
    from sim.running.studies import Stopped, stop

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, lambda number, frame: stop())
    try:
        yield
    except Stopped:
        print("stopped by SIGTERM: this worker's trials are queued to run again",
              file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, before)


def _left_to_others(what: str) -> int:
    """A worker of a shared study that ran its trials while another runs the last ones."""
    print(f"{what}: this worker's trials are done; the worker that runs the last trials writes "
          "the tables (or run again once all are done)", file=sys.stderr)
    return 0


def _write_fit(table: pd.DataFrame, folder: Path, title: str, replications: int,
               write: bool = True) -> int:
    """The fit table (unless written already), its chart, and the table on the console."""
    within = int(table["within_tolerance"].sum())
    if write:
        write_table(table, folder, "fit",
                    f"# {title}\n\nModel mean and 95% CI over {replications} replications; "
                    f"{within} of {len(table)} targets within tolerance (absolute, in the "
                    "target's unit).")
    charts.calibration_fit(table, folder / "fit.png", replications, title)
    print(table.drop(columns=["source"]).to_string(index=False))
    print(f"\n{within} of {len(table)} targets within tolerance. Report: {folder}/fit.md, fit.png")
    return 0


def _flat(node: object, prefix: str = "") -> dict[str, object]:
    """A dataclass tree as dotted leaves (tables by key; lists and scalars are leaves)."""
    if is_dataclass(node):
        items = [(f.name, getattr(node, f.name)) for f in fields(node)]
    elif isinstance(node, dict):
        items = list(node.items())
    else:
        return {prefix[:-1]: node}
    out: dict[str, object] = {}
    for key, value in items:
        out.update(_flat(value, f"{prefix}{key}."))
    return out


def scenario_changes(baseline: Params, scenario: Params) -> dict[str, object]:
    """The settings a scenario changes from the baseline, by dotted name (the run settings
    and the scenario's name aside)."""
    before, after = _flat(baseline), _flat(scenario)
    return {key: value for key, value in after.items()
            if not key.startswith("run.") and before.get(key, object()) != value}


def on_fitted_set(baseline: Params, fitted: dict[str, float], changes: dict[str, object]
                  ) -> Params:
    """A scenario's changes applied to the baseline refitted with ``fitted`` values: a change
    to a fitted count is applied as the same step from the fitted value (25 more carers than
    the set has); any other change as it is (seven-day working sets the weekend pace to the
    weekday pace, 1, whatever the set's pace)."""
    before = _flat(baseline)
    updates: dict[str, object] = dict(fitted)
    for key, value in changes.items():
        if key in fitted and isinstance(value, int) and not isinstance(value, bool):
            step = value - before[key]  # type: ignore[operator]
            updates[key] = type(value)(fitted[key] + step)
        else:
            updates[key] = value
    return override(baseline, updates)


def _delayed_days(args: tuple[Params, int]) -> float:
    params, replication = args
    return simulate(params, replication).value("delayed_days_per_30d")


def _fitted_sets(config: AppConfig, folder: Path) -> int:
    """Rerun the scenario comparison on each of the calibration's best parameter sets
    (results/calibration/best_sets.csv), and say which conclusions hold on all of them."""
    from concurrent.futures import ProcessPoolExecutor

    from sim.running.stats import estimate
    from sim.running.calibration import NOT_SETTINGS
    from sim.running.runner import default_workers

    source = RESULTS / "calibration" / "best_sets.csv"
    if not source.is_file():
        print(f"experiments/run.py: error: {source} is missing: run "
              "`experiments/run.py calibration` first", file=sys.stderr)
        return 2
    sets = pd.read_csv(source)
    names = [c for c in sets.columns if c not in NOT_SETTINGS]
    baseline, n = config.params, config.run.replications
    scenarios = {name: scenario_changes(baseline, _scenario(name))
                 for name in config.experiment.scenarios}
    runs = [(int(row["rank"]), scenario, on_fitted_set(
        baseline, {k: row[k].item() if hasattr(row[k], "item") else row[k] for k in names},
        changes)) for _, row in sets.iterrows()
        for scenario, changes in {"baseline": {}, **scenarios}.items()]
    tasks = [(params, k) for _, _, params in runs for k in range(n)]
    print(f"{len(sets)} fitted sets x {len(scenarios)} scenarios and the baseline x {n} "
          f"replications: {len(tasks)} runs", flush=True)
    with ProcessPoolExecutor(default_workers(len(tasks))) as pool:
        values = list(pool.map(_delayed_days, tasks, chunksize=1))
    by_run = {(rank, scenario): values[i * n:(i + 1) * n]
              for i, (rank, scenario, _) in enumerate(runs)}
    rows = []
    for rank in sets["rank"].astype(int):
        base = by_run[(rank, "baseline")]
        for scenario in scenarios:
            change = estimate([a - b for a, b in zip(by_run[(rank, scenario)], base)])
            rows.append({"set": rank, "scenario": scenario, "baseline": float(pd.Series(base)
                                                                              .mean()),
                         "change": change.mean, "ci_low": change.low, "ci_high": change.high,
                         "replications": n})
    table = pd.DataFrame(rows)
    table["effect"] = ["fewer" if h < 0 else "more" if lo > 0 else "no detectable change"
                       for lo, h in zip(table["ci_low"], table["ci_high"])]
    table["rank_in_set"] = table.groupby("set")["change"].rank(method="min").astype(int)
    conclusions = _conclusions(table, len(sets))
    write_table(table, folder, "fitted_sets",
                f"# The scenario comparison on each of the {len(sets)} best fitted sets\n\n"
                f"Change in delayed-discharge bed-days per 30 days from each set's own baseline, "
                f"paired on common random numbers, mean and 95% CI over {n} replications; "
                "`rank_in_set` 1 is the largest saving in that set.\n\n"
                + "\n".join(f"- {line}" for line in conclusions))
    charts.fitted_sets(table, folder / "fitted_sets.png", labels=scenario_titles())
    print("\n".join(conclusions))
    print(f"Report: {folder}/fitted_sets.md, fitted_sets.png")
    return 0


def _scenario(name: str) -> Params:
    from sim.config.schema import load_config
    return load_config([f"scenario={name}"]).params


def _conclusions(table: pd.DataFrame, sets: int) -> list[str]:
    """In plain words: for each scenario, in how many sets it saves (or adds) delayed days with
    an interval that excludes 0, and where it ranks."""
    lines = []
    order = table.groupby("scenario")["change"].mean().sort_values().index
    for scenario in order:
        mine = table[table["scenario"] == scenario]
        fewer, more = int((mine["effect"] == "fewer").sum()), int((mine["effect"] == "more").sum())
        ranks = sorted(set(mine["rank_in_set"]))
        where = (f"rank {ranks[0]} in every set" if len(ranks) == 1
                 else f"ranks {ranks[0]}-{ranks[-1]}")
        verdict = (f"saves delayed days in {fewer} of {sets} sets" if fewer
                   else f"adds delayed days in {more} of {sets} sets" if more
                   else f"no detectable change in any of {sets} sets")
        lines.append(f"{scenario}: {verdict} ({mine['change'].min():+,.0f} to "
                     f"{mine['change'].max():+,.0f} bed-days per 30 days; {where})")
    return lines


CURVE_STEPS = (0.8, 0.9, 1.0, 1.1, 1.2, 1.35)
"""The capacities of each lever a cost curve runs, as multiples of the baseline's."""


def _priced_run(args: tuple[Params, int, Costs, tuple[str, ...]]) -> dict[str, float]:
    """One replication's metrics with its costs, by name."""
    params, replication, costs, programmes = args
    metrics = simulate(params, replication).metrics
    values = dict(zip(metrics["metric"], metrics["value"].astype(float)))
    return {**values, **run_costs(params, costs, values, programmes)}


def _cost_curve(config: AppConfig, folder: Path) -> int:
    """Total system cost against the capacity of each lever the budget can buy, from 0.8 to
    1.35 times the baseline's: where the total is lowest, with its band."""
    from concurrent.futures import ProcessPoolExecutor

    from sim.running.runner import default_workers

    params, n = config.params, config.run.replications
    programmes = programmes_on(params)
    cases, baseline_values = [], {}
    for item in (x for x in LEVERS if x.budget_step and x.setting and not x.pay):
        base = get_setting(params, item.setting)
        baseline_values[item.name] = base
        for step in CURVE_STEPS:
            value = type(base)(round(base * step))
            cases.append((item, value, override(params, {item.setting: value})))
    tasks = [(p, k, config.costs, programmes) for _, _, p in cases for k in range(n)]
    print(f"{len(cases)} capacities x {n} replications: {len(tasks)} runs", flush=True)
    with ProcessPoolExecutor(default_workers(len(tasks))) as pool:
        values = list(pool.map(_priced_run, tasks, chunksize=1))
    tidy = pd.DataFrame([{"lever": item.name, "label": item.label, "capacity": value,
                          "replication": k, "metric": metric, "value": v}
                         for i, (item, value, _) in enumerate(cases) for k in range(n)
                         for metric, v in values[i * n + k].items()
                         if metric in ("cost.total", "cost.delayed_bed_days",
                                       "delayed_days_per_30d")])
    table = cost_curve_table(tidy, baseline_values)
    year = config.costs.price_year
    write_table(table, folder, "cost_curve",
                f"# Total system cost against each lever's capacity ({year} prices)\n\n"
                f"Pounds a year, mean and 95% CI over {n} replications at each capacity, on "
                "common random numbers; total = community capacity provided + the discharge "
                "team + programmes + delayed bed-days. `lowest`: where the lever's total is "
                "lowest of the capacities run.")
    charts.cost_curve(table, folder / "cost_curve.png", year)
    for name, group in table.groupby("lever", sort=False):
        best = group.loc[group["total"].idxmin()]
        print(f"{name}: total lowest at {best['capacity']:,.0f} "
              f"({pounds(best['total'])} a year; baseline {baseline_values[name]:,.0f})")
    print(f"Report: {folder}/cost_curve.md, cost_curve.png")
    return 0


def _budget(config: AppConfig, folder: Path) -> int:
    """Find the mix of levers that a budget a year buys to minimise the objective, and write
    what it found (see configs/experiment/budget.yaml)."""
    from sim.running import budget as search

    params, experiment, costs = config.params, config.experiment, config.costs
    programmes = programmes_on(params)
    levers = [_lever_named(name) for name in experiment.levers]
    options = search.make_options(params, costs, programmes, levers, experiment.budget,
                                  switches_of(levers))
    with _engine(config) as pool, _ended_by_sigterm():
        result = search.search(params, costs, programmes, options, experiment.budget,
                               experiment.objective, experiment.candidates,
                               config.run.replications, experiment.confirm_replications,
                               experiment.keep, config.run.seed, folder, pool=pool,
                               progress=search.print_progress, storage=experiment.storage)
        if result is None:
            return _left_to_others("budget")
        _write_budget(result, folder, costs.price_year)
        fitted = RESULTS / "calibration" / "best_sets.csv"
        if fitted.is_file():
            _budget_on_fitted_sets(result, params, costs, programmes, fitted, folder, pool)
    print(f"Best mix for {pounds(experiment.budget)} a year: "
          f"{search.describe_mix(options, result.best_mix)}. Report: {folder}/best_mixes.md, "
          f"against_single.md, budget.png")
    return 0


def _lever_named(name: str):
    from sim.config.schema import ConfigError
    try:
        return lever(name)
    except KeyError as error:
        raise ConfigError(f"experiment.levers={name!r} is not allowed: {error.args[0]}") from None


def _write_budget(result, folder: Path, price_year: str) -> None:
    """The best mixes, the best against single levers, every mix tried and the front."""
    unit = "delayed bed-days per 30 days" if result.objective == "delayed_days" else \
        "total cost, £ a year"
    n = result.confirmed
    write_table(budget_table_for_people(result.best), folder, "best_mixes",
                f"# The best mixes for {pounds(result.budget)} a year ({price_year} prices)\n\n"
                f"Ranked by {unit} over {n} replications on common random numbers (each mix, "
                "and the baseline, on the same ones); changes from the baseline with their 95% "
                "CI; spend: what the mix costs a year.", data=result.best)
    write_table(single_table_for_people(result.against_single, result.objective), folder,
                "against_single",
                f"# The best mix against the whole budget on one lever\n\nThe best mix minus "
                f"each single lever's allocation, in {unit}, paired over {n} replications, with "
                "its 95% CI (negative: the mix does better).", data=result.against_single)
    write_csv(result.trials, folder / "trials.csv")
    write_csv(result.front, folder / "front.csv")
    charts.budget(result.trials, result.front, result.best, result.against_single,
                  result.baseline, result.objective, result.budget, folder / "budget.png",
                  price_year)


def _budget_on_fitted_sets(result, params: Params, costs: Costs, programmes: tuple[str, ...],
                           source: Path, folder: Path, pool: Executor | None) -> None:
    """Does the best mix still beat every single lever on each of the calibration's best
    fitted sets?"""
    from sim.running import budget as search
    from sim.running.calibration import NOT_SETTINGS
    from sim.running.runner import replication_pool

    sets = pd.read_csv(source)
    names = [c for c in sets.columns if c not in NOT_SETTINGS]
    systems = {int(row["rank"]): override(params, {k: row[k].item() if hasattr(row[k], "item")
                                                   else row[k] for k in names})
               for _, row in sets.iterrows()}
    with replication_pool(pool, None, len(systems)) as pool:
        table = search.on_fitted_sets(systems, costs, programmes, result.options,
                                      result.best_mix, result.budget, result.objective,
                                      result.confirmed, pool)
    held = int((table["singles_beaten"] == table["singles"]).sum())
    write_table(table, folder, "fitted_sets",
                f"# The best mix on each of the {len(table)} best fitted sets\n\nThe best mix's "
                "change from each set's own baseline, and the best mix minus each single lever "
                f"(objective units, paired over {result.confirmed} replications). It beats every "
                f"single lever, with a 95% interval below zero, in {held} of {len(table)} sets.")
    print(f"The best mix beats every single lever in {held} of {len(table)} fitted sets")


MECHANISMS = {
    "as configured": {},
    "care homes as ready at any occupancy": {"services.care_home.market.choosiness": 0.0},
    "homecare providers as ready at any occupancy": {"services.homecare.market.choosiness": 0.0},
    "both as ready at any occupancy": {"services.care_home.market.choosiness": 0.0,
                                       "services.homecare.market.choosiness": 0.0},
    "homes prefer self-funders (x1.5; half the community's referrals pay their own)": {
        "services.care_home.market.private_acceptance": 1.5,
        "services.care_home.market.community_private_share": 0.5},
}
"""The mechanisms of the response to capacity, switched off (or on) one at a time."""


def _response_mechanisms(config: AppConfig, folder: Path) -> int:
    """Which mechanism gives how much of the response to capacity: the lever-effect targets
    of the targets file measured with each mechanism off (or on), on common random numbers."""
    from sim.running.calibration import evaluate_targets
    from sim.running.stats import estimate

    targets = [t for t in _active_targets(config) if t.change]
    rows = []
    for label, settings in MECHANISMS.items():
        values = evaluate_targets(override(config.params, settings), targets,
                                  config.run.replications)
        for target in targets:
            e = estimate(values[target.name])
            rows.append({"mechanisms": label, "target": target.name, "value": target.value,
                         "tolerance": target.tolerance, "model_mean": e.mean, "ci_low": e.low,
                         "ci_high": e.high, "replications": e.n,
                         "within_tolerance": abs(e.mean - target.value) <= target.tolerance})
    table = pd.DataFrame(rows)
    write_table(table, folder, "mechanisms",
                f"# The response to capacity, mechanism by mechanism\n\nEach lever-effect "
                f"target of {_targets(config).name} (a relative change of social-care delayed "
                f"bed-days) with each mechanism switched off, or on, from {config.name}: mean "
                f"and 95% CI over {config.run.replications} replications, each on common "
                "random numbers with its own changed system.")
    print(table.drop(columns=["tolerance"]).to_string(index=False))
    return 0


Study = Callable[[AppConfig, Path], int]
STUDIES: dict[str, Study] = {"validation": _validation, "calibration": _calibration,
                             "calibration_check": _calibration_check,
                             "fitted_sets": _fitted_sets, "cost_curve": _cost_curve,
                             "budget": _budget, "response_mechanisms": _response_mechanisms}
"""Experiments that run their own cases rather than a sweep of the configured system; each
returns the exit status."""


# ----------------------------------------------------------------------------- the entry point
def main(argv: Sequence[str] | None = None) -> None:
    """``experiments/run.py NAME [overrides]``: run the named experiment."""
    from sim.config.cli import USER_ERRORS, config_or_exit, one_line
    from sim.config.cli import main as discharge_sim

    argv = list(sys.argv[1:] if argv is None else argv)
    names = experiment_names()
    if not argv or argv[0] not in names:
        given = argv[0] if argv else "(none)"
        print(f"experiments/run.py: error: experiment {given!r} is not allowed: one of "
              + ", ".join(names), file=sys.stderr)
        sys.exit(2)
    name, overrides = argv[0], argv[1:]
    config = config_or_exit([f"+experiment={name}", *overrides], "experiments/run.py")
    if config.experiment.analysis in STUDIES:
        folder = RESULTS / config.experiment.name
        try:
            status = STUDIES[config.experiment.analysis](config, folder)
        except USER_ERRORS as error:
            print(f"experiments/run.py: error: {one_line(error)}", file=sys.stderr)
            status = 2
        sys.exit(status)
    if config.experiment.analysis not in ANALYSES:
        print(f"experiments/run.py: error: experiment.analysis={config.experiment.analysis!r} "
              "is not allowed: one of " + ", ".join([*ANALYSES, *STUDIES]), file=sys.stderr)
        sys.exit(2)
    sys.argv = [sys.argv[0], "-m", f"+experiment={name}", *overrides]
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    discharge_sim()
