"""Sweeps: collect every run of a Hydra multirun folder into one tidy table.

A sweep folder holds one sub-folder per job (one parameter set), each with Hydra's
``.hydra/overrides.yaml`` and ``.hydra/config.yaml`` and a ``replications/`` store of finished
replications. :func:`collect` reads them all into one row per job x replication x metric, with
each override as a column, and writes ``sweep_results.parquet`` and ``sweep_results.csv``.
Collecting reads only finished replications, so it can run during or after an interrupted sweep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Collection

import pandas as pd
import yaml

from sim.running.files import write_atomic, write_csv


def _overrides(job: Path, ignored: Collection[str]) -> dict[str, str]:
    """The job's overrides that change the system (not those in ``ignored``), by key."""
    path = job / ".hydra" / "overrides.yaml"
    items = yaml.safe_load(path.read_text()) if path.is_file() else []
    result = {}
    for item in items or []:
        key, _, value = str(item).partition("=")
        key = key.lstrip("+~")
        if key not in ignored and not key.startswith("hydra"):
            result[key] = value
    return result


def _scenario_name(job: Path) -> str:
    path = job / ".hydra" / "config.yaml"
    config = yaml.safe_load(path.read_text()) if path.is_file() else {}
    return str((config or {}).get("name", job.name))


def job_folders(sweep_dir: Path, since: float | None = None) -> list[Path]:
    """The job folders of a sweep, in a stable order: those with ``.hydra/overrides.yaml``
    (written when a job is accepted) or ``error.txt`` (written when it is refused). With
    ``since`` (a ``time.time()``), only the jobs that ran since then - a job rewrites one of
    the two whenever it runs - so that jobs left in the folder by an earlier, different sweep
    are not mixed in."""
    sweep_dir = Path(sweep_dir)
    marks = [*sweep_dir.glob("**/.hydra/overrides.yaml"), *sweep_dir.glob("**/error.txt")]
    jobs = {(p.parent.parent if p.name == "overrides.yaml" else p.parent) for p in marks
            if since is None or p.stat().st_mtime >= since - 1.0}
    return sorted(jobs)


def collect(sweep_dir: Path, write: bool = True, since: float | None = None,
            ignored: Collection[str] = (),
            priced: Callable[[Path, pd.DataFrame], pd.DataFrame] | None = None) -> pd.DataFrame:
    """One tidy table of every finished replication in a sweep folder (of the jobs that ran
    since ``since``, if given). Overrides in ``ignored`` (settings that do not change the
    system, such as the number of replications) are not made into columns. ``priced`` adds a
    job's costs to its replications' metrics (from the job's folder: its config's prices)."""
    sweep_dir = Path(sweep_dir)
    frames = []
    override_keys: list[str] = []
    for job in job_folders(sweep_dir, since):
        if (job / "error.txt").is_file():
            continue  # refused: whatever replications it holds are not this sweep's
        overrides = _overrides(job, ignored)
        override_keys += [k for k in overrides if k not in override_keys]
        runs = []
        for path in sorted((job / "replications").glob("rep-*.metrics.csv")):
            metrics = pd.read_csv(path)
            metrics.insert(0, "replication", int(path.name.split(".")[0].split("-")[1]))
            runs.append(metrics)
        if not runs:
            continue
        metrics = pd.concat(runs, ignore_index=True)
        if priced is not None:
            metrics = priced(job, metrics)
        metrics.insert(0, "scenario", _scenario_name(job))
        metrics.insert(0, "job", str(job.relative_to(sweep_dir)))
        for key, value in overrides.items():
            metrics[key] = value
        frames.append(metrics)
    if not frames:
        raise FileNotFoundError(f"no finished replications under {sweep_dir}")
    table = pd.concat(frames, ignore_index=True)
    for key in override_keys:
        try:
            table[key] = pd.to_numeric(table[key])
        except (ValueError, TypeError):
            pass  # a text override (e.g. a scenario name) stays text
    columns = ["job", "scenario"] + [k for k in override_keys if k != "scenario"] + [
        "replication", "metric", "value", "unit"]
    table = table[columns].sort_values(["job", "replication", "metric"], kind="stable")
    table = table.reset_index(drop=True)
    if write:
        write_atomic(sweep_dir / "sweep_results.parquet", lambda p: table.to_parquet(p, index=False))
        write_csv(table, sweep_dir / "sweep_results.csv")
    return table
