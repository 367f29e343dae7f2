"""The ``discharge-sim`` command: a Hydra app over ``configs/``.

    discharge-sim                                  # the default scenario
    discharge-sim scenario=extra_homecare run.replications=10
    discharge-sim services.homecare.staff.count=120 run.days=365 hydra.run.dir=out/hc120
    discharge-sim --cfg job                        # print the resolved config
    discharge-sim -m services.homecare.staff.count=150,175,200   # a sweep, in parallel (joblib launcher)
    discharge-sim -m +experiment=scenario_comparison

Each run writes ``metrics.csv``, ``replications.csv``, ``daily.csv``, ``patients.csv``,
``summary.md``, two PNG charts and ``provenance.json`` (seed, package versions, git revision)
into its folder, next to Hydra's ``.hydra/config.yaml`` (the exact resolved config), and prints
the summary. Finished
replications are kept in ``replications/`` as they finish; running again into the same folder
skips them. A sweep is collected into ``sweep_results.parquet`` / ``.csv`` when it ends.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Sequence

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from sim.config.schema import CONFIG_DIR, AppConfig, ConfigError, load_config, register, to_app_config
from sim.running.files import write_atomic
from sim.core.params import ParameterError
from sim.running.provenance import provenance
from sim.reporting.report import pathway_title, summary_markdown, write_tables
from sim.running.runner import run_replications
from sim.running.store import ReplicationStore, StoreMismatch

register()


def run_job(cfg: DictConfig) -> Path:
    """Run the configured scenario's replications and write every output; returns the folder."""
    config = to_app_config(cfg)
    hydra_config = HydraConfig.get()
    out = Path(hydra_config.runtime.output_dir)
    in_sweep = hydra_config.mode == RunMode.MULTIRUN
    # In a sweep the launcher runs jobs in parallel already: one process per job.
    workers = 1 if in_sweep else (config.output.workers or None)
    store = ReplicationStore(out / "replications", config.params)
    results = run_replications(config.params, workers=workers, store=store, progress=True)
    record = provenance(config.run.seed, len(results.runs))  # as run, after any precision rule
    write_atomic(out / "provenance.json", lambda p: p.write_text(json.dumps(record, indent=1)))
    write_tables(results, out, patients=config.output.patients_csv)
    if config.output.patients_csv and results.loaded:
        print(f"discharge-sim: note: patients.csv leaves out replications {results.loaded}, "
              "finished in an earlier run (their patient logs are not kept); delete "
              f"{out / 'replications'} to simulate them again", file=sys.stderr)
    summary = summary_markdown(results, config.name)
    write_atomic(out / "summary.md", lambda p: p.write_text(summary))
    if config.output.charts:
        from sim.reporting import charts
        pathways = {k: pathway_title(k, config.params) for k in config.params.pathways}
        charts.delayed_days_by_pathway(results.metrics, pathways,
                                       out / "delayed_days_by_pathway.png", config.name)
        charts.fit_in_hospital_over_time(results.daily, config.run.warmup_days,
                                        out / "fit_in_hospital.png", config.name)
    if not in_sweep:
        print(summary)
    print(f"Outputs: {out}")
    return out


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    hydra_config = HydraConfig.get()
    error_file = Path(hydra_config.runtime.output_dir) / "error.txt"
    error_file.unlink(missing_ok=True)
    try:
        run_job(cfg)
    except USER_ERRORS as error:
        message = one_line(error)
        print(f"discharge-sim: error: {message}", file=sys.stderr)
        if hydra_config.mode != RunMode.MULTIRUN:
            sys.exit(2)
        # In a sweep the other jobs go on; the sweep's end reports this one and exits 2.
        write_atomic(error_file, lambda p: p.write_text(message + "\n"))


USER_ERRORS = (ConfigError, ParameterError, StoreMismatch, HydraException, OmegaConfBaseException)
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
    except USER_ERRORS as error:
        print(f"{program}: error: {one_line(error)}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    """The console command. Hydra is asked to raise errors rather than print them, so that an
    error in the user's input becomes one line and exit status 2, while a bug still shows its
    full traceback."""
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        _hydra_main()
    except USER_ERRORS as error:
        print(f"discharge-sim: error: {one_line(error)}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
