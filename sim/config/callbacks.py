"""A Hydra callback that collects a sweep into one tidy table when the multirun ends, and runs
the experiment's analysis (table and chart) on it."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from sim.config.schema import (SCHEMA, AppConfig, keys_that_do_not_change_results,
                               programmes_on, to_app_config)
from sim.core.costs import with_costs
from sim.reporting.analysis import AnalysisError
from sim.running.sweep import collect, job_folders


def job_config(job: Path) -> AppConfig:
    """A sweep job's configuration, from the config it recorded when it ran."""
    return to_app_config(OmegaConf.merge(OmegaConf.structured(SCHEMA),
                                         OmegaConf.load(job / ".hydra" / "config.yaml")))


def priced(job: Path, metrics: pd.DataFrame) -> pd.DataFrame:
    """A sweep job's replications' metrics with their costs, at the job's own prices."""
    config = job_config(job)
    return with_costs(metrics, config.params, config.costs, programmes_on(config.params))


class CollectSweep(Callback):
    """Collects the sweep's finished replications into ``sweep_results.parquet`` / ``.csv``,
    then runs the experiment's analysis (``experiment.analysis`` in the config), if any."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        since = getattr(self, "started", None)
        failed = [job / "error.txt" for job in job_folders(sweep_dir, since)
                  if (job / "error.txt").is_file()]
        for path in failed:
            print(f"discharge-sim: error in {path.parent.relative_to(sweep_dir)}: "
                  f"{path.read_text().strip()}", file=sys.stderr)
        try:
            table = collect(sweep_dir, since=since, ignored=keys_that_do_not_change_results(),
                            priced=priced)
        except FileNotFoundError:
            table = None
        if failed or table is None:
            print(f"discharge-sim: {len(failed)} of the sweep's jobs failed; the finished "
                  f"replications are kept in {sweep_dir}", file=sys.stderr)
            raise SystemExit(2)
        print(f"Collected {table['job'].nunique()} runs, {len(table):,} rows: "
              f"{sweep_dir / 'sweep_results.parquet'} (and .csv)")
        app_config = to_app_config(OmegaConf.merge(
            OmegaConf.structured(SCHEMA), {k: v for k, v in config.items() if k != "hydra"}))
        name = app_config.experiment.analysis
        if name:
            try:
                from sim.config.experiments import analyse  # charts: only when a sweep ends
                analyse(app_config, table, sweep_dir)
            except AnalysisError as error:
                print(f"discharge-sim: error: {error}", file=sys.stderr)
                raise SystemExit(2)
            print(f"Analysis {name}: tables and chart in {sweep_dir}")
