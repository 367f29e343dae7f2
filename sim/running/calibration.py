"""Calibration as a tool: fit the model's uncertain parameters to published figures.

A *targets file* (YAML, e.g. ``configs/targets/england.yaml``) lists published figures, each
with its source, value, tolerance and the model metric it matches; optionally it also lists the
uncertain *parameters* to fit, each a dotted name as accepted by :func:`sim.core.params.override`
with a range. :func:`calibrate` searches the ranges with Optuna's TPE sampler and returns the
trials, the best parameter sets and a fit table; :func:`write_scenario` saves a set as a Hydra
scenario (``configs/scenario/<stem>.yaml`` -> ``discharge-sim scenario=<stem>``). The
experiments ``calibration`` and ``calibration_check`` (:mod:`sim.config.experiments`) write the
tables, and :func:`sim.reporting.charts.calibration_fit` draws the fit.

Conventions:

- **Tolerance is absolute, in the target's own unit** (days for a delay, a fraction for a
  share): a model mean is *within tolerance* when ``|mean - value| <= tolerance``.
- A target matches one metric (``metric``) or, with ``per``, the ratio ``metric / per``
  computed in each replication (e.g. the share of delayed bed-days spent waiting for homecare:
  ``metric: delayed_days_per_30d.homecare``, ``per: delayed_days_per_30d``). Because the model's
  per-cause metrics are bed-days, such a share is also the time-average share of delayed
  patients waiting for that cause: the quantity a daily count by reason publishes.
- ``metric: null`` marks a published figure the model cannot express yet; it stays in the file
  (with a ``note`` saying why) and is skipped with a printed notice.
- The loss of a trial is ``sum(((mean - value) / tolerance) ** 2)`` over the targets, ``mean``
  being the mean over replications 0..n-1. Every trial runs the same replications, and
  replication k uses the same random streams in every trial (common random numbers), so two
  trials differ by their parameters, not by their luck.
- Trials are asked in batches of ``batch`` and all replications of a batch run in parallel on
  ``workers`` processes. The sampler of each batch is a TPE sampler seeded from ``seed`` and the
  number of trials finished before it, so the trials depend on ``seed``, ``batch`` and the
  history only: not on ``workers``, nor on whether the calibration was interrupted.
- With a ``store_folder``, the study lives in ``<folder>/optuna.db`` (SQLite), or in the
  ``storage`` named (a database server, or a journal file on a shared file system): a rerun
  keeps every finished trial and runs only the rest (``trials`` is the total); trials that
  were running when it was interrupted are run again with the same parameters. Several
  processes can run one calibration on one storage (:mod:`sim.running.studies`): each trial
  is run once; the trials then depend on their timing (docs/large-study.md).
- The replications of a batch run on ``pool``, any ``concurrent.futures.Executor`` (a Dask
  cluster's, ``Client.get_executor()``), or on ``workers`` local processes: either way the
  trials are the same.
- Cost: ``trials x replications`` runs of the system (and ``keep x confirm``). The default
  experiment (160 x 5 of the default system, then the 5 best on 10) took 22 minutes on 2
  cores; ``time_limit``
  stops starting new batches after a given time, and a rerun with the store folder goes on.
- The ``keep`` best parameter sets are returned (and written as scenarios), so that
  conclusions can be rerun on each of them. With ``confirm`` replications (more than the
  search's), they are run again on replications 0..confirm-1 and ranked by that loss: the
  search's best is chosen partly for its luck on a few replications (a winner's curse), and
  more replications show which of the best sets fits best.

This module imports neither Hydra nor matplotlib.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import hashlib
import json
import math
import sys
import time
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from sim.core.catalogue import catalogue, describe
from sim.core.levers import get_setting
from sim.core.model import simulate
from sim.core.params import ParameterError, Params, Run, override
from sim.running.stats import estimate
from sim.running.tables import write_table
from sim.running.files import write_atomic
from sim.running.store import model_code_digest
from sim.running.studies import (StudyError, Survey, Worker, evaluated, open_study,
                                 run_trials)

STUDY = "calibration"
"""The Optuna study's name inside ``optuna.db``."""

DEFAULT_BATCH = 4
"""Trials asked at once (then run in parallel). Part of what determines the trials."""


class CalibrationError(StudyError):
    """A targets file, parameter or store folder that cannot be used; the message is one line."""


# --------------------------------------------------------------------------- targets, parameters

@dataclass(frozen=True)
class Source:
    """Where a published figure comes from, and the figure exactly as it was published."""

    title: str
    publisher: str
    date: str
    quote: str
    url: str = ""

    def __str__(self) -> str:
        return f"{self.publisher}, {self.title} ({self.date})"


Change = tuple[tuple[str, Any], ...]
"""A change of the system, as (setting, what happens to it) pairs: a value it is set to, or
``{"times": x}`` or ``{"plus": x}`` of its value, rounded to a whole number if the setting is
one (an integer) or with ``"whole": true`` (places counted in a real number); ``[*]`` in a
setting names every item of a list (``services.homecare.market.segments[*].providers``).
``()`` is the system itself."""


