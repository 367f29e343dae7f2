"""Replications of one parameter set, in parallel processes, collected into tidy tables.

Replication k always uses the random streams of replication k (see :mod:`sim.streams`), so the
tables do not depend on the number of worker processes or the order in which runs finish.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import pandas as pd

from sim.model import RunResult, simulate
from sim.params import Params
from sim.stats import summarise


@dataclass
class Replications:
    """The results of replications 0..n-1 of one parameter set."""

    params: Params
    runs: list[RunResult]

    def _stack(self, attribute: str) -> pd.DataFrame:
        frames = [getattr(r, attribute).assign(replication=r.replication) for r in self.runs]
        table = pd.concat(frames, ignore_index=True)
        return table[["replication"] + [c for c in table.columns if c != "replication"]]

    @property
    def metrics(self) -> pd.DataFrame:
        """Tidy: one row per replication and metric."""
        return self._stack("metrics")

    @property
    def patients(self) -> pd.DataFrame:
        return self._stack("patients")

    @property
    def daily(self) -> pd.DataFrame:
        return self._stack("daily")

    def summary(self) -> pd.DataFrame:
        """One row per metric: mean, sd and 95% CI over the replications."""
        return summarise(self.metrics)


def default_workers(tasks: int) -> int:
    """All local cores, but no more processes than tasks."""
    return max(1, min(tasks, os.cpu_count() or 1))


def run_replications(params: Params, replications: int | None = None,
                     workers: int | None = None) -> Replications:
    """Run replications 0..n-1 (n defaults to ``params.run.replications``) on ``workers`` cores."""
    n = replications if replications is not None else params.run.replications
    workers = workers or default_workers(n)
    if workers == 1 or n == 1:
        runs = [simulate(params, k) for k in range(n)]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            runs = list(pool.map(simulate, [params] * n, range(n)))
    return Replications(params, runs)
