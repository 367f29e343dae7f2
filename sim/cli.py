"""The ``discharge-sim`` command: a Hydra app over ``configs/``.

    discharge-sim                                  # the default scenario
    discharge-sim scenario=extra_homecare run.replications=10
    discharge-sim homecare.carers=120 run.days=365 hydra.run.dir=out/hc120
    discharge-sim --cfg job                        # print the resolved config

Writes ``metrics.csv``, ``replications.csv``, ``daily.csv``, ``patients.csv``, ``summary.md``
and two PNG charts into the run directory, and prints the summary.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sim.config import CONFIG_DIR, ConfigError, register, to_app_config
from sim.report import summary_markdown, write_atomic, write_tables
from sim.runner import run_replications

register()


def run_job(cfg: DictConfig) -> Path:
    """Run the configured scenario's replications and write every output; returns the folder."""
    config = to_app_config(cfg)
    out = Path(HydraConfig.get().runtime.output_dir)
    results = run_replications(config.params, workers=config.output.workers or None)
    write_tables(results, out, patients=config.output.patients_csv)
    summary = summary_markdown(results, config.name)
    write_atomic(out / "summary.md", lambda p: p.write_text(summary))
    if config.output.charts:
        from sim import plots
        plots.delayed_days_by_pathway(results.metrics, out / "delayed_days_by_pathway.png",
                                      config.name)
        plots.fit_in_hospital_over_time(results.daily, config.run.warmup_days,
                                        out / "fit_in_hospital.png", config.name)
    print(summary)
    print(f"Outputs: {out}")
    return out


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        run_job(cfg)
    except ConfigError as error:
        print(f"discharge-sim: error: {error}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
