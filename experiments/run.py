"""Run an experiment: ``configs/experiment/NAME.yaml``, with any Hydra overrides after it.

    .venv/bin/python experiments/run.py scenario_comparison   # every scenario vs the baseline
    .venv/bin/python experiments/run.py homecare_sweep        # response curve over carer numbers
    .venv/bin/python experiments/run.py weekend_rules         # delay by weekday of becoming fit
    .venv/bin/python experiments/run.py warmup                # how long a warm-up is needed
    .venv/bin/python experiments/run.py validation            # queueing theory, Little's law, ciw
    .venv/bin/python experiments/run.py weekend_rules run.replications=5   # any Hydra override

Everything an experiment writes goes to ``results/NAME/``. Sweeps run their jobs in parallel on
all local cores, keep each finished replication on disk and resume when run again; see
:mod:`sim.config.experiments`.
"""

from sim.config.experiments import main

if __name__ == "__main__":
    main()
