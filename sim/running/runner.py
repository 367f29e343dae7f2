"""Replications of one parameter set, in parallel processes, kept on disk as they finish.

Replication k always uses the random streams of replication k (see :mod:`sim.core.streams`), so the
tables do not depend on the number of worker processes or the order in which runs finish.
Given a ``store`` folder, each finished replication is written there at once (atomically), and a
later call with the same folder loads it instead of running it again: an interrupted run or
sweep loses nothing that had finished.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

import pandas as pd

from sim.core.model import RunResult, simulate
from sim.core.params import ParameterError, Params
from sim.running.store import ReplicationStore
from sim.reporting.stats import estimate, summarise


@dataclass
class Replications:
    """The results of replications 0..n-1 of one parameter set."""

    params: Params
    runs: list[RunResult]
    loaded: list[int] = field(default_factory=list)
    """Replications loaded from a store, not simulated: they carry no patient log."""

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


def _metric_values(runs: list[RunResult], params: Params) -> list[float]:
    """Each run's value of ``run.precision_metric``."""
    name = params.run.precision_metric
    values = [r.metrics.loc[r.metrics["metric"] == name, "value"] for r in runs]
    if any(v.empty for v in values):
        raise ParameterError("run.precision_metric", name,
                             "the name of a metric in metrics.csv, e.g. delayed_days_per_30d")
    return [float(v.iloc[0]) for v in values]


def _precise_enough(values: list[float], precision: float) -> bool:
    e = estimate(values)
    return e.n >= 2 and abs(e.half_width) <= precision * abs(e.mean)


def run_replications(params: Params, replications: int | None = None, workers: int | None = None,
                     store: ReplicationStore | None = None, progress: bool = False) -> Replications:
    """Run replications 0..n-1 on ``workers`` processes (default: all cores).

    ``n`` defaults to ``params.run.replications``; with ``run.precision`` > 0 more are added,
    a batch at a time, until the confidence interval is narrow enough or
    ``run.max_replications`` is reached. Replications already in ``store`` are loaded, not run.
    """
    run = params.run
    target = replications if replications is not None else run.replications
    limit = run.max_replications if run.precision > 0 else target
    workers = workers or default_workers(target)
    done: dict[int, RunResult] = {}
    bar = _progress_bar(target, progress)
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    checked = target - 1  # replication counts whose precision has been judged
    loaded: list[int] = []
    try:
        next_k = 0
        while True:
            todo = list(range(next_k, target))
            next_k = target
            for k in [k for k in todo if store is not None and store.has(k)]:
                done[k] = store.load(k)
                loaded.append(k)
                todo.remove(k)
                bar.update(1)
            for result in _run(params, todo, pool):
                if store is not None:
                    store.save(result)
                done[result.replication] = result
                bar.update(1)
            runs = [done[k] for k in range(target)]
            if run.precision <= 0:
                break
            # The first n (from the minimum up) whose interval is narrow enough: the same n on
            # any number of workers, although they run replications a batch at a time.
            values = _metric_values(runs, params)
            n = next((n for n in range(checked + 1, target + 1)
                      if _precise_enough(values[:n], run.precision)), None)
            if n is not None:
                runs = runs[:n]
                break
            if target >= limit:
                break
            checked, target = target, min(limit, target + workers)
            bar.total = target
            bar.refresh()
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return Replications(params, runs, sorted(k for k in loaded if k < len(runs)))


def _run(params: Params, replications: list[int], pool: ProcessPoolExecutor | None):
    """Yield each replication's result as soon as it finishes."""
    if pool is None:
        for k in replications:
            yield simulate(params, k)
        return
    pending: set[Future] = {pool.submit(simulate, params, k) for k in replications}
    while pending:
        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished:
            yield future.result()


class _NoBar:
    total = 0

    def update(self, n: int) -> None: ...
    def refresh(self) -> None: ...
    def close(self) -> None: ...


def _progress_bar(total: int, show: bool):
    if not show:
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=total, desc="replications", unit="run", file=sys.stderr, leave=False)
