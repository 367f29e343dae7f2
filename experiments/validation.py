"""Validation report: the model against queueing theory, Little's law and the ciw simulator.

    .venv/bin/python experiments/validation.py [replications, default 20]

Writes results/validation/validation.csv and .md (case, quantity, reference value, simulated
mean and confidence interval, half-width, pass/fail) and validation.png (each case's relative
error with its interval). The intervals are Bonferroni-adjusted so that all of them hold together
with 99% confidence. Exits non-zero if any case fails. The same cases run in CI (tests/test_validation.py).
"""

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sim.reporting.analysis import validation_chart, write_table
from sim.running.runner import default_workers
from sim.checks.validation import run_all

if __name__ == "__main__":
    given = sys.argv[1] if len(sys.argv) > 1 else "20"
    if not given.isdigit() or int(given) < 2:
        print(f"validation.py: error: replications={given!r} is not allowed: an integer >= 2",
              file=sys.stderr)
        sys.exit(2)
    replications = int(given)
    folder = Path("results/validation")
    with ProcessPoolExecutor(default_workers(replications)) as pool:
        table = run_all(replications, workers=pool.map)
    passed = int(table["pass"].sum())
    write_table(table, folder, "validation",
                f"# Validation\n\n{passed} of {len(table)} cases pass: the reference value lies "
                "inside the simulation's confidence interval over replications (for ciw, the "
                "interval of the difference of the two simulators' means; for Little's law, of "
                "the paired difference). Each interval is at the Bonferroni level "
                f"{table['ci_level'].iloc[0]:.4f}, so that all {len(table)} hold together with "
                "99% confidence.")
    validation_chart(table, folder / "validation.png")
    print(table.to_string(index=False))
    print(f"\n{passed} of {len(table)} cases pass. Report: {folder}/validation.md, validation.png")
    sys.exit(0 if passed == len(table) else 1)
