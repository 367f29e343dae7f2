"""What-ifs for workshops, without any user interface: the levers people pull, composing a
what-if's config from them, running it on common random numbers, and comparing it with the
baseline. The Streamlit app (:mod:`sim.app.workshop`), the HTML report command
(:mod:`sim.app.report_command`) and the notebooks use these functions.

A what-if is composed exactly as on the command line (Hydra's Compose API, ``load_config``),
so bad input is refused with the same one-line message. Replication k of every scenario runs on
the random streams of replication k (common random numbers), so the change from the baseline is
paired replication by replication. A replication's patient log is reduced to its patient-flow
counts in the worker process, so that only small tables travel back and are kept.
"""

from __future__ import annotations

import math
import multiprocessing
import sys
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from sim.config.schema import AppConfig, load_config, programmes_on, scenario_text
from sim.core.catalogue import catalogue
from sim.core.costs import Costs, with_costs
from sim.core.levers import LEVERS, Lever, get_setting
from sim.core.model import simulate
from sim.core.params import Params
from sim.reporting.analysis import KEY_METRICS, scenario_comparison
from sim.reporting.report import pathway_title
from sim.running.stats import summarise_metrics
from sim.running.runner import check_before_run
from sim.running.workers import pool_arguments

WORKERS = 2
"""Processes a what-if runs its replications on (the workshop machines have 2 cores)."""

HEADLINE = ("delayed_days_per_30d", "fit_in_hospital_midnight", "delay_mean.all",
            "acute_occupancy")
"""The numbers shown first, against the baseline."""

METRICS = tuple(dict.fromkeys(KEY_METRICS + ("delay_mean.p2", "step_down.utilisation",
                                              "care_home.utilisation", "diverted")))
"""The metrics of a comparison table, in the order shown."""


class InputError(ValueError):
    """Input that cannot be run; the message is the one line the command line prints."""


# ----------------------------------------------------------------------------- levers
def levers(config: AppConfig | Params) -> tuple[Lever, ...]:
    """The number levers that act in ``config``: their setting exists and what they need is
    on."""
    return tuple(lever for lever in LEVERS
                 if not lever.is_switch and not lever.pay
                 and _setting_or_missing(config, lever.setting) is not _MISSING
                 and (not lever.needs or _setting_or_missing(config, lever.needs) is True))


@dataclass(frozen=True)
class Switch:
    """A switch lever as the app shows it: the scenario it applies, its title and what it does
    (the scenario file's own ``title`` and ``about``)."""

    name: str
    scenario: str
    title: str
    about: str


def switches() -> tuple[Switch, ...]:
    """The switch levers, each with its scenario's title and description."""
    return tuple(Switch(lever.name, lever.scenario, *scenario_text(lever.scenario))
                 for lever in LEVERS if lever.is_switch)


_MISSING = object()


def _setting_or_missing(config: Any, key: str) -> Any:
    try:
        return get_setting(config, key)
    except (AttributeError, KeyError, TypeError):
        return _MISSING


def _changed(value: Any, base: Any) -> bool:
    """Whether a lever moved (a per cent shown and read back may differ in its last bit)."""
    if isinstance(value, float) or isinstance(base, float):
        return not math.isclose(value, base, rel_tol=1e-12, abs_tol=1e-12)
    return value != base


def lever_defaults(config: AppConfig | Params) -> dict[str, Any]:
    """The values of the number levers that act in ``config`` (the baseline's: the app's
    starting values), by setting, and every switch off, by name."""
    values: dict[str, Any] = {lever.setting: get_setting(config, lever.setting)
                              for lever in levers(config)}
    values.update({switch.name: False for switch in switches()})
    return values


def _hydra_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _number_levers(baseline: Mapping[str, Any]) -> list[Lever]:
    return [lever for lever in LEVERS
            if not lever.is_switch and not lever.pay and lever.setting in baseline]


def what_if_overrides(values: Mapping[str, Any], baseline: Mapping[str, Any],
                      extra: str = "") -> list[str]:
    """The overrides of a what-if: each number lever whose value differs from the baseline's,
    the scenarios of the switches that are on (composed by Hydra: ``scenario=[...]``), then
    any ``extra`` overrides (``key=value`` separated by spaces, as on the command line)."""
    overrides = []
    for lever in _number_levers(baseline):
        value = values.get(lever.setting, baseline[lever.setting])
        if _changed(value, baseline[lever.setting]):
            overrides.append(f"{lever.setting}={_hydra_value(value)}")
    on = [switch.scenario for switch in switches() if values.get(switch.name)]
    if on:
        overrides.append(f"scenario=[{','.join(on)}]")
    return overrides + extra.split()