@dataclass(frozen=True)
class Target:
    """A published figure the model should reproduce.

    ``value`` and ``tolerance`` are in the unit of the model quantity (tolerance is absolute:
    within tolerance means ``|model mean - value| <= tolerance``). The model quantity is the
    metric ``metric`` or, with ``per``, the ratio ``metric / per`` in each replication; with a
    ``change``, it is the effect of that change on it, the relative change ``changed / system -
    1`` between the changed system and the system itself in each replication, on common random
    numbers (a lever's effect measured in councils' data: 10% more care-home places, 7% fewer
    social-care delays). ``metric=None`` marks a figure the model cannot express yet (skipped,
    see ``note``).
    """

    name: str
    metric: str | None
    value: float
    tolerance: float
    source: Source
    per: str | None = None
    note: str = ""
    change: Change = ()

    @property
    def active(self) -> bool:
        return self.metric is not None

    @property
    def quantity(self) -> str:
        """The model quantity in words: ``metric`` or ``metric / per``, and the change whose
        effect on it is the target."""
        what = self.metric if self.per is None else f"{self.metric} / {self.per}"
        if not self.change:
            return str(what)
        return f"relative change of {what} when " + ", ".join(
            f"{name} {_spec_text(spec)}" for name, spec in self.change)

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric names this target reads."""
        return tuple(m for m in (self.metric, self.per) if m is not None)

    def unit(self, params: Params | None = None) -> str:
        """The unit of the model quantity (and so of ``value`` and ``tolerance``)."""
        if self.change:
            return "fraction (relative change)"
        unit = describe(self.metric, params).unit
        if self.per is None:
            return unit
        below = describe(self.per, params)
        if below.unit == unit:  # e.g. bed-days per 30 days over bed-days per 30 days
            return f"fraction of {below.label.replace(' per 30 days', '')}"
        return f"{unit} per {below.unit}"

    def evaluate(self, systems: Mapping[Change, Mapping[str, float]]) -> float:
        """The model quantity in one replication, from the metrics by name of the system
        (``systems[()]``) and of the changed system (``systems[self.change]``); NaN if
        undefined."""
        value = self._of(systems[()])
        if not self.change:
            return value
        changed = self._of(systems[self.change])
        return changed / value - 1.0 if value and math.isfinite(value) else math.nan

    def _of(self, metrics: Mapping[str, float]) -> float:
        x = metrics.get(self.metric, math.nan)
        if self.per is None:
            return float(x)
        d = metrics.get(self.per, math.nan)
        return float(x) / float(d) if d and math.isfinite(d) else math.nan


def _spec_text(spec: Any) -> str:
    if isinstance(spec, Mapping):
        how = "times" if "times" in spec else "plus"
        x = spec[how]
        return (f"x {x:g}" if how == "times" else f"{x:+g}") + (
            " (whole)" if spec.get("whole") else "")
    return f"= {spec}"


def changes_of(targets: Iterable[Target]) -> list[Change]:
    """The systems the targets are read from: the system itself, then each distinct change."""
    return [(), *dict.fromkeys(t.change for t in targets if t.change)]


def apply_change(params: Params, change: Change) -> Params:
    """``params`` with ``change`` made (see :data:`Change`); a whole count stays whole
    (rounded). Raises ParameterError for a setting the parameters do not have, or a result
    they do not allow."""
    updates: dict[str, Any] = {}
    for pattern, spec in change:
        for name in _expand(params, pattern):
            try:
                current = get_setting(params, _plain(name))
            except (AttributeError, KeyError, TypeError, IndexError):
                raise ParameterError(name, spec, "a setting of the model") from None
            if isinstance(spec, Mapping):
                value = current * spec["times"] if "times" in spec else current + spec["plus"]
                if isinstance(current, int):
                    updates[name] = int(round(value))
                else:
                    updates[name] = float(round(value)) if spec.get("whole") else float(value)
            else:
                updates[name] = spec
    return override(params, updates)


def _expand(params: Params, pattern: str) -> list[str]:
    """A setting's names with every ``[*]`` replaced by each index of its list."""
    head, star, rest = pattern.partition("[*]")
    if not star:
        return [pattern]
    items = get_setting(params, _plain(head))
    return [name for i in range(len(items)) for name in _expand(params, f"{head}[{i}]{rest}")]


def _plain(name: str) -> str:
    """``a.b[1].c`` as :func:`get_setting` reads it: ``a.b.1.c``."""
    return name.replace("[", ".").replace("]", "")


@dataclass(frozen=True)
class Parameter:
    """An uncertain parameter: a dotted name as :func:`sim.core.params.override` accepts, its
    range [low, high], searched on a log scale if ``log``, in whole numbers if ``integer``.
    ``balance`` names a setting that gives up what this one gains (and takes what it loses), so
    that settings that must sum to 1 still do: ``pathways.p3.share`` fitted with ``balance:
    pathways.p0.share``."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False
    balance: str | None = None

    def suggest(self, trial) -> int | float:
        """The value an Optuna trial draws for this parameter (or was queued with)."""
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def convert(self, value: float) -> int | float:
        return int(round(value)) if self.integer else float(value)

    def settings(self, value: float, params: Params) -> dict[str, int | float]:
        """The settings a trial's ``value`` makes, by dotted name: this one's, and its
        ``balance``'s, moved by the opposite of this one's change from ``params``."""
        value = self.convert(value)
        if self.balance is None:
            return {self.name: value}
        change = value - float(get_setting(params, self.name))
        return {self.name: value, self.balance: float(get_setting(params, self.balance)) - change}


def settings_of(parameters: Sequence[Parameter], values: Mapping[str, float],
                params: Params) -> dict[str, int | float]:
    """Every setting that the parameters' ``values`` (by name) make, balances included."""
    out: dict[str, int | float] = {}
    for p in parameters:
        if p.name in values:
            out.update(p.settings(values[p.name], params))
    return out


