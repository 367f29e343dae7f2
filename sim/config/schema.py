"""Hydra configuration: the schema, composing configs, and turning them into parameters.

The schema is the model's own parameter dataclasses (:class:`sim.core.params.Params`) plus the
scenario's name and output options, registered in Hydra's ConfigStore, so that a misspelled key
or a wrong type is refused by Hydra and a value out of range by the dataclasses' own checks.
The parameters are frozen once built, and Hydra merges configs into its schema node by node,
which a frozen dataclass refuses: the ConfigStore holds an unfrozen copy of each
(:func:`hydra_schema`), and the composed config is built into the frozen dataclasses by
:func:`sim.core.params.build`.
Notebooks, apps and tests use :func:`load_config` (Hydra's Compose API); the command line uses
:mod:`sim.config.cli`. Only this module and the command line import Hydra.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, make_dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, get_type_hints

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf, SCMode
from omegaconf.errors import OmegaConfBaseException

from sim.core.costs import Costs
from sim.core.levers import LEVERS, get_setting
from sim.core.params import ParameterError, Params, Run, build
from sim.running.studies import check_dask, check_storage

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
"""The project's ``configs/`` folder (the package is installed in editable mode)."""


@dataclass(frozen=True)
class Output:
    """What a command-line run writes besides ``metrics.csv`` and ``summary.md``."""

    patients_csv: bool = True
    charts: bool = True
    workers: int = 0  # processes for replications; 0 = all local cores


@dataclass(frozen=True)
class Experiment:
    """An experiment (``configs/experiment/NAME.yaml``, run by ``experiments/run.py NAME``):
    its results go to ``results/NAME/``. ``analysis`` is what is done: one of
    :data:`sim.config.experiments.ANALYSES` on a sweep of the system, or a study that runs its
    own cases (validation, calibration). ``parameter`` is the swept setting of a response curve;
    ``baseline`` the scenario others are compared with; ``targets`` a targets file for a
    calibration (``configs/targets/NAME.yaml``), with the number of ``trials``, the best sets to
    ``keep`` (run again on ``confirm_replications`` and ranked by that, if more than the
    search's) and a time limit; ``scenarios``, those a study reruns on each fitted set. A
    budget search spends ``budget`` pounds a year on ``levers`` (names in the lever table) to
    minimise ``objective`` (``delayed_days`` or ``total_cost``), trying ``candidates`` mixes
    and running the ``keep`` best again on ``confirm_replications``. The calibration's and the
    budget search's study is kept in ``storage`` (empty: ``results/NAME/optuna.db``; a
    database URL or ``journal:PATH``, that several workers share) and their replications run
    on the Dask cluster whose scheduler is at ``dask`` (``tcp://HOST:PORT``; empty: local
    cores); see docs/large-study.md."""

    name: str = ""
    analysis: str = ""
    parameter: str = ""
    baseline: str = "baseline"
    targets: str = "england"
    trials: int = 100
    keep: int = 5
    confirm_replications: int = 0
    time_limit_minutes: float = 30.0
    scenarios: List[str] = field(default_factory=list)
    budget: float = 0.0
    objective: str = "delayed_days"
    levers: List[str] = field(default_factory=list)
    candidates: int = 60
    storage: str = ""
    dask: str = ""


@dataclass(frozen=True)
class AppConfig(Params):
    """The full configuration of a run: the model's parameters, a scenario's name (and its
    ``title`` and, for a switch, what it does, ``about``, for people), the unit prices its
    costs are worked out with (``costs``, from ``configs/costs/``), outputs, and the experiment
    it belongs to (if any)."""

    name: str = "baseline"
    title: str = ""
    about: str = ""
    costs: Costs = field(default_factory=Costs)
    output: Output = field(default_factory=Output)
    experiment: Experiment = field(default_factory=Experiment)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.output.workers < 0:
            raise ParameterError("output.workers", self.output.workers,
                                 "an integer >= 0 (0 = all local cores)")
        check_storage(self.experiment.storage)
        check_dask(self.experiment.dask)

    @property
    def params(self) -> Params:
        """The model's parameters alone."""
        return Params(**{f.name: getattr(self, f.name) for f in fields(Params)})


class ConfigError(ValueError):
    """A configuration that cannot be run; the message is one line for the user."""


def job_folder_name(overrides: str) -> str:
    """A sweep job's folder name: its overrides, shortened with a hash when too long for a
    file name (stable, so an interrupted sweep finds its jobs again)."""
    if len(overrides) <= 120:
        return overrides or "default"
    return f"{overrides[:80]}-{hashlib.sha1(overrides.encode()).hexdigest()[:12]}"


def _changes(override_dirname: str) -> str:
    """Hydra's ``override_dirname`` (the overrides that change results, ``key=value`` joined
    by commas) without the scenario and its name, which the run's name already says."""
    items = [item for item in override_dirname.split(",") if item]
    return ",".join(item for item in items
                    if item.partition("=")[0].lstrip("+~") not in ("scenario", "name"))


