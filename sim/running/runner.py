"""Replications of one parameter set, in parallel processes, kept on disk as they finish.

Replication k always uses the random streams of replication k (see :mod:`sim.core.streams`), so the
tables do not depend on the number of worker processes or the order in which runs finish.
Given a ``store`` folder, each finished replication is written there at once (atomically), and a
later call with the same folder loads it instead of running it again: an interrupted run or
sweep loses nothing that had finished. Worker processes end with the process that started them
(:mod:`sim.running.workers`).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import pandas as pd

from sim.core.catalogue import catalogue
from sim.core.costs import Costs, with_costs
from sim.core.model import REQUEST_COLUMNS, RunResult, simulate
from sim.core.params import ParameterError, Params
from sim.running.store import ReplicationStore
from sim.running.workers import pool_arguments
from sim.running.stats import estimate, summarise_metrics


@dataclass
class Replications:
    """The results of replications 0..n-1 of one parameter set."""

    params: Params
    runs: list[RunResult]
    loaded: list[int] = field(default_factory=list)
    """Replications loaded from a store, not simulated in this call."""
    store: ReplicationStore | None = None
    """Where the runs' patient logs are kept, if a store keeps them (they are then not held
    in memory: see :meth:`patient_tables`)."""
    costs: Costs | None = None
    """The unit prices its costs are worked out with (None: no costs)."""
    programmes: tuple[str, ...] = ()
    """The annual cost items of the programmes on in this system (seven-day working)."""

    def _stack(self, attribute: str) -> pd.DataFrame:
        frames = [getattr(r, attribute).assign(replication=r.replication) for r in self.runs]
        return _replication_first(pd.concat(frames, ignore_index=True))

    @property
    def metrics(self) -> pd.DataFrame:
        """Tidy: one row per replication and metric, costs included when priced."""
        tidy = self._stack("metrics")
        if self.costs is None:
            return tidy
        return with_costs(tidy, self.params, self.costs, self.programmes)

    def patient_tables(self) -> Iterator[pd.DataFrame]:
        """Each replication's patient log in turn, with its ``replication`` column; read from
        the store when it keeps them, so that only one is in memory at a time."""
        for r in self.runs:
            keeps = self.store is not None and self.store.keeps_patients
            table = self.store.load_patients(r.replication) if keeps else r.patients
            yield _replication_first(table.assign(replication=r.replication))

    @property
    def patients(self) -> pd.DataFrame:
        """One row per patient and replication."""
        return pd.concat(list(self.patient_tables()), ignore_index=True)

    @property
    def daily(self) -> pd.DataFrame:
        return self._stack("daily")

    def summary(self) -> pd.DataFrame:
        """One row per metric: mean (or total), sd and 95% CI over the replications, each
        interval within the metric's bounds (the metric catalogue)."""
        return summarise_metrics(self.metrics, catalogue(self.params))


def _replication_first(table: pd.DataFrame) -> pd.DataFrame:
    return table[["replication"] + [c for c in table.columns if c != "replication"]]


def default_workers(tasks: int) -> int:
    """All local cores, but no more processes than tasks."""
    return max(1, min(tasks, os.cpu_count() or 1))