_TARGET_KEYS = {"name", "metric", "value", "tolerance", "source", "per", "note", "change"}
_SOURCE_KEYS = {"title", "publisher", "date", "quote", "url"}
_PARAMETER_KEYS = {"name", "low", "high", "log", "integer", "balance"}


class _Where:
    """Builds one-line errors naming the file, the entry and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, entry: str, field_name: str, value: Any, allowed: str) -> CalibrationError:
        where = f"{self.path}: {entry}" if entry else str(self.path)
        return CalibrationError(f"{where}: {field_name}={value!r} is not allowed: {allowed}")


def _number(where: _Where, entry: str, data: Mapping, key: str, *, positive: bool = False) -> float:
    if key not in data:
        raise where.error(entry, key, None, "a number (missing)")
    value = data[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (positive and value <= 0):
        raise where.error(entry, key, value,
                          "a finite number > 0" if positive else "a finite number")
    return float(value)


def _text(where: _Where, entry: str, data: Mapping, key: str, *, required: bool = True,
          prefix: str = "") -> str:
    value = data.get(key)
    if isinstance(value, (_dt.date, _dt.datetime)):
        value = value.isoformat()  # YAML reads 2023-03-01 as a date
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise where.error(entry, prefix + key, value,
                          "a non-empty text" + ("" if required else " or absent"))
    return value.strip()


def _flag(where: _Where, entry: str, data: Mapping, key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise where.error(entry, key, value, "true or false")
    return value


def _unknown_keys(where: _Where, entry: str, data: Mapping, known: set[str]) -> None:
    for key in data:
        if key not in known:
            raise where.error(entry, str(key), data[key],
                              "not a field (fields: " + ", ".join(sorted(known)) + ")")


def _read(path: Path) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise CalibrationError(f"{path}: cannot be read ({error.strerror})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise CalibrationError(f"{path}: not valid YAML{line}") from None
    where = _Where(path)
    if not isinstance(data, dict):
        raise where.error("", "top level", type(data).__name__,
                          "a mapping with 'targets' (and optionally 'parameters')")
    _unknown_keys(where, "", data, {"targets", "parameters"})
    return data


def _target(where: _Where, index: int, data: Any) -> Target:
    entry = f"targets[{index}]"
    if not isinstance(data, dict):
        raise where.error(entry, "entry", data,
                          "a mapping with name, metric, value, tolerance, source")
    if isinstance(data.get("name"), str) and data["name"].strip():
        entry = f"targets[{index}] ({data['name'].strip()})"
    _unknown_keys(where, entry, data, _TARGET_KEYS)
    name = _text(where, entry, data, "name")
    if "metric" not in data:
        raise where.error(entry, "metric", None,
                          "a metric name, or null for a figure the model cannot express yet")
    metric = data["metric"]
    if metric is not None and (not isinstance(metric, str) or not metric.strip()):
        raise where.error(entry, "metric", metric, "a metric name or null")
    per = data.get("per")
    if per is not None and (not isinstance(per, str) or not per.strip()):
        raise where.error(entry, "per", per, "a metric name (the denominator of a share) or absent")
    if per is not None and metric is None:
        raise where.error(entry, "per", per, "absent when metric is null")
    note = _text(where, entry, data, "note", required=metric is None)
    value = _number(where, entry, data, "value")
    tolerance = _number(where, entry, data, "tolerance", positive=True)
    raw = data.get("source")
    if not isinstance(raw, dict):
        raise where.error(entry, "source", raw, "a mapping with title, publisher, date, quote")
    _unknown_keys(where, entry, {f"source.{k}": v for k, v in raw.items()},
                  {f"source.{k}" for k in _SOURCE_KEYS})
    texts = {k: _text(where, entry, raw, k, required=k != "url", prefix="source.")
             for k in ("title", "publisher", "date", "quote", "url")}
    return Target(name=name, metric=metric.strip() if metric else None, value=value,
                  tolerance=tolerance, source=Source(**texts),
                  per=per.strip() if per else None, note=note,
                  change=_change(where, entry, data.get("change")))


def _change(where: _Where, entry: str, raw: Any) -> Change:
    """A target's ``change``: a mapping of settings to a value, ``{times: x}`` or
    ``{plus: x}`` (with ``whole: true`` to round)."""
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not raw:
        raise where.error(entry, "change", raw, "a mapping of settings to what happens to "
                          "each: a value, {times: x} or {plus: x}")
    items = []
    for name, spec in raw.items():
        if isinstance(spec, dict):
            hows = [k for k in spec if k in ("times", "plus")]
            x = spec.get(hows[0]) if len(hows) == 1 else None
            ok = (len(hows) == 1 and set(spec) <= {"times", "plus", "whole"}
                  and isinstance(x, (int, float)) and not isinstance(x, bool)
                  and isinstance(spec.get("whole", False), bool))
            if not ok:
                raise where.error(entry, f"change.{name}", spec,
                                  "a value, {times: x} or {plus: x} with x a number (and "
                                  "whole: true to round)")
        items.append((str(name), _frozen(spec)))
    return tuple(items)


def _frozen(spec: Any) -> Any:
    """A change's spec in a hashable form (a mapping stays readable as one)."""
    return _Spec(spec) if isinstance(spec, dict) else spec