def run_folder_name(name: str, override_dirname: str = "") -> str:
    """A single run's folder name (under ``results/runs/``, see :data:`RUN_DIR`): the scenario,
    then the overrides that change its results, e.g. ``baseline+acute.beds=400``; shortened
    like a sweep job's."""
    changes = _changes(override_dirname)
    return job_folder_name(f"{name}+{changes}") if changes else name


RUN_DIR = ("results/runs/${run_folder:${name},${hydra.job.override_dirname}}/"
           "${now:%Y-%m-%d_%H-%M-%S}")
"""A single run's default folder, as ``hydra.run.dir``: under ``results/runs/``, named by
:func:`run_folder_name` (``baseline+acute.beds=400``), then the time. ``configs/config.yaml``
says only ``${name}``; :mod:`sim.config.cli` gives Hydra this instead when the command line
names no folder."""


def run_title(name: str, override_dirname: str = "") -> str:
    """A run's title in its summary: ``baseline with acute.beds=400, run.days=365``."""
    changes = _changes(override_dirname)
    return f"{name} with {changes.replace(',', ', ')}" if changes else name


def settle_distribution_kinds(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The config with each distribution whose ``kind`` the overrides change, and whose other
    fields they leave alone, made consistent with its new kind: a ``fixed`` or ``exponential``
    distribution has no ``sd`` (so ``pathways.p3.acute_stay.kind=exponential`` alone keeps the
    mean and drops the lognormal's sd), and only an ``empirical`` one has ``values``. A field
    given in the overrides is left as given (and checked as usual)."""
    given = {str(item).partition("=")[0].lstrip("+~"): str(item).partition("=")[2]
             for item in overrides}
    changes = {}
    for key, value in given.items():
        if not key.endswith(".kind"):
            continue
        node = key[:-len(".kind")]
        kind = value.strip("'\"")
        if kind in ("fixed", "exponential") and f"{node}.sd" not in given:
            changes[f"{node}.sd"] = 0.0
        if kind != "empirical" and f"{node}.values" not in given:
            changes[f"{node}.values"] = []
    if not changes:
        return cfg
    settled = copy.deepcopy(cfg)
    for key, value in changes.items():
        if OmegaConf.select(settled, key, default=None) is not None:
            OmegaConf.update(settled, key, value, merge=False)
    return settled


def keys_that_do_not_change_results() -> list[str]:
    """Settings that do not change what a replication computes (how many to run, what to
    write): left out of sweep job folder names (and so of sweep tables), as they are left out
    of the replication store's fingerprint."""
    run = [f"run.{name}" for name in Run.HOW_MANY]
    output = [f"output.{f.name}" for f in fields(Output)]
    return ["experiment", "title", "about", *run, *output]


def scenario_names() -> list[str]:
    """The scenarios in ``configs/scenario/``."""
    return sorted(p.stem for p in (CONFIG_DIR / "scenario").glob("*.yaml"))


def scenario_text(name: str) -> tuple[str, str]:
    """A scenario file's ``title`` (its name in words if it has none) and ``about``, read from
    the file alone (no composing)."""
    node = OmegaConf.load(CONFIG_DIR / "scenario" / f"{name}.yaml")
    title = node.get("title") or name.replace("_", " ").capitalize()
    return str(title), str(node.get("about") or "")


def scenario_titles() -> dict[str, str]:
    """Every scenario's title, by name: the labels charts and tables show."""
    return {name: scenario_text(name)[0] for name in scenario_names()}


@functools.cache
def scenario_settings(name: str) -> tuple[tuple[str, Any], ...]:
    """The settings a scenario file sets, by dotted name (its name and words aside)."""
    node = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "scenario" / f"{name}.yaml"))
    out: list[tuple[str, Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                walk(f"{prefix}{key}.", child)
        elif prefix not in ("name.", "title.", "about."):
            out.append((prefix[:-1], value))

    walk("", node)
    return tuple(out)


def scenario_is_on(params: Params, name: str) -> bool:
    """Whether ``params`` has every setting the scenario file ``name`` sets (a switch that is
    on, however the system was composed)."""
    for key, value in scenario_settings(name):
        try:
            current = get_setting(params, key)
        except (AttributeError, KeyError, TypeError, IndexError):
            return False
        if isinstance(current, (list, tuple)) and list(current) != value:
            return False
        if not isinstance(current, (list, tuple)) and current != value:
            return False
    return True


def switches_of(levers: Sequence[Any]) -> dict[str, tuple[tuple[tuple[str, Any], ...], str]]:
    """Each switch lever's settings and title (its scenario file's), by the lever's name: what
    a budget search needs of a switch."""
    return {lever.name: (scenario_settings(lever.scenario), scenario_text(lever.scenario)[0])
            for lever in levers if lever.is_switch}


def programmes_on(params: Params) -> tuple[str, ...]:
    """The annual cost items of the switch levers on in ``params`` (seven-day working's
    ``seven_day_working_year``), for its costs (:func:`sim.core.costs.run_costs`)."""
    return tuple(lever.cost for lever in LEVERS
                 if lever.is_switch and lever.cost and scenario_is_on(params, lever.scenario))


def register() -> None:
    """Register the schema as ``schema`` in Hydra's ConfigStore, and the resolvers that
    ``configs/config.yaml`` uses (all idempotent)."""
    ConfigStore.instance().store(name="schema", node=hydra_schema(AppConfig))
    OmegaConf.register_new_resolver("job_folder", job_folder_name, replace=True)
    OmegaConf.register_new_resolver("run_folder", run_folder_name, replace=True)
    OmegaConf.register_new_resolver("keys_that_do_not_change_results",
                                    keys_that_do_not_change_results, replace=True)


@functools.cache
def hydra_schema(cls: type) -> type:
    """An unfrozen copy of the frozen dataclass ``cls`` for Hydra's ConfigStore: the same
    fields, with the same names, defaults and types (each dataclass among them copied in
    turn). Hydra checks keys and types against it; :func:`to_app_config` builds the frozen
    dataclasses, which check the ranges. Each copy has its original's name (Hydra's messages
    say it) and is found in this module as ``RunSchema`` and so on, so that a config holding
    it pickles by reference (a sweep's launcher sends configs to its workers)."""
    hints = get_type_hints(cls)
    specs = []
    for f in fields(cls):
        if f.default_factory is not MISSING:
            default = field(default_factory=functools.partial(_schema_value, f.default_factory))
        else:
            default = field(default=f.default)
        specs.append((f.name, _schema_type(hints[f.name]), default))
    name = f"{cls.__name__}Schema"
    copy_of = make_dataclass(cls.__name__, specs, namespace={"__doc__": cls.__doc__,
                                                     "__module__": __name__,
                                                     "__qualname__": name})
    assert globals().get(name, copy_of) is copy_of, f"two schemas named {name}"
    globals()[name] = copy_of
    return copy_of


def _schema_type(hint: Any) -> Any:
    """A field's type hint in the schema: dataclasses replaced by their schema copies."""
    if is_dataclass(hint):
        return hydra_schema(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        return List[_schema_type(args[0])]  # type: ignore[misc]
    if origin is dict:
        return Dict[args[0], _schema_type(args[1])]  # type: ignore[misc]
    if origin is typing.Union and type(None) in args:
        return Optional[_schema_type(next(a for a in args if a is not type(None)))]
    return hint


def _schema_value(make: Any) -> Any:
    """A default value made by ``make``, with each dataclass in it as its schema copy."""
    return _as_schema(make())


def _as_schema(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        copy_of = hydra_schema(type(value))
        return copy_of(**{f.name: _as_schema(getattr(value, f.name)) for f in fields(value)})
    if isinstance(value, list):
        return [_as_schema(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_schema(v) for k, v in value.items()}
    return value


SCHEMA = hydra_schema(AppConfig)
"""The schema Hydra composes configs into (made when this module is imported, so that every
process that unpickles a config finds its classes)."""


def _unknown_keys(node: DictConfig, schema: type, prefix: str) -> Iterator[str]:
    """Keys of ``node`` that its dataclass does not have (Hydra's '+' can add them)."""
    hints = get_type_hints(schema)
    for key in node.keys():
        if key not in hints:
            yield f"{prefix}{key}"
        elif is_dataclass(hints[key]) and isinstance(node._get_node(key), DictConfig):
            yield from _unknown_keys(node._get_node(key), hints[key], f"{prefix}{key}.")


def to_app_config(cfg: DictConfig) -> AppConfig:
    """Validate a composed config and build the typed :class:`AppConfig` from it."""
    unknown = next(_unknown_keys(cfg, AppConfig, ""), None)
    if unknown is not None:
        raise ConfigError(f"{unknown} is not a setting (added with '+'?); see "
                          "`discharge-sim --cfg job` for every setting and its value")
    try:
        data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True,
                                      structured_config_mode=SCMode.DICT)
        return build(AppConfig, data)
    except ParameterError as error:
        raise ConfigError(str(error)) from None
    except OmegaConfBaseException as error:
        lines = str(error).splitlines()
        where = next((line.strip() for line in lines if line.strip().startswith("full_key")), "")
        raise ConfigError("; ".join(filter(None, [lines[0], where]))) from None


def load_config(overrides: Sequence[str] = (), config_name: str = "config") -> AppConfig:
    """Compose ``configs/`` with command-line style overrides, e.g. ``["services.homecare.staff.count=200"]``."""
    register()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides))
    return to_app_config(settle_distribution_kinds(cfg, overrides))
