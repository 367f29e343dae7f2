"""The ``discharge-sim`` command: a Hydra app over ``configs/``.

    discharge-sim                                  # the default scenario
    discharge-sim acute.beds=400                   # to results/runs/baseline+acute.beds=400/
    discharge-sim scenario=extra_homecare run.replications=10
    discharge-sim services.homecare.staff.count=120 run.days=365 hydra.run.dir=out/hc120
    discharge-sim --cfg job                        # print the resolved config
    discharge-sim -m services.homecare.staff.count=150,175,200   # a sweep, in parallel (joblib launcher)
    discharge-sim -m +experiment=scenario_comparison
    discharge-sim -m hydra/launcher=submitit_slurm hydra.launcher.partition=NAME acute.beds=400,450
    discharge-sim -m hydra/launcher=dask hydra.launcher.address=tcp://HOST:8786 acute.beds=400,450
    discharge-sim collect results/sweeps/DATE-TIME   # collect a sweep folder on demand

Each run writes ``metrics.csv``, ``replications.csv``, ``daily.csv``, ``patients.csv``,
``summary.md``, two PNG charts and ``provenance.json`` (seed, package versions, git revision)
into its folder, next to Hydra's ``.hydra/config.yaml`` (the exact resolved config), and prints
the summary. The folder is ``hydra.run.dir`` if given, else named from the scenario and the
overrides that change results (:data:`~sim.config.schema.RUN_DIR`). Finished replications are
kept in ``replications/`` as they finish; running again into the same folder skips them. A
sweep is collected into ``sweep_results.parquet`` / ``.csv`` when it ends. Where a sweep's jobs
run (local cores, SLURM, Dask) is the launcher's choice: :mod:`sim.config.launchers`.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Sequence

import hydra
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sim.config.schema import (CONFIG_DIR, RUN_DIR, AppConfig, ConfigError, load_config,
                               programmes_on, register,
                               run_title, settle_distribution_kinds, to_app_config)
from sim.config.launchers import launcher_error_line, register_launchers
from sim.running.studies import StudyError
from sim.running.files import write_atomic
from sim.core.params import ParameterError
from sim.running.folders import (FolderBusy, OutputFolderError, describe, exclusive,
                                 file_system_error)
from sim.running.provenance import provenance
from sim.reporting.report import pathway_title, queue_warnings, summary_markdown, write_tables
from sim.running.runner import check_before_run, default_workers, run_replications
from sim.running.store import ReplicationStore, StoreMismatch

register()
register_launchers()


def run_job(cfg: DictConfig) -> Path:
    """Run the configured scenario's replications and write every output; returns the folder.

    Everything that can be refused is checked before the folder is touched: the settings, the
    system (:func:`~sim.running.runner.check_before_run`), another run using the folder, and
    replications of another configuration in it. Only then are ``.hydra/config.yaml`` and
    ``overrides.yaml`` written (``hydra.output_subdir`` is null, so Hydra writes neither), so a
    refused run changes nothing in an existing folder.
    """
    hydra_config = HydraConfig.get()
    out = Path(hydra_config.runtime.output_dir)
    in_sweep = hydra_config.mode == RunMode.MULTIRUN
    setting = "hydra.sweep.dir" if in_sweep else "hydra.run.dir"
    cfg = settle_distribution_kinds(cfg, list(hydra_config.overrides.task))
    config = to_app_config(cfg)
    # In a sweep the launcher runs jobs in parallel already: one process per job.
    workers = 1 if in_sweep else (config.output.workers
                                  or default_workers(config.run.replications))
    check_before_run(config.params, workers)
    title = run_title(config.name, hydra_config.job.override_dirname)
    # A sweep's job waits for a job of another sweep into the same folder; a run is refused.
    with exclusive(out, setting, wait=in_sweep):
        store = None
        try:
            store = ReplicationStore(out / "replications", config.params,
                                     patients=config.output.patients_csv)
            _record_config(out, cfg)  # the run is accepted
            (out / "error.txt").unlink(missing_ok=True)
            return _run_and_write(config, out, store, title, workers, in_sweep)
        except OSError as error:
            if file_system_error(error) is None:
                raise
            kept = ""
            if store is not None and store.finished():
                kept = (f"; the {len(store.finished())} finished replications are kept in "
                        f"{store.folder}")
            raise OutputFolderError(describe(error, out, setting, kept)) from None


def _record_config(out: Path, cfg: DictConfig) -> None:
    """What Hydra writes into ``.hydra/`` (the config, Hydra's own config, the overrides),
    written only once the run is accepted, each file atomically; ``overrides.yaml`` last, as
    sweeps take it to mark the jobs that ran (:func:`sim.running.sweep.job_folders`)."""
    hydra_cfg = HydraConfig.instance().cfg
    assert hydra_cfg is not None
    files = {"config.yaml": cfg, "hydra.yaml": hydra_cfg,
             "overrides.yaml": hydra_cfg.hydra.overrides.task}
    for name, node in files.items():
        text = OmegaConf.to_yaml(node)
        write_atomic(out / ".hydra" / name, lambda p: p.write_text(text, encoding="utf-8"))


def _run_and_write(config: AppConfig, out: Path, store: ReplicationStore, title: str,
                   workers: int, in_sweep: bool) -> Path:
    if config.output.charts:  # imported while the replications run, on a core they leave idle
        threading.Thread(target=importlib.import_module, args=("sim.reporting.charts",),
                         daemon=True).start()
    results = run_replications(config.params, workers=workers, store=store, progress=True,
                               costs=config.costs, programmes=programmes_on(config.params))
    record = provenance(config.run.seed, len(results.runs))  # as run, after any precision rule
    record["command"] = [item for item in record["command"] if item != RUN_DIR_OVERRIDE]
    if in_sweep:  # a job's process was started by the launcher: its command says little
        hydra_config = HydraConfig.get()
        record["launcher"] = hydra_config.runtime.choices.get("hydra/launcher")
        record["overrides"] = list(hydra_config.overrides.task)
    write_atomic(out / "provenance.json", lambda p: p.write_text(json.dumps(record, indent=1)))
    write_tables(results, out, patients=config.output.patients_csv)
    summary = summary_markdown(results, title)
    for warning in queue_warnings(results):
        job = f" ({out.name})" if in_sweep else ""
        print(f"discharge-sim: warning{job}: {warning}", file=sys.stderr)
    write_atomic(out / "summary.md", lambda p: p.write_text(summary))
    if config.output.charts:
        from sim.reporting import charts
        pathways = {k: pathway_title(k, config.params) for k in config.params.pathways}
        charts.delayed_days_by_pathway(results.metrics, pathways,
                                       out / "delayed_days_by_pathway.png", title)
        charts.fit_in_hospital_over_time(results.daily, config.run.warmup_days,
                                        out / "fit_in_hospital.png", title)
    if not in_sweep:
        print(summary)
    print(f"Outputs: {out}")
    return out


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    hydra_config = HydraConfig.get()
    out = Path(hydra_config.runtime.output_dir)
    try:
        run_job(cfg)
    except USER_ERRORS as error:
        message = one_line(error)
        print(f"discharge-sim: error: {message}", file=sys.stderr)
        if hydra_config.mode != RunMode.MULTIRUN:
            sys.exit(2)
        # In a sweep the other jobs go on; the sweep's end reports this one and exits 2.
        try:
            write_atomic(out / "error.txt", lambda p: p.write_text(message + "\n"))
        except OSError:
            pass  # the folder cannot be written: the message above is all there is


USER_ERRORS = (ConfigError, ParameterError, StoreMismatch, FolderBusy, OutputFolderError,
               StudyError, HydraException, OmegaConfBaseException)
"""Errors in what the user asked for: reported in one line, without a traceback."""


def one_line(error: BaseException) -> str:
    """An error and its cause as one line, without OmegaConf's type details."""
    text = str(error)
    if error.__cause__ is not None and str(error.__cause__) not in text:
        text += "\n" + str(error.__cause__)
    lines = [line.strip() for line in text.splitlines()]
    if "Config search path:" in lines:
        lines = lines[:lines.index("Config search path:")]
    keep = [line.rstrip(":") for line in lines if line and not line.startswith(
        ("reference_type", "object_type", "Set the environment variable HYDRA_FULL_ERROR"))]
    return "; ".join(keep)


def config_or_exit(overrides: Sequence[str], program: str) -> AppConfig:
    """The composed config for a script (experiments/); an error in the overrides is one line
    and exit status 2, as on the command line."""
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        return load_config(overrides)
    except Exception as error:
        message = user_error_line(error)
        if message is None:
            raise
        print(f"{program}: error: {message}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    """The console command. Hydra is asked to raise errors rather than print them, so that an
    error in the user's input becomes one line and exit status 2, while a bug still shows its
    full traceback."""
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    if sys.argv[1:2] == ["forecast"]:  # discharge-sim forecast snapshot=FILE weeks=8
        from sim.config.forecast_command import main as forecast
        forecast(sys.argv[2:])
        return
    if sys.argv[1:2] == ["collect"]:  # discharge-sim collect SWEEP_DIR
        from sim.config.collect_command import main as collect
        collect(sys.argv[2:])
        return
    arguments = _parsed_arguments(sys.argv[1:])
    multirun = arguments is not None and arguments.multirun
    if arguments is not None and not multirun and not _names_run_dir(arguments.overrides):
        sys.argv = [*sys.argv, RUN_DIR_OVERRIDE]
    if multirun:
        from sim.running.workers import use_in_joblib_workers
        use_in_joblib_workers()  # sweep workers end with this process
    try:
        _hydra_main()
    except Exception as error:
        message = user_error_line(error, multirun)
        if message is None:
            raise
        print(f"discharge-sim: error: {message}", file=sys.stderr)
        sys.exit(2)


RUN_DIR_OVERRIDE = f"hydra.run.dir='{RUN_DIR}'"
"""Given to Hydra when the command line names no run folder: ``configs/config.yaml`` names it
from the scenario alone, which would put ``discharge-sim acute.beds=400`` in the baseline's
folder. It is left out of the command recorded in ``provenance.json``."""


def _names_run_dir(overrides: Sequence[str]) -> bool:
    """Whether the overrides choose the run's folder (``hydra.run.dir=...``)."""
    return any(item.partition("=")[0].lstrip("+~") == "hydra.run.dir" for item in overrides)


def _parsed_arguments(argv: Sequence[str]):
    """Hydra's own reading of the command line, or None if Hydra will refuse it."""
    from hydra._internal.utils import get_args_parser
    if "--version" in argv:  # argparse would print it here
        return None
    parser = get_args_parser()

    def refuse(message: str) -> None:
        raise ValueError(message)

    parser.error = refuse  # type: ignore[method-assign]  # Hydra reports it in its turn
    try:
        return parser.parse_args(list(argv))
    except (ValueError, SystemExit):
        return None


def user_error_line(error: BaseException, multirun: bool = False) -> str | None:
    """One line for an error in what the user asked for or gave (settings, a scenario file, an
    output folder); None for anything else, which is a bug and keeps its traceback."""
    if isinstance(error, OverrideParseException):
        return _override_error_line(error)
    launcher_problem = launcher_error_line(error)
    if launcher_problem is not None:
        return launcher_problem
    if isinstance(error, USER_ERRORS):
        return one_line(error)
    if isinstance(error, yaml.YAMLError):
        return _yaml_error_line(error)
    problem = file_system_error(error)
    if problem is not None:
        setting = "hydra.sweep.dir" if multirun else "hydra.run.dir"
        return describe(problem, None, setting)
    return None


def _override_error_line(error: OverrideParseException) -> str:
    """Hydra's lexer message made plain, naming the override it could not read."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    parser = OverridesParser.create()
    arguments = _parsed_arguments(sys.argv[1:])
    items = arguments.overrides if arguments is not None else [
        item for item in sys.argv[1:] if not item.startswith("-")]
    culprit, reason = None, ""
    for item in items:
        try:
            parser.parse_overrides([item])
        except OverrideParseException as problem:
            culprit = item
            reason = " (it has no '=')" if "missing EQUAL" in str(problem) else ""
            break
    what = f"the override {culprit!r}" if culprit else "an override"
    return (f"{what} cannot be read{reason}: write key=value, with balanced brackets ([1,2]) "
            "and plain ASCII outside quotes; put any other text in quotes (key='text')")


def _yaml_error_line(error: yaml.YAMLError) -> str:
    """A config file that is not valid YAML: the file, the line and what to fix."""
    # Where the faulty construct begins (an unclosed bracket's line), else where it failed.
    mark = getattr(error, "context_mark", None) or getattr(error, "problem_mark", None)
    where = f"{mark.name}, line {mark.line + 1}" if mark is not None else "a config file"
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    advice = "fix the YAML there"
    if "'\\t'" in problem or "\t" in problem:
        advice = "indent with spaces, not tabs"
    elif "']'" in problem or "'}'" in problem:
        advice = "close the bracket"
    return f"{where} is not valid YAML ({problem}): {advice}"


if __name__ == "__main__":
    main()
