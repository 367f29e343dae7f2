"""``discharge-sim collect``: collect a sweep folder on demand.

    discharge-sim collect results/sweeps/2026-12-08_10-00-00

A sweep is collected when it ends, by the process that launched it. This collects one at any
time: after the fact, when its jobs ran on other machines or launches, or while they still run
(only finished replications are read: each is written whole, its metrics last). Every job in
the folder is read, each run once, identified by its job folder and replication number; it
writes ``sweep_results.parquet`` / ``.csv`` there and says how many of each job's replications
have finished. A fault (no such folder, nothing finished) is one line and exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from sim.config.callbacks import job_config, priced
from sim.config.schema import keys_that_do_not_change_results
from sim.running.sweep import collect, job_folders

USAGE = "usage: discharge-sim collect SWEEP_DIR   (a folder a sweep (-m) wrote: hydra.sweep.dir)"


def progress(sweep_dir: Path, table: pd.DataFrame) -> list[str]:
    """One line per job that has not finished all its replications, or failed."""
    lines = []
    done = table.groupby("job")["replication"].nunique() if not table.empty else pd.Series()
    for job in job_folders(sweep_dir):
        name = str(job.relative_to(sweep_dir))
        if (job / "error.txt").is_file():
            lines.append(f"{name}: failed: {(job / 'error.txt').read_text().strip()}")
            continue
        wanted = job_config(job).run.replications
        have = int(done.get(name, 0))
        if have < wanted:
            lines.append(f"{name}: {have} of {wanted} replications finished")
    return lines


def main(argv: Sequence[str]) -> None:
    """``discharge-sim collect SWEEP_DIR``."""
    if len(argv) != 1 or argv[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    sweep_dir = Path(argv[0])
    if not sweep_dir.is_dir():
        print(f"discharge-sim collect: error: {sweep_dir} is not a folder; {USAGE[7:]}",
              file=sys.stderr)
        sys.exit(2)
    try:
        table = collect(sweep_dir, ignored=keys_that_do_not_change_results(), priced=priced)
    except FileNotFoundError as error:
        print(f"discharge-sim collect: error: {error} (no job has finished a replication)",
              file=sys.stderr)
        sys.exit(2)
    runs = table[["job", "replication"]].drop_duplicates()
    print(f"Collected {table['job'].nunique()} jobs, {len(runs)} runs, {len(table):,} rows: "
          f"{sweep_dir / 'sweep_results.parquet'} (and .csv)")
    for line in progress(sweep_dir, table):
        print(f"  {line}")