def what_if_label(values: Mapping[str, Any], baseline: Mapping[str, Any],
                  extra: str = "") -> str:
    """A what-if in plain words: ``285 carers (+25), 20% carer turnover (-10 points),
    seven-day working``."""
    parts = []
    for lever in _number_levers(baseline):
        value, base = values.get(lever.setting, baseline[lever.setting]), baseline[lever.setting]
        if _changed(value, base):
            shown, change = lever.shown(value), lever.shown(value) - lever.shown(base)
            space = "" if lever.short.startswith("%") else " "
            points = " points" if lever.scale == 100 else ""
            parts.append(f"{shown:g}{space}{lever.short} ({change:+g}{points})")
    parts += [switch.title.lower() for switch in switches() if values.get(switch.name)]
    if extra.strip():
        parts.append(extra.strip())
    text = ", ".join(parts) or "no change"
    return text[:1].upper() + text[1:]


def scenario_title(name: str, config: AppConfig, baseline: AppConfig) -> str:
    """A scenario file's name for people, its numbers read from the configs: a scenario that
    moves only number levers says how (``285 carers (+25)``), any other has its title
    (``Seven-day working``)."""
    changed = {key for key, _, _ in differences(baseline.params, config.params)}
    if changed and changed <= {lever.setting for lever in _number_levers(lever_defaults(config))}:
        return what_if_label(lever_defaults(config), lever_defaults(baseline))
    return config.title or scenario_text(name)[0]


def _one_scenario_list(overrides: Sequence[str]) -> list[str]:
    """The overrides with every ``scenario=`` choice merged into one, in order
    (``scenario=extra_homecare`` and ``scenario=[seven_day_discharge]`` make
    ``scenario=[extra_homecare,seven_day_discharge]``): Hydra takes one choice of a group."""
    chosen: list[str] = []
    others = []
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == "scenario":
            chosen += [v.strip() for v in value.strip().strip("[]").split(",") if v.strip()]
        else:
            others.append(item)
    if not chosen:
        return others
    if len(chosen) == 1:
        return others + [f"scenario={chosen[0]}"]
    return others + [f"scenario=[{','.join(dict.fromkeys(chosen))}]"]


_COMPOSING = threading.Lock()
"""Hydra's Compose API keeps one global state per process: the app's script runs (one thread
each, and a rerun may start before the run it replaces has stopped) compose one at a time."""


def compose(overrides: Sequence[str] = ()) -> AppConfig:
    """The config of a what-if, composed as the command line composes it; refuses bad input
    with :class:`InputError` carrying the command line's one-line message."""
    from sim.config.cli import USER_ERRORS, one_line

    try:
        with _COMPOSING:
            config = load_config(_one_scenario_list(overrides))
        check_before_run(config.params)
    except USER_ERRORS as error:
        raise InputError(one_line(error)) from None
    return config


# ----------------------------------------------------------------------------- running
PLACES = {"home": "Home", "homecare": "Home with homecare", "care_home": "Care home",
          "step_down": "Step-down bed"}


def place(name: str) -> str:
    """Where a patient went, for people."""
    return PLACES.get(name, name.replace("_", " ").capitalize())


def pathway_name(key: str, params: Params) -> str:
    """``Pathway 1: homecare`` (``home`` when the pathway needs no service)."""
    return pathway_title(key, params)