def check_before_run(params: Params, workers: int = 1, replications_held: int = 0) -> None:
    """Refuse, before any replication runs, what cannot give a result: a
    ``run.precision_metric`` that is not a metric, and a system that cannot work or a run that
    would not fit in memory with ``workers`` replications at once (:mod:`sim.core.feasibility`).
    Raises :class:`ParameterError`."""
    from sim.core.catalogue import catalogue
    from sim.core.feasibility import check_feasible

    name = params.run.precision_metric
    names = catalogue(params)
    if name not in names:
        raise ParameterError("run.precision_metric", name, "the name of a metric in metrics.csv, "
                             "e.g. delayed_days_per_30d, delay_mean.all or acute_occupancy")
    check_feasible(params, workers, replications_held)


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
                     store: ReplicationStore | None = None, progress: bool = False,
                     costs: Costs | None = None, programmes: tuple[str, ...] = ()
                     ) -> Replications:
    """Run replications 0..n-1 on ``workers`` processes (default: all cores).

    ``n`` defaults to ``params.run.replications``; with ``run.precision`` > 0 more are added,
    a batch at a time, until the confidence interval is narrow enough or
    ``run.max_replications`` is reached. Replications already in ``store`` are loaded, not run;
    each one run is saved there as soon as it finishes. With a store, patient logs are not held
    in memory: they are read back from the store if it keeps them (else they are not wanted,
    and :meth:`Replications.patient_tables` gives empty tables). Settings that cannot work are
    refused first (:func:`check_before_run`). With ``costs``, the metrics include each
    replication's costs (:mod:`sim.core.costs`) with the ``programmes`` on.
    """
    run = params.run
    target = replications if replications is not None else run.replications
    limit = run.max_replications if run.precision > 0 else target
    workers = workers or default_workers(target)
    done: dict[int, RunResult] = {}
    keeps_patients = store is not None and store.keeps_patients
    check_before_run(params, workers, 0 if store is not None else limit)
    pool = _pool(workers) if workers > 1 else None
    bar = _progress_bar(target, progress)
    checked = target - 1  # replication counts whose precision has been judged
    loaded: list[int] = []
    failed = True
    try:
        next_k = 0
        while True:
            _load_or_run(params, range(next_k, target), store, pool, done, loaded, bar)
            next_k = target
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
        failed = False
    finally:
        bar.close()
        if pool is not None:
            _stop(pool, now=failed)
    return Replications(params, runs, sorted(k for k in loaded if k < len(runs)),
                        store if keeps_patients else None, costs, programmes)


def _load_or_run(params: Params, replications: range, store: ReplicationStore | None,
                 pool: ProcessPoolExecutor | None, done: dict[int, RunResult],
                 loaded: list[int], bar) -> None:
    """Replications into ``done``: each loaded from ``store`` if it holds it (and listed in
    ``loaded``), else run and saved there at once (its patient log then not held here)."""
    todo = list(replications)
    for k in [k for k in todo if store is not None and store.has(k)]:
        done[k] = store.load(k)
        loaded.append(k)
        todo.remove(k)
        bar.update(1)
    for result in _run(params, todo, pool, store):
        done[result.replication] = result
        bar.update(1)


def _pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes that end with this one. On Linux they are forked (the
    default before Python 3.14), so that this process is their parent."""
    context = multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, **pool_arguments())


@contextmanager
def replication_pool(pool: Executor | None, workers: int | None,
                     tasks: int) -> Iterator[Executor | None]:
    """Where a study's replications run: ``pool`` if one is given (a Dask cluster's executor),
    else, for as long as the block lasts, ``workers`` local processes (default: all cores, no
    more than ``tasks``), or None (this process) for one."""
    if pool is not None:
        yield pool
        return
    workers = workers or default_workers(tasks)
    if workers <= 1:
        yield None
        return
    own = _pool(workers)
    try:
        yield own
    finally:
        own.shutdown(cancel_futures=True)


def _stop(pool: ProcessPoolExecutor, now: bool) -> None:
    """Shut the pool down; ``now`` (after an error or an interruption): without waiting for
    the replications still running, whose results could not be kept."""
    if now:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
    pool.shutdown(wait=not now, cancel_futures=True)


def _run(params: Params, replications: list[int], pool: ProcessPoolExecutor | None,
         store: ReplicationStore | None):
    """Yield each replication's result as soon as it finishes (and is kept in ``store``)."""
    if pool is None:
        for k in replications:
            yield _simulate_and_keep(params, k, store)
        return
    pending: set[Future] = {pool.submit(_simulate_and_keep, params, k, store)
                            for k in replications}
    while pending:
        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished:
            yield future.result()


def _simulate_and_keep(params: Params, k: int, store: ReplicationStore | None) -> RunResult:
    """Replication ``k``, saved in ``store`` by the process that ran it (the workers write in
    parallel), returned as the store gives it back: its patient log kept there, not sent."""
    result = simulate(params, k)
    if store is None:
        return result
    store.save(result)
    return dataclasses.replace(result, patients=pd.DataFrame(),
                               service_waits=pd.DataFrame(columns=REQUEST_COLUMNS))


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