class _Spec(dict):
    """A hashable mapping (``{"times": 1.1}``), so that a change can key a table."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))



def _parameter(where: _Where, index: int, data: Any) -> Parameter:
    entry = f"parameters[{index}]"
    if not isinstance(data, dict):
        raise where.error(entry, "entry", data, "a mapping with name, low, high")
    if isinstance(data.get("name"), str):
        entry = f"parameters[{index}] ({data['name']})"
    _unknown_keys(where, entry, data, _PARAMETER_KEYS)
    name = _text(where, entry, data, "name")
    low = _number(where, entry, data, "low")
    high = _number(where, entry, data, "high")
    log, integer = _flag(where, entry, data, "log"), _flag(where, entry, data, "integer")
    if high <= low:
        raise where.error(entry, "high", data["high"], f"a number > low ({data['low']})")
    if log and low <= 0:
        raise where.error(entry, "low", data["low"], "a number > 0 (log: true)")
    if integer:
        for key in ("low", "high"):
            if float(data[key]) != int(data[key]):
                raise where.error(entry, key, data[key], "a whole number (integer: true)")
    balance = _text(where, entry, data, "balance", required=False) or None
    if balance == name:
        raise where.error(entry, "balance", balance, f"a setting other than {name}")
    return Parameter(name, low, high, log, integer, balance)


def load_targets(path: str | Path, params: Params | None = None, *,
                 include_skipped: bool = False, notices: bool = True) -> list[Target]:
    """The targets of a targets file, each field validated (a one-line
    :class:`CalibrationError` naming the file, the entry and the field). Targets with
    ``metric: null`` are left out with a printed notice (or kept, ``include_skipped``). Given
    ``params``, metric names the model does not compute are refused."""
    path = Path(path)
    data = _read(path)
    where = _Where(path)
    raw = data.get("targets")
    if not isinstance(raw, list) or not raw:
        raise where.error("", "targets", raw, "a non-empty list of targets")
    targets = [_target(where, i, t) for i, t in enumerate(raw)]
    seen: set[str] = set()
    for i, t in enumerate(targets):
        if t.name in seen:
            raise where.error(f"targets[{i}] ({t.name})", "name", t.name, "a name not used above")
        seen.add(t.name)
    if params is not None:
        check_metrics(targets, params, path)
    if notices:
        for t in targets:
            if not t.active:
                print(f"notice: {path}: target {t.name!r} skipped (metric: null): {t.note}",
                      file=sys.stderr)
    return targets if include_skipped else [t for t in targets if t.active]


def load_parameters(path: str | Path, params: Params | None = None) -> list[Parameter]:
    """The ``parameters`` section of a targets file (empty if there is none), validated like the
    targets; given ``params``, each name and range is checked against the model."""
    path = Path(path)
    raw = _read(path).get("parameters", [])
    where = _Where(path)
    if not isinstance(raw, list):
        raise where.error("", "parameters", raw, "a list of parameters")
    parameters = [_parameter(where, i, p) for i, p in enumerate(raw)]
    names = [p.name for p in parameters]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise where.error(f"parameters[{i}] ({name})", "name", name, "a name not used above")
    for i, p in enumerate(parameters):
        if p.balance is not None and p.balance in names + [q.balance for q in parameters[:i]]:
            raise where.error(f"parameters[{i}] ({p.name})", "balance", p.balance,
                              "a setting that no other parameter fits or balances")
    if params is not None:
        check_parameters(parameters, params, path)
    return parameters


def check_metrics(targets: Iterable[Target], params: Params, path: str | Path = "targets") -> None:
    """Refuse, before any run, a target whose metric (or ``per``) the model does not compute,
    or whose change the model cannot make."""
    known = catalogue(params)
    for i, t in enumerate(targets):
        try:
            apply_change(params, t.change)
        except ParameterError as error:
            raise _Where(Path(path)).error(f"targets[{i}] ({t.name})", "change",
                                           dict(t.change), f"a change the model can make "
                                           f"({error})") from None
        for key in ("metric", "per"):
            name = getattr(t, key)
            if name is not None and name not in known:
                close = difflib.get_close_matches(name, list(known), n=3)
                hint = f"e.g. {', '.join(close)}" if close else "see sim/core/catalogue.py"
                raise _Where(Path(path)).error(f"targets[{i}] ({t.name})", key, name,
                                               f"a metric the model computes ({hint})")


def check_parameters(parameters: Sequence[Parameter], params: Params,
                     path: str | Path = "parameters") -> None:
    """Refuse, before any run, a parameter that is not a setting, has the wrong kind of number,
    or whose range includes values the model does not allow."""
    where = _Where(Path(path))
    for i, p in enumerate(parameters):
        entry = f"parameters[{i}] ({p.name})"
        try:
            current = get_setting(params, p.name)
        except (AttributeError, KeyError, TypeError):
            raise where.error(entry, "name", p.name, "a dotted name of a model setting, "
                              "e.g. pathways.p1.transfer.mean") from None
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            raise where.error(entry, "name", p.name, f"a numeric setting (it is {current!r})")
        if isinstance(current, int) and not p.integer:
            raise where.error(entry, "integer", False, f"true: {p.name} is a whole number")
        if p.balance is not None:
            try:
                other = get_setting(params, p.balance)
            except (AttributeError, KeyError, TypeError):
                other = None
            if not isinstance(other, float):
                raise where.error(entry, "balance", p.balance, "the dotted name of a setting "
                                  "that is a fraction or a real number, e.g. pathways.p0.share")
        for key in ("low", "high"):
            try:
                override(params, p.settings(getattr(p, key), params))
            except ParameterError as error:
                raise where.error(entry, key, getattr(p, key),
                                  f"a value the model accepts ({error})") from None


# --------------------------------------------------------------------------- calibration

NOT_SETTINGS = ("rank", "trial", "loss", "loss_confirmed")
"""The columns of a best-sets table that are not settings."""


@dataclass
class CalibrationResult:
    """What :func:`calibrate` found.

    ``trials``: one row per evaluated trial (number, state, loss, each parameter, each target's
    model mean). ``best``: the best parameter values by dotted name. ``fit``: the fit table of
    the best trial (see :func:`fit_table`). ``best_sets``: the ``keep`` best trials (rank, trial,
    loss, parameters), to rerun conclusions on each.
    """

    targets: list[Target]
    parameters: list[Parameter]
    replications: int
    seed: int
    trials: pd.DataFrame
    best: dict[str, int | float]
    best_loss: float
    fit: pd.DataFrame
    best_sets: pd.DataFrame
    folder: Path | None = None
    units: dict[str, str] = field(default_factory=dict)
    _values: dict[int, dict[str, list[float]]] = field(default_factory=dict, repr=False)
    confirmed: int = 0
    """The replications the best sets were run again on and ranked by (0: not confirmed; then
    ``best_sets`` has a ``loss_confirmed`` column and ``fit`` is of those replications)."""

    @property
    def fit_replications(self) -> int:
        """The replications ``fit`` is of: the confirmation's, else the search's."""
        return self.confirmed or self.replications

    def fit_for(self, trial: int) -> pd.DataFrame:
        """The fit table of any evaluated trial (e.g. each of ``best_sets``)."""
        return fit_table(self.targets, self._values[trial], self.units)

    def sets(self) -> list[dict[str, int | float]]:
        """The best parameter sets, best first, by dotted name (balances included)."""
        names = [c for c in self.best_sets.columns if c not in NOT_SETTINGS]
        return [_set_of(row, self.parameters, names)
                for row in self.best_sets.to_dict("records")]


def _set_of(row: Mapping[str, Any], parameters: Sequence[Parameter], names: Sequence[str]
            ) -> dict[str, int | float]:
    """One row's settings by dotted name: fitted values as their parameter's kind of number."""
    kinds = {p.name: p for p in parameters}
    return {n: kinds[n].convert(row[n]) if n in kinds else float(row[n]) for n in names}


def fit_table(targets: Sequence[Target], values: Mapping[str, Sequence[float]],
              units: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Each target: the model quantity and its unit, the target's value and tolerance, the
    model mean over the replications with its 95% t-interval, the error in tolerances
    ((mean - value) / tolerance) and whether the mean is within tolerance, with the source."""
    rows = []
    for t in targets:
        e = estimate(values[t.name])
        rows.append({
            "target": t.name, "quantity": t.quantity, "unit": (units or {}).get(t.name, ""),
            "value": t.value, "tolerance": t.tolerance,
            "model_mean": e.mean, "ci_low": e.low, "ci_high": e.high, "replications": e.n,
            "error_in_tolerances": (e.mean - t.value) / t.tolerance,
            "within_tolerance": bool(abs(e.mean - t.value) <= t.tolerance),
            "source": str(t.source)})
    return pd.DataFrame(rows)


