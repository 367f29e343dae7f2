"""Run the same small sweep through every launcher and check that the collected tables agree.

    .venv/bin/python experiments/same_sweep.py                       # every launcher it can use
    .venv/bin/python experiments/same_sweep.py --dask-address tcp://HOST:8786 --partition debug
    .venv/bin/python experiments/same_sweep.py --launchers joblib,dask --out results/same_sweep

The sweep is two scenarios (baseline, extra_homecare) x three replications of a small, short
system, run with ``discharge-sim -m`` through joblib (local cores), submitit_local, SLURM
(``submitit_slurm``, if ``sinfo`` finds a partition that is up) and Dask (the scheduler at
``--dask-address``, else a local cluster), each into ``OUT/LAUNCHER/``. Each sweep's table
(``sweep_results.parquet``) must equal joblib's exactly, value for value; the report says, for
each launcher, the time, the runs, whether the table is identical, and where the jobs ran (the
hosts, processes and SLURM array tasks their ``provenance.json`` recorded). Needs the cluster
extra (``pip install -e ".[cluster]"``). Exit status 1 if any table differs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

EXE = Path(sys.executable).parent / "discharge-sim"
SWEEP = ["scenario=baseline,extra_homecare", "run.replications=3", "run.days=60",
         "run.warmup_days=14", "admissions.per_day=10", "acute.beds=106", "output.charts=false",
         "output.patients_csv=false"]
"""Two scenarios x three replications of a fifth of the default system, on a short run."""
LAUNCHERS = ("joblib", "submitit_local", "submitit_slurm", "dask")


def slurm_partition() -> str | None:
    """The default (else the first) SLURM partition that is up, or None without SLURM."""
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%P %a"], capture_output=True, text=True,
                              timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    up = [line.split()[0] for line in done.stdout.splitlines() if line.endswith(" up")]
    if not up:
        return None
    default = [name for name in up if name.endswith("*")]
    return (default or up)[0].rstrip("*")


def launcher_settings(launcher: str, partition: str | None, dask_address: str | None,
                      workers: int) -> list[str]:
    """The command-line settings that choose ``launcher``."""
    settings = [f"hydra/launcher={launcher}"]
    if launcher == "joblib":
        settings.append(f"hydra.launcher.n_jobs={workers}")
    if launcher == "submitit_slurm":
        settings += [f"hydra.launcher.partition={partition}", "hydra.launcher.cpus_per_task=1",
                     "hydra.launcher.timeout_min=20", f"hydra.launcher.array_parallelism={workers}"]
    if launcher == "submitit_local":
        settings.append("hydra.launcher.timeout_min=20")
    if launcher == "dask":
        settings.append(f"hydra.launcher.address={dask_address}" if dask_address
                        else f"hydra.launcher.n_workers={workers}")
    return settings


def run_sweep(launcher: str, folder: Path, settings: list[str]) -> tuple[float, str]:
    """Run the sweep through ``launcher`` into ``folder``: the seconds it took and its stderr."""
    started = time.perf_counter()
    done = subprocess.run([str(EXE), "-m", *settings, *SWEEP, f"hydra.sweep.dir={folder}"],
                          capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{launcher}: the sweep failed (exit {done.returncode}):\n"
                           + done.stderr[-2000:])
    return seconds, done.stderr


def executed_by(folder: Path) -> list[dict]:
    """Where each job of a sweep ran, from its ``provenance.json``."""
    return [json.loads(path.read_text())["executed_by"]
            for path in sorted(folder.glob("*/provenance.json"))]


def engine_evidence(records: list[dict]) -> str:
    """The hosts, processes and SLURM array tasks that ran a sweep's jobs, in a few words."""
    hosts = sorted({r["host"] for r in records})
    pids = sorted({r["pid"] for r in records})
    tasks = sorted({f"{r['slurm_array_job_id']}_{r['slurm_array_task_id']}" for r in records
                    if "slurm_array_task_id" in r})
    text = f"hosts {','.join(hosts)}; pids {','.join(map(str, pids))}"
    return text + (f"; SLURM array tasks {','.join(tasks)}" if tasks else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/same_sweep"))
    parser.add_argument("--launchers", default=",".join(LAUNCHERS))
    parser.add_argument("--dask-address", default=None)
    parser.add_argument("--partition", default=None, help="SLURM partition (default: sinfo's)")
    parser.add_argument("--workers", type=int, default=2, help="parallel jobs per launcher")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.launchers.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in LAUNCHERS]
    if unknown or not chosen:
        parser.error(f"--launchers: {','.join(unknown) or '(none)'} not allowed: one or more "
                     f"of {', '.join(LAUNCHERS)}")
    partition = args.partition or slurm_partition()
    reference: pd.DataFrame | None = None
    identical = True
    print(f"{'launcher':15} {'seconds':>8} {'runs':>5}  same table  where the jobs ran")
    for launcher in chosen:
        if launcher == "submitit_slurm" and partition is None:
            print(f"{launcher:15} skipped: no SLURM partition is up (sinfo)")
            continue
        folder = (args.out / launcher).absolute()
        shutil.rmtree(folder, ignore_errors=True)
        settings = launcher_settings(launcher, partition, args.dask_address, args.workers)
        seconds, _ = run_sweep(launcher, folder, settings)
        table = pd.read_parquet(folder / "sweep_results.parquet")
        runs = len(table[["job", "replication"]].drop_duplicates())
        if reference is None:
            reference, same = table, "reference"
        else:
            try:
                pd.testing.assert_frame_equal(table, reference, check_exact=True)
                same = "identical"
            except AssertionError as difference:
                identical, same = False, "DIFFERENT: " + str(difference).splitlines()[0]
        print(f"{launcher:15} {seconds:8.1f} {runs:5d}  {same:10}  "
              f"{engine_evidence(executed_by(folder))}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