def flow_table(patients: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Patient-flow counts of one replication, for patients who arrived in the measured period:
    stage 0 from admission to a pathway (or diverted), stage 1 from the pathway to where they
    went (home, homecare, care home; a step-down patient's onward place as planned; still in
    hospital at the end). Columns ``stage``, ``source``, ``target``, ``patients``."""
    p = patients[patients["arrival"] >= params.run.warmup_days]
    diverted = p["diverted"].astype(bool).to_numpy()
    names = {k: pathway_name(k, params) for k in params.pathways}
    pathway = np.where(diverted, "Diverted (no bed free)",
                       p["pathway"].map(names).fillna(p["pathway"]).to_numpy())
    no_then = {name for name, s in params.services.items() if not s.then}
    services = p["service"].fillna("").astype(str)
    onward = p["onward"].fillna("").astype(str)
    final = np.where(onward != "", onward,
                     np.where(services.isin(no_then), services, "home"))
    target = np.array([place(x) for x in final], dtype=object)
    target[p["left"].isna().to_numpy()] = "Still in hospital at the end"
    rows = [pd.DataFrame({"stage": 0, "source": "Admitted", "target": pathway})]
    keep = ~diverted
    rows.append(pd.DataFrame({"stage": 1, "source": pathway[keep], "target": target[keep]}))
    table = pd.concat(rows, ignore_index=True)
    counts = table.groupby(["stage", "source", "target"], sort=False).size()
    return counts.rename("patients").reset_index()


def replicate(params: Params, replication: int) -> tuple[int, pd.DataFrame, pd.DataFrame,
                                                           pd.DataFrame]:
    """One replication (the model's own ``simulate``): its metrics, daily counts and
    patient-flow counts."""
    result = simulate(params, replication)
    return (replication, result.metrics, result.daily.drop(columns=["weekday"], errors="ignore"),
            flow_table(result.patients, params))


def _ready() -> bool:
    return True


def make_pool(workers: int = WORKERS) -> ProcessPoolExecutor:
    """A pool of worker processes for what-ifs, kept by the app for its whole life (started
    with ``spawn``: safe from a threaded server) and warmed up, so that a what-if does not wait
    for processes to start."""
    pool = ProcessPoolExecutor(max_workers=workers,
                               mp_context=multiprocessing.get_context("spawn"),
                               **pool_arguments())
    for future in [pool.submit(_ready) for _ in range(workers)]:
        future.result()
    return pool


@dataclass
class ScenarioRun:
    """The replications of one scenario: tidy per-replication metrics, daily counts and
    patient-flow counts (each with a ``replication`` column)."""

    name: str
    label: str
    params: Params
    overrides: tuple[str, ...]
    metrics: pd.DataFrame
    daily: pd.DataFrame
    flows: pd.DataFrame
    seconds: float = 0.0
    costs: Costs | None = None
    """The prices its costs (among its metrics) were worked out with."""
    extra: dict = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Names these results (what the app's chart cache is keyed by)."""

    @property
    def replications(self) -> int:
        return int(self.metrics["replication"].nunique())

    def renamed(self, label: str, **extra: Any) -> "ScenarioRun":
        """The same results under another name (a new ``run_id``: charts show the name)."""
        return replace(self, name=label, label=label, extra={**self.extra, **extra},
                       run_id=uuid.uuid4().hex)

    def summary(self) -> pd.DataFrame:
        """One row per metric: mean (or total), sd and 95% CI over the replications, each
        interval within the metric's bounds (the metric catalogue)."""
        return summarise_metrics(self.metrics, catalogue(self.params))

    def mean_flows(self) -> pd.DataFrame:
        """Patient-flow counts, mean per replication."""
        n = self.replications
        total = self.flows.groupby(["stage", "source", "target"], sort=False)["patients"].sum()
        return (total / n).reset_index()


Progress = Callable[[int, int], None]


def run_scenario(config: AppConfig, name: str | None = None, label: str | None = None,
                 overrides: Sequence[str] = (), replications: int | None = None,
                 workers: int = WORKERS, pool: Executor | None = None,
                 progress: Progress | None = None) -> ScenarioRun:
    """Run replications 0..n-1 of ``config`` (n: ``run.replications``) in parallel, calling
    ``progress(done, n)`` as each finishes. ``pool``: a pool to use (else one is started for
    this call when ``workers`` > 1)."""
    params = config.params
    n = replications or params.run.replications
    started = time.perf_counter()
    own = None
    if pool is None and workers > 1 and n > 1:
        own = pool = ProcessPoolExecutor(
            max_workers=min(workers, n), mp_context=multiprocessing.get_context("fork")
            if sys.platform.startswith("linux") else None, **pool_arguments())
    results = []
    try:
        if pool is None:
            for k in range(n):
                results.append(replicate(params, k))
                if progress:
                    progress(len(results), n)
        else:
            pending = {pool.submit(replicate, params, k) for k in range(n)}
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    results.append(future.result())
                    if progress:
                        progress(len(results), n)
    finally:
        if own is not None:
            own.shutdown(cancel_futures=True)
    results.sort(key=lambda r: r[0])

    def stack(i: int) -> pd.DataFrame:
        frames = [r[i].assign(replication=r[0]) for r in results]
        return pd.concat(frames, ignore_index=True)

    name = name or config.name
    metrics = with_costs(stack(1), params, config.costs, programmes_on(params))
    return ScenarioRun(name, label or name, params, tuple(overrides), metrics, stack(2),
                       stack(3), time.perf_counter() - started, costs=config.costs)


# ----------------------------------------------------------------------------- comparing
def tidy(runs: Mapping[str, ScenarioRun]) -> pd.DataFrame:
    """Every run's per-replication metrics in one table with a ``scenario`` column."""
    return pd.concat([run.metrics.assign(scenario=name) for name, run in runs.items()],
                     ignore_index=True)


def compare(runs: Mapping[str, ScenarioRun], baseline: str = "baseline",
            metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Each scenario's metrics (mean, 95% CI) and paired change from ``baseline`` (95% CI):
    :func:`sim.reporting.analysis.scenario_comparison`, scenarios kept in the given order."""
    counts = {run.replications for run in runs.values()}
    if len(counts) > 1:
        raise InputError("scenarios compared must have the same number of replications "
                         f"(they have {sorted(counts)})")
    table = scenario_comparison(tidy(runs), baseline, tuple(metrics))
    order = {name: i for i, name in enumerate(runs)}
    table = table.assign(_order=table["scenario"].map(order),
                         _metric=table["metric"].map({m: i for i, m in enumerate(metrics)}))
    return (table.sort_values(["_metric", "_order"]).drop(columns=["_order", "_metric"])
            .reset_index(drop=True))


def differences(baseline: Params, other: Params) -> list[tuple[str, Any, Any]]:
    """The settings of ``other`` that differ from ``baseline``: (name, baseline, other)."""
    from sim.reporting.html import differences_from
    return differences_from(baseline, other)