def _replicate(params: Params, k: int, names: tuple[str, ...]) -> list[float]:
    """One replication's values of the metrics ``names`` (NaN where not computed)."""
    metrics = simulate(params, k).metrics
    by_name = dict(zip(metrics["metric"], metrics["value"].astype(float)))
    return [by_name.get(n, math.nan) for n in names]


def _loss(targets: Sequence[Target], values: Mapping[str, Sequence[float]]) -> float:
    total = 0.0
    for t in targets:
        mean = float(np.mean(values[t.name]))
        total += ((mean - t.value) / t.tolerance) ** 2
    return total


def _fingerprint(params: Params, targets: Sequence[Target], parameters: Sequence[Parameter],
                 replications: int, seed: int, batch: int, start: bool = False) -> str:
    system = asdict(params)
    for key in Run.HOW_MANY:
        system["run"].pop(key)
    setup = {"params": system, "model_code": model_code_digest(), "from_configured": start,
             "targets": [asdict(t) for t in targets], "parameters": [asdict(p) for p in parameters],
             "replications": replications, "seed": seed, "batch": batch}
    # Not sorted: the order of a table's entries decides which one a random draw picks.
    return hashlib.sha256(json.dumps(setup, default=str).encode()).hexdigest()[:20]


def calibrate(params: Params, targets: Sequence[Target], parameters: Sequence[Parameter],
              trials: int = 100, replications: int = 8, workers: int | None = None,
              seed: int = 0, store_folder: str | Path | None = None, *,
              batch: int = DEFAULT_BATCH, keep: int = 5, time_limit: float | None = None,
              confirm: int = 0, progress: bool = False,
              from_configured: bool = False, storage: str = "",
              pool: Executor | None = None) -> CalibrationResult | None:
    """Fit ``parameters`` to ``targets`` with Optuna (TPE), ``trials`` trials in all.

    Each trial runs replications 0..``replications``-1 of ``params`` with the trial's values
    (common random numbers across trials), and of the same system with each change a target
    reads a lever's effect from; its loss is the sum over targets of
    ((model mean - value) / tolerance)^2. Trials are asked ``batch`` at a time and their
    replications run on ``pool`` (any executor: a Dask cluster's) or else on ``workers`` local
    processes (default: all cores). ``seed`` seeds the sampler only (the model's random numbers
    come from ``params.run.seed``): the same seed gives the same trials. With ``store_folder``
    the study is kept in ``<folder>/optuna.db``, or in ``storage``
    (:data:`sim.running.studies.STORAGE_FORMS`), and a rerun resumes it; several processes can
    share it, and the one that runs the last trials returns the result (the others None). With
    ``from_configured``, the first trial is the system as configured (a fit then starts no
    worse than the system it refits). With ``time_limit`` (seconds) no new
    batch starts after that time: the trials
    run (at least one batch) are then the first ones of the same sequence, and a rerun with
    the store folder goes on with the rest. With ``confirm`` above ``replications``, the
    ``keep`` best sets are run again on replications 0..``confirm``-1 and ranked by that loss
    (the fit table is then of those replications). Targets with ``metric: null`` are skipped
    with a notice; unknown metrics and parameters out of the model's ranges are refused before any
    run. A trial whose values the model refuses together (a ParameterError) fails, with the
    error kept in its ``error`` attribute.
    """
    from sim.running.runner import replication_pool

    targets, parameters = _checked(params, targets, parameters, trials, replications, batch,
                                   keep)
    folder = Path(store_folder) if store_folder is not None else None
    started = time.monotonic()
    with replication_pool(pool, workers, batch * replications) as pool:
        try:
            study = open_study(folder, STUDY, _fingerprint(
                params, targets, parameters, replications, seed, batch, from_configured),
                "a calibration", storage=storage,
                first=[_configured(params, parameters)] if from_configured else [])
        except StudyError as error:
            raise CalibrationError(str(error)) from None
        evaluate = _Evaluator(params, targets, parameters, replications, pool, trials, started,
                              progress)
        if not run_trials(study, trials, seed, batch, evaluate.batch, "calibration",
                          time_limit, started):
            return None
        units = {t.name: t.unit(params) for t in targets}
        result = _result(study, params, targets, parameters, replications, seed, keep, folder,
                         units)
        if confirm > replications:
            if progress:
                print(f"calibration: the {len(result.best_sets)} best sets again on {confirm} "
                      "replications", file=sys.stderr)
            _confirm(result, params, confirm, pool)
        return result


