"""Run an experiment: a sweep defined in configs/experiment/NAME.yaml, with its analysis.

    .venv/bin/python experiments/run.py scenario_comparison   # every scenario vs the baseline
    .venv/bin/python experiments/run.py homecare_sweep        # response curve over carer numbers
    .venv/bin/python experiments/run.py weekend_rules         # delay by weekday of becoming fit
    .venv/bin/python experiments/run.py weekend_rules run.replications=5   # any Hydra override

The same as ``discharge-sim -m +experiment=NAME``: jobs run in parallel on all local cores
(joblib launcher), each finished replication is kept on disk, and running the same command again
resumes an interrupted sweep. Results go to ``results/NAME/``: ``sweep_results.parquet`` and
``.csv`` (one row per scenario x replication x metric, overrides as columns) and the analysis'
table (``.csv``, ``.md``) and chart (``.png``).
"""

import sys

from sim.config.schema import CONFIG_DIR
from sim.config.cli import main

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in EXPERIMENTS:
        given = sys.argv[1] if len(sys.argv) > 1 else "(none)"
        print(f"experiments/run.py: error: experiment {given!r} is not allowed: one of "
              + ", ".join(EXPERIMENTS), file=sys.stderr)
        sys.exit(2)
    sys.argv = [sys.argv[0], "-m", f"+experiment={sys.argv[1]}", *sys.argv[2:]]
    main()
