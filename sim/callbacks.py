"""A Hydra callback that collects a sweep into one tidy table when the multirun ends, and runs
the experiment's analysis (table and chart) on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sim.analysis import run_analysis
from sim.sweep import collect


class CollectSweep(Callback):
    """``analysis``: none, ``scenario_comparison``, ``weekend_rules`` or ``response_curve``
    (with ``parameter``, the swept key, e.g. ``homecare.carers``)."""

    def __init__(self, analysis: Optional[str] = None, parameter: Optional[str] = None) -> None:
        self.analysis = analysis
        self.parameter = parameter

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table = collect(sweep_dir)
        print(f"Collected {table['job'].nunique()} runs, {len(table):,} rows: "
              f"{sweep_dir / 'sweep_results.parquet'} (and .csv)")
        if self.analysis:
            run_analysis(self.analysis, table, sweep_dir, self.parameter)
            print(f"Analysis {self.analysis}: tables and chart in {sweep_dir}")