def _checked(params: Params, targets: Sequence[Target], parameters: Sequence[Parameter],
             trials: int, replications: int, batch: int, keep: int
             ) -> tuple[list[Target], list[Parameter]]:
    """The targets with a metric (a notice for each without) and the parameters, refused in
    one line before any run if they cannot be used."""
    for t in targets:
        if not t.active:
            print(f"notice: target {t.name!r} skipped (metric: null): {t.note}", file=sys.stderr)
    active = [t for t in targets if t.active]
    if not active:
        raise CalibrationError("calibrate: no targets with a metric")
    if not parameters:
        raise CalibrationError("calibrate: no parameters to fit")
    if trials < 1 or replications < 1 or batch < 1 or keep < 1:
        raise CalibrationError("calibrate: trials, replications, batch and keep must be >= 1")
    check_metrics(active, params)
    check_parameters(parameters, params)
    return active, list(parameters)


def _configured(params: Params, parameters: Sequence[Parameter]) -> dict[str, float]:
    """The parameters' values in the configured system, each kept within its range."""
    out = {}
    for p in parameters:
        value = min(max(float(get_setting(params, p.name)), p.low), p.high)
        out[p.name] = p.convert(value)
    return out


class _Evaluator:
    """Runs a batch of trials: each trial's system and its changed systems, on the same
    replications, and tells the study each trial's loss."""

    def __init__(self, params: Params, targets: list[Target], parameters: list[Parameter],
                 replications: int, pool: Executor | None, trials: int, started: float,
                 progress: bool) -> None:
        self.params, self.targets, self.parameters = params, targets, parameters
        self.replications, self.pool = replications, pool
        self.trials, self.started, self.progress = trials, started, progress

    def batch(self, worker: Worker, survey: Survey, size: int) -> int:
        """Claim up to ``size`` trials, run them and record each; returns how many ran."""
        asked, runs, errors = [], [], []
        for _ in range(size):
            trial = worker.claim()
            if trial is None:
                break
            values = {p.name: p.suggest(trial) for p in self.parameters}
            asked.append(trial)
            try:
                system = override(self.params, settings_of(self.parameters, values,
                                                           self.params))
                runs.append(systems_of(system, self.targets))
                errors.append("")
            except ParameterError as error:
                runs.append(None)
                errors.append(str(error))
        values = iter(quantities(self.targets, _run_batch(
            [r for r in runs if r is not None], self.replications,
            metric_names(self.targets), self.pool)))
        for trial, run, error in zip(asked, runs, errors):
            loss, attrs = math.nan, {"error": error} if error else {}
            if run is not None:
                found = next(values)
                loss = _loss(self.targets, found)
                attrs["values"] = found
            worker.tell(trial, loss if math.isfinite(loss) else None, attrs)
        if self.progress and asked:
            best = min((t.value for t in worker.study.get_trials(deepcopy=False)
                        if evaluated(t) and t.value is not None), default=math.nan)
            print(f"calibration: {survey.done + len(asked)}/{self.trials} trials, best loss "
                  f"{best:.4g}, {time.monotonic() - self.started:.0f} s", file=sys.stderr)
        return len(asked)


