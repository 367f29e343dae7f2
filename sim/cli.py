"""The ``discharge-sim`` command: a Hydra app over ``configs/``.

    discharge-sim                                  # the default scenario
    discharge-sim scenario=extra_homecare run.replications=10
    discharge-sim homecare.carers=120 run.days=365 hydra.run.dir=out/hc120
    discharge-sim --cfg job                        # print the resolved config
    discharge-sim -m homecare.carers=150,175,200   # a sweep, in parallel (joblib launcher)
    discharge-sim -m +experiment=scenario_comparison

Each run writes ``metrics.csv``, ``replications.csv``, ``daily.csv``, ``patients.csv``,
``summary.md`` and two PNG charts into its folder, and prints the summary. Finished
replications are kept in ``replications/`` as they finish; running again into the same folder
skips them. A sweep is collected into ``sweep_results.parquet`` / ``.csv`` when it ends.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sim.config import CONFIG_DIR, ConfigError, register, to_app_config
from sim.files import write_atomic
from sim.params import ParameterError
from sim.report import summary_markdown, write_tables
from sim.runner import ReplicationStore, StoreMismatch, run_replications

register()


def run_job(cfg: DictConfig) -> Path:
    """Run the configured scenario's replications and write every output; returns the folder."""
    config = to_app_config(cfg)
    hydra_config = HydraConfig.get()
    out = Path(hydra_config.runtime.output_dir)
    in_sweep = hydra_config.mode == RunMode.MULTIRUN
    # In a sweep the launcher runs jobs in parallel already: one process per job.
    workers = 1 if in_sweep else (config.output.workers or None)
    store = ReplicationStore(out / "replications", config.params,
                             keep_patients=config.output.patients_csv)
    results = run_replications(config.params, workers=workers, store=store, progress=True)
    write_tables(results, out, patients=config.output.patients_csv)
    summary = summary_markdown(results, config.name)
    write_atomic(out / "summary.md", lambda p: p.write_text(summary))
    if config.output.charts:
        from sim import plots
        plots.delayed_days_by_pathway(results.metrics, out / "delayed_days_by_pathway.png",
                                      config.name)
        plots.fit_in_hospital_over_time(results.daily, config.run.warmup_days,
                                        out / "fit_in_hospital.png", config.name)
    if not in_sweep:
        print(summary)
    print(f"Outputs: {out}")
    return out


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        run_job(cfg)
    except (ConfigError, ParameterError, StoreMismatch) as error:
        print(f"discharge-sim: error: {error}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
