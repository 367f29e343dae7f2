"""Calibration check: the default system's outputs against the published English figures.

    .venv/bin/python experiments/calibration.py [overrides, e.g. run.replications=20]

Runs the configured system (default 10 replications) and writes results/calibration/
calibration.md and .csv: each target, its source, and the model's mean with 95% CI.
docs/calibration.md explains which inputs come from sources and which were tuned.
"""

import sys
from pathlib import Path

import pandas as pd

from sim.reporting.tables import write_table
from sim.config.cli import config_or_exit
from sim.running.runner import run_replications

TARGETS = [  # metric, published figure, source
    ("fit_in_hospital_share", "about 0.13", "Health Foundation, Dec 2022: >13,000 of ~100,000 G&A beds"),
    ("delay_mean.all", "about 1.3 days", "Health Foundation, Dec 2022: mean wait, all patients"),
    ("delay_mean.p0", "well under 1 day", "same source"),
    ("delay_mean.p1", "a couple of days", "same source"),
    ("delay_mean.p2", "about 1 week", "same source"),
    ("delay_mean.p3", "1-3 weeks", "same source"),
    ("discharge_share.p0", "at least 0.50", "DHSC hospital discharge guidance"),
    ("discharge_share.p1", "about 0.45", "DHSC hospital discharge guidance"),
    ("discharge_share.p2", "about 0.04", "DHSC hospital discharge guidance"),
    ("discharge_share.p3", "about 0.01", "DHSC hospital discharge guidance"),
    ("weekend_discharge_ratio", "about 0.6", "NHS England: weekend discharges ~40% below weekdays"),
    ("acute_occupancy", "0.90-0.95", "typical English G&A occupancy"),
    ("care_home.utilisation", "0.85 or more", "ONS 80-85% of all beds; our pool is the places the system buys"),
]

if __name__ == "__main__":
    config = config_or_exit(["run.replications=10", *sys.argv[1:]], "calibration.py")
    results = run_replications(config.params, progress=True)
    s = results.summary().set_index("metric")
    table = pd.DataFrame([{
        "metric": m, "target": target, "source": source, "model_mean": s.loc[m, "mean"],
        "ci95_low": s.loc[m, "ci_low"], "ci95_high": s.loc[m, "ci_high"]}
        for m, target, source in TARGETS])
    n = len(results.runs)
    write_table(table, Path("results/calibration"), "calibration",
                f"# Calibration check: {config.name}\n\nModel mean and 95% CI over {n} "
                f"replications of {config.run.days:g} days ({config.run.warmup_days:g} warm-up).")
    print(table.to_string(index=False))