def metric_names(targets: Sequence[Target]) -> tuple[str, ...]:
    """The metrics the targets read, each once."""
    return tuple(dict.fromkeys(m for t in targets for m in t.metrics))


def systems_of(params: Params, targets: Sequence[Target]) -> list[Params]:
    """The systems the targets are read from: ``params``, then ``params`` with each change
    (:func:`changes_of`)."""
    return [apply_change(params, change) for change in changes_of(targets)]


def quantities(targets: Sequence[Target], runs: list[list[list[list[float]]]]
               ) -> list[dict[str, list[float]]]:
    """For each run (its systems' replications' values of :func:`metric_names`), each
    target's quantity in each replication."""
    changes, names = changes_of(targets), metric_names(targets)
    out = []
    for systems in runs:
        by_replication = [{change: dict(zip(names, rows[k]))
                           for change, rows in zip(changes, systems)}
                          for k in range(len(systems[0]))]
        out.append({t.name: [t.evaluate(s) for s in by_replication] for t in targets})
    return out


def evaluate_targets(params: Params, targets: Sequence[Target], replications: int,
                     workers: int | None = None) -> dict[str, list[float]]:
    """Each target's quantity in replications 0..n-1 of ``params`` (and its changed systems),
    in parallel on ``workers`` processes (default: all cores): a calibration check."""
    from sim.running.runner import replication_pool

    targets = [t for t in targets if t.active]
    check_metrics(targets, params)
    runs = systems_of(params, targets)
    with replication_pool(None, workers, len(runs) * replications) as pool:
        return quantities(targets, _run_batch([runs], replications, metric_names(targets),
                                              pool))[0]


def _confirm(result: CalibrationResult, params: Params, replications: int,
             pool: Executor | None) -> None:
    """Run the best sets again on ``replications`` and rank them by that loss, in place."""
    runs = [systems_of(override(params, s), result.targets) for s in result.sets()]
    found = quantities(result.targets, _run_batch(runs, replications,
                                                  metric_names(result.targets), pool))
    losses = [_loss(result.targets, q) for q in found]
    order = sorted(range(len(losses)), key=lambda i: (losses[i], i))
    table = result.best_sets.iloc[order].reset_index(drop=True)
    table.insert(3, "loss_confirmed", [losses[i] for i in order])
    table["rank"] = range(1, len(table) + 1)
    result.best_sets = table
    result.best = result.sets()[0]
    result.best_loss = losses[order[0]]
    result.fit = fit_table(result.targets, found[order[0]], result.units)
    result.confirmed = replications


def _run_batch(runs: list[list[Params]], replications: int, names: tuple[str, ...],
               pool: Executor | None) -> list[list[list[list[float]]]]:
    """For each run, for each of its systems, each replication's values of ``names``, on
    ``pool`` (any executor) or here."""
    if pool is None:
        return [[[_replicate(p, k, names) for k in range(replications)] for p in systems]
                for systems in runs]
    futures = [[[pool.submit(_replicate, p, k, names) for k in range(replications)]
                for p in systems] for systems in runs]
    return [[[f.result() for f in row] for row in systems] for systems in futures]


