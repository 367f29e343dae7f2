"""Warm-up analysis: how long the model takes to reach its steady state from the empty hospital.

    .venv/bin/python experiments/warmup.py [overrides, e.g. scenario=winter_surge run.replications=10]

Runs the configured system with no warm-up (default 10 replications of ``run.days``), plots the
daily midnight count of medically fit patients in hospital (the slowest-settling output) with
its cumulative mean and 7-day moving average, and marks the MSER-5 truncation point (White 1997).
Choose ``run.warmup_days`` at or beyond it. The default, 112 days, is longer than MSER-5 asks
for the fit count (about 35 days) because the step-down beds fill more slowly: with 56 days the
Little's-law check (experiments/validation.py) still saw them short of their steady state. Writes
results/warmup/warmup.png and warmup.md.
"""

import sys
from pathlib import Path

from sim.reporting.analysis import warmup_analysis
from sim.config.cli import config_or_exit
from sim.running.files import write_atomic
from sim.core.params import override
from sim.running.runner import run_replications

if __name__ == "__main__":
    config = config_or_exit(["run.replications=10", *sys.argv[1:]], "warmup.py")
    params = override(config.params, {"run.warmup_days": 0.0})
    results = run_replications(params, progress=True)
    folder = Path("results/warmup")
    suggested = warmup_analysis(results.daily, folder, config.run.warmup_days)
    note = (f"# Warm-up analysis: {config.name}\n\n{len(results.runs)} replications of "
            f"{params.run.days:g} days from an empty hospital. MSER-5 suggests a warm-up of "
            f"{suggested} days; the configured warm-up is {config.run.warmup_days:g} days"
            + (" (long enough).\n" if config.run.warmup_days >= suggested else " (too short).\n"))
    write_atomic(folder / "warmup.md", lambda p: p.write_text(note))
    print(note + f"Chart: {folder / 'warmup.png'}")