def _result(study, params: Params, targets: list[Target], parameters: list[Parameter],
            replications: int, seed: int, keep: int, folder: Path | None,
            units: dict[str, str]) -> CalibrationResult:
    finished = [t for t in study.get_trials(deepcopy=False) if evaluated(t)]
    settings = [n for p in parameters for n in (p.name, p.balance) if n is not None]
    rows, values = [], {}
    for t in finished:
        row = {"trial": t.number, "state": t.state.name,
               "loss": t.value if t.value is not None else math.nan}
        row.update(settings_of(parameters, t.params, params))
        if "values" in t.user_attrs:
            values[t.number] = t.user_attrs["values"]
            row.update({f"mean.{name}": float(np.mean(v)) for name, v in values[t.number].items()})
        row["error"] = t.user_attrs.get("error", "")
        rows.append(row)
    table = pd.DataFrame(rows)
    complete = table[table["state"] == "COMPLETE"].sort_values(["loss", "trial"], kind="stable")
    if complete.empty:
        raise CalibrationError("calibrate: no trial gave a finite loss (every trial failed)")
    top = complete.head(keep)
    best_sets = pd.DataFrame({"rank": range(1, len(top) + 1), "trial": top["trial"].to_numpy(),
                              "loss": top["loss"].to_numpy(),
                              **{name: top[name].to_numpy() for name in settings}})
    first = int(top["trial"].iloc[0])
    best = _set_of(top.iloc[0], parameters, settings)
    return CalibrationResult(targets, parameters, replications, seed, table, best,
                             float(top["loss"].iloc[0]), fit_table(targets, values[first], units),
                             best_sets, folder, units, values)


# --------------------------------------------------------------------------- outputs

def nest(values: Mapping[str, Any]) -> dict:
    """Dotted names to nested mappings: ``{"acute.beds": 500}`` -> ``{"acute": {"beds": 500}}``."""
    tree: dict = {}
    for dotted, value in values.items():
        node = tree
        *heads, last = dotted.split(".")
        for head in heads:
            node = node.setdefault(head, {})
        node[last] = value.item() if hasattr(value, "item") else value
    return tree


def scenario_yaml(values: Mapping[str, Any], name: str = "calibrated", comment: str = "") -> str:
    """A Hydra scenario (``# @package _global_``) setting ``values`` by dotted name: saved as
    ``configs/scenario/<stem>.yaml`` it runs with ``discharge-sim scenario=<stem>``. It holds
    only these values: every other setting is the baseline's."""
    lines = ["# @package _global_"]
    lines += [f"# {line}".rstrip() for line in comment.splitlines()]
    body = yaml.safe_dump({"name": name, **nest(values)}, sort_keys=False,
                          default_flow_style=False)
    return "\n".join(lines) + "\n" + body


def write_scenario(values: Mapping[str, Any], path: str | Path, name: str = "calibrated",
                   comment: str = "") -> Path:
    """Write :func:`scenario_yaml` to ``path`` (atomically)."""
    path = Path(path)
    text = scenario_yaml(values, name, comment)
    write_atomic(path, lambda p: p.write_text(text))
    return path


def write_results(result: CalibrationResult, folder: str | Path, source: str = "the targets"
                  ) -> list[Path]:
    """Write a calibration's tables (``trials``, ``best_sets``, ``fit``: each ``.csv`` and
    ``.md``) and its best parameter sets as scenarios (``calibrated.yaml``,
    ``calibrated_2.yaml``, ...) into ``folder``; returns the files written. ``source`` names
    the targets file in the notes. (The fit chart is drawn by
    :func:`sim.reporting.charts.calibration_fit`.)"""
    folder = Path(folder)
    n, fit_n = result.replications, result.fit_replications
    within = int(result.fit["within_tolerance"].sum())
    write_table(result.trials, folder, "trials",
                f"# Calibration trials\n\n{len(result.trials)} trials of {source}, {n} "
                "replications each on common random numbers.")
    confirmed = (f"Ranked by their loss on {result.confirmed} replications "
                 f"(`loss_confirmed`); `loss` is the search's, on {n}. " if result.confirmed
                 else "")
    write_table(result.best_sets, folder, "best_sets",
                f"# The {len(result.best_sets)} best parameter sets\n\n{confirmed}Each is saved "
                "as a scenario beside this file (calibrated.yaml, calibrated_2.yaml, ...): copy one to "
                "configs/scenario/ and run it with scenario=<its name>.")
    write_table(result.fit, folder, "fit",
                f"# Calibration fit to {source}: best of {len(result.trials)} trials (loss "
                f"{result.best_loss:.4g})\n\nModel mean and 95% CI over {fit_n} replications; "
                f"{within} of {len(result.fit)} targets within tolerance (absolute, in the "
                "target's unit).")
    written = [folder / f"{name}.{ext}" for name in ("trials", "best_sets", "fit")
               for ext in ("csv", "md")]
    for rank, values in enumerate(result.sets(), start=1):
        stem = "calibrated" if rank == 1 else f"calibrated_{rank}"
        written.append(write_scenario(
            values, folder / f"{stem}.yaml", stem,
            f"Calibrated to {source}: rank {rank} of the best sets, {fit_n} replications. Only "
            "the fitted parameters are set; every other setting is the baseline's."))
    return written
