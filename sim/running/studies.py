"""Optuna studies that resume and can be shared: the calibration's and the budget search's.

A study lives in a folder (``optuna.db``, SQLite) or in a storage named by
``experiment.storage`` (a database server, or a journal file on a shared file system), and is
fingerprinted with everything that determines its trials (the system, the model's code, the
targets or budget, the replications, the seed, the batch), so that a rerun carries on, and a
study of anything else is refused in one line rather than mixed in.

Trials are asked in batches; each batch's sampler is seeded from the seed and the number of
trials finished before it, so with one process asking (a *worker*) the trials do not depend on
how many processes run their replications or on an interruption. Several workers can share one
study (SLURM array tasks, two shells): each claims a trial by creating it, and the trial's
number, which the storage hands out once, decides whether it is within the study's total; a
worker keeps a *lease* on the trials it runs (a user attribute it renews), and a trial whose
lease has run out (or whose worker has died on this machine) is failed and queued to run again
with the same parameters by whichever worker sees it first. A worker whose batch was asked at
the same time as another's seeds its sampler from the trial's number as well, so that two
workers never draw the same values; the trials then depend on the timing of the workers.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import time
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from sim.core.params import ParameterError


class StudyError(ValueError):
    """A study folder or storage that cannot be used; the message is one line."""


class Stopped(RuntimeError):
    """The study was asked to stop (:func:`stop`): this process's trials are queued again."""


_STOPPING = threading.Event()


def stop() -> None:
    """Ask the studies of this process to stop: a worker's own thread queues its trials to
    run again at once and the study ends (:class:`Stopped`) at its next claim. Safe to call
    from a signal handler (SIGTERM): nothing is written from the interrupted code."""
    _STOPPING.set()


STORAGE_FORMS = ("empty (the study in <results folder>/optuna.db), sqlite:///PATH, "
                 "postgresql://USER:PASSWORD@HOST:PORT/DATABASE, mysql://USER@HOST/DATABASE, "
                 "or journal:PATH (a journal file on a shared file system)")
"""What ``experiment.storage`` may be."""

_DATABASE = re.compile(r"^(sqlite:///.+|(postgresql|mysql)(\+\w+)?://\S+)$")

LEASE_SECONDS = 120.0
"""How long a worker's claim on a trial lasts without being renewed."""

HEARTBEAT_SECONDS = 10.0
"""How often a worker renews the leases of the trials it runs."""

POLL_SECONDS = 2.0
"""How often a worker with nothing to claim looks again (for trials to finish or run out)."""


DASK_FORMS = "empty (local cores) or a Dask scheduler's address, tcp://HOST:PORT"
"""What ``experiment.dask`` may be."""

_DASK = re.compile(r"^((tcp|tls|ucx|ws|wss)://)?[^\s:/]+:\d+$")


def check_storage(storage: str) -> str:
    """``storage`` if ``experiment.storage`` may be it (:data:`STORAGE_FORMS`), else a
    :class:`ParameterError` naming the setting."""
    if storage == "" or _DATABASE.match(storage) or (
            storage.startswith("journal:") and storage[len("journal:"):].strip()):
        return storage
    raise ParameterError("experiment.storage", storage, STORAGE_FORMS)


def check_dask(address: str) -> str:
    """``address`` if ``experiment.dask`` may be it (:data:`DASK_FORMS`), else a
    :class:`ParameterError` naming the setting."""
    if address == "" or _DASK.match(address):
        return address
    raise ParameterError("experiment.dask", address, DASK_FORMS)


@contextmanager
def dask_pool(address: str) -> Iterator[Executor]:
    """The executor of the Dask cluster whose scheduler is at ``address``: a study's
    replications run on its workers (each must be able to import this package)."""
    check_dask(address)
    try:
        from distributed import Client
    except ImportError:
        raise StudyError(f"experiment.dask={address!r} needs Dask: pip install -e "
                         "\".[cluster]\"") from None
    try:
        client = Client(address, timeout=30)
    except (OSError, TimeoutError) as error:
        raise StudyError(f"experiment.dask={address!r} cannot be reached: "
                         f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
                         ) from None
    try:
        yield client.get_executor()
    finally:
        client.close()


def _storage(storage: str, folder: Path | None):
    """The Optuna storage ``storage`` names (:func:`check_storage`), ``folder/optuna.db`` if it
    is empty, or None (in memory) without either."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    check_storage(storage)
    if storage == "":
        if folder is None:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{(folder / 'optuna.db').resolve()}"
    try:
        if storage.startswith("journal:"):
            path = Path(storage[len("journal:"):]).expanduser().resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        # SQLite shared by several processes: wait for a lock rather than fail at once.
        engine = {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else None
        for attempt in range(3):  # workers starting together may race to create the tables
            try:
                return optuna.storages.RDBStorage(storage, engine_kwargs=engine)
            except ImportError:
                raise
            except Exception:
                if attempt == 2:
                    raise
                time.sleep(1.0 + attempt)
    except ImportError:
        raise StudyError(f"experiment.storage={storage!r} cannot be opened: its database "
                         "driver is not installed (PostgreSQL: pip install -e \".[cluster]\"; "
                         "MySQL: pip install PyMySQL)") from None
    except Exception as error:  # a server not answering, a wrong password, no such folder
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StudyError(f"experiment.storage={storage!r} cannot be opened: {reason}") from None


def open_study(folder: Path | None, name: str, fingerprint: str, what: str,
               directions: Sequence[str] = ("minimize",), storage: str = "",
               first: Sequence[Mapping[str, Any]] = ()):
    """The study ``name`` in ``storage`` (:data:`STORAGE_FORMS`; by default ``folder/optuna.db``,
    in memory without a folder), created or resumed; refused (:class:`StudyError`) if it holds
    a study of another ``fingerprint`` (``what`` says what it would be: "a calibration").
    ``first``: the values of the first trials, queued once, by the worker that creates it."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    where = storage or f"{folder}/optuna.db"
    backend = _storage(storage, folder)
    try:
        study = optuna.create_study(storage=backend, study_name=name,
                                    directions=list(directions))
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=backend)
        created = False
    if created:
        for values in first:
            study.enqueue_trial(dict(values))
        study.set_user_attr("fingerprint", fingerprint)  # last: the study is ready
    stored = _fingerprint_of(study, wait=not created)
    if stored is None:
        if study.trials:
            raise StudyError(f"{where} holds a study of unknown origin: choose another "
                             f"{'storage' if storage else 'folder'} or delete it")
        for values in first:  # created by a worker that stopped before it was ready
            study.enqueue_trial(dict(values))
        study.set_user_attr("fingerprint", fingerprint)
        stored = _fingerprint_of(study)
    if stored != fingerprint:
        raise StudyError(f"{where} holds {what} of another system, model version or setup "
                         "(replications, seed, batch): choose another "
                         f"{'storage' if storage else 'folder'} or delete it")
    return study


def stored_trials(storage: str, name: str, missing_ok: bool = False) -> list:
    """The trials of the study ``name`` in ``storage`` (:data:`STORAGE_FORMS`, not empty), to
    look into a shared study; none if it does not exist yet and ``missing_ok``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=_storage(storage, None))
    except KeyError:
        if missing_ok:
            return []
        raise
    return study.get_trials(deepcopy=False)


def _fingerprint_of(study, wait: bool = False) -> str | None:
    """The study's fingerprint; with ``wait``, given a few seconds to appear (another worker
    creating the study sets it last)."""
    deadline = time.monotonic() + (10.0 if wait else 0.0)
    while True:
        stored = study.user_attrs.get("fingerprint")
        if stored is not None or time.monotonic() >= deadline:
            return stored
        time.sleep(0.2)


def evaluated(trial) -> bool:
    """Whether a trial has finished and been evaluated (not merely asked, nor taken back from a
    worker that lost it)."""
    return (trial.state.is_finished() and bool(trial.user_attrs.get("evaluated"))
            and not _taken_back(trial))


def _taken_back(trial) -> bool:
    """Whether a trial was failed and queued to run again (:func:`requeue`); marked but not
    failed, its worker finished it first."""
    import optuna

    return trial.state == optuna.trial.TrialState.FAIL and bool(trial.user_attrs.get("requeued"))


def batch_sampler(seed: int, done: int, *more: int):
    """The TPE sampler of the batch after ``done`` finished trials (multi-objective too);
    ``more``: what else tells apart batches asked at the same time by several workers."""
    import optuna

    state = int(np.random.SeedSequence([seed, done, *more]).generate_state(1)[0])
    return optuna.samplers.TPESampler(seed=state)


# ----------------------------------------------------------------------------- shared studies

def _place(trial) -> int:
    """The place a trial holds in the study's total: its own number, or, for a trial run again,
    the number of the trial it runs again."""
    return int(trial.user_attrs.get("rerun_of", trial.number))


def _holds_place(trial) -> bool:
    """Whether a trial counts towards the study's total: evaluated, being run, queued, or taken
    back from a worker that lost it (until it runs again)."""
    return evaluated(trial) or not trial.state.is_finished() or _taken_back(trial)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine is running (not gone, nor a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _lost(trial, now: float) -> bool:
    """Whether a running trial's worker has lost it: its lease has run out, or its worker was
    a process of this machine that is gone. A trial without a lease yet has one from its
    start."""
    lease = trial.user_attrs.get("lease")
    if lease is None:
        started = trial.datetime_start
        return started is None or (datetime.now() - started).total_seconds() > LEASE_SECONDS
    host, _, pid = str(lease["worker"]).rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
        return True
    return float(lease["until"]) < now


@dataclass(frozen=True)
class Survey:
    """A study's trials as a worker sees them before a batch."""

    done: int
    """Trials evaluated."""
    free: int
    """Places of the total that no trial holds yet."""
    waiting: int
    """Trials queued (the first trials, and trials to run again)."""
    reruns: int
    """Of those, trials to run again (run in a batch of their own first)."""
    running: int
    """Trials other workers are running."""
    count: int
    """Trials in the study, of any state: the next new trial's number, if no one else asks."""


class Worker:
    """This process's part in a study that other processes may share: it claims trials within
    the study's ``total``, keeps a lease on each while it runs it, and records its results
    unless another worker has taken the trial back (its lease ran out). Used as a context: an
    exception (an interruption) queues its unfinished trials to run again, at once, and so
    does :func:`stop`, from the worker's own thread."""

    def __init__(self, study, total: int, seed: int) -> None:
        self.study, self.total, self.seed = study, total, seed
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._mine: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._renew, daemon=True)
        self._survey: Survey | None = None
        self._fresh = 0

    def __enter__(self) -> "Worker":
        self._heartbeat.start()
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            if kind is not None:
                self._give_back()
        finally:
            self._stop.set()
            self._heartbeat.join()

    def _give_back(self) -> None:
        """Queue this worker's unfinished trials to run again."""
        with self._lock:
            unfinished = sorted(self._mine.values(), key=lambda t: t.number)
            self._mine.clear()
        for trial in unfinished:
            try:
                requeue(self.study, trial)
            except Exception:  # the storage itself failed: the lease will run out
                break

    def survey(self) -> Survey:
        """Take back the trials other workers have lost (:func:`requeue`), then count."""
        import optuna

        running = optuna.trial.TrialState.RUNNING
        now = time.time()
        trials = self.study.get_trials(deepcopy=False)
        lost = [t for t in trials if t.state == running and t.number not in self._mine
                and _lost(t, now)]
        for trial in lost:
            requeue(self.study, trial)
        if lost:
            trials = self.study.get_trials(deepcopy=False)
        waiting = [t for t in trials if t.state == optuna.trial.TrialState.WAITING]
        held = {_place(t) for t in trials if _holds_place(t)}
        return Survey(done=sum(evaluated(t) for t in trials), free=self.total - len(held),
                      waiting=len(waiting), reruns=sum("rerun_of" in t.user_attrs
                                                       for t in waiting),
                      running=sum(t.state == running for t in trials), count=len(trials))

    def start_batch(self, survey: Survey) -> None:
        """Seed the sampler of a batch: from the seed and the trials done (and, while other
        workers run trials, how many: another batch asked beside theirs draws other values)."""
        self._survey, self._fresh = survey, 0
        more = (1 + survey.running,) if survey.running else ()
        self.study.sampler = batch_sampler(self.seed, survey.done, *more)

    def claim(self):
        """A trial to run (a queued one first), or None if the study's total is reached: a
        new trial beyond it (another worker claimed the last places at the same time) is
        failed at once, with no values, and marked ``surplus``."""
        import optuna

        if _STOPPING.is_set():
            raise Stopped("stopped: this worker's trials are queued to run again")
        survey = self._survey
        trial = self.study.ask()
        if trial.number >= survey.count:  # a new trial, not one queued before the survey
            expected = survey.count + self._fresh
            self._fresh += 1
            if "rerun_of" not in trial.user_attrs:
                held = {_place(t) for t in self.study.get_trials(deepcopy=False)
                        if _holds_place(t) and _place(t) < trial.number}
                if len(held) >= self.total:
                    trial.set_user_attr("surplus", True)
                    self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    return None
            if trial.number != expected:  # another worker asked at the same time
                self.study.sampler = batch_sampler(self.seed, survey.done, 1 + survey.running,
                                                   1 + trial.number)
        with self._lock:
            self._mine[trial.number] = trial
        self._lease(trial)
        return trial

    def tell(self, trial, values: float | Sequence[float] | None = None,
             attrs: Mapping[str, Any] | None = None, evaluated: bool = True) -> bool:
        """Record a trial's ``attrs`` and values (None: failed) and finish it; ``evaluated``:
        whether it counts as one of the total. False if another worker took it back first (it
        runs again there)."""
        import optuna

        try:
            for key, value in (attrs or {}).items():
                trial.set_user_attr(key, value)
            if evaluated:
                trial.set_user_attr("evaluated", True)
            if values is None:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(trial, values)
            return True
        except (ValueError, RuntimeError):
            if self.study.trials[trial.number].state == optuna.trial.TrialState.RUNNING:
                raise
            return False
        finally:
            with self._lock:
                self._mine.pop(trial.number, None)

    def _lease(self, trial) -> None:
        try:
            trial.set_user_attr("lease", {"worker": self.name,
                                          "until": time.time() + LEASE_SECONDS})
        except (ValueError, RuntimeError):  # finished meanwhile
            pass

    def _renew(self) -> None:
        """The worker's own thread: renews its leases, and gives its trials back on
        :func:`stop`."""
        renewed = time.monotonic()
        while not self._stop.wait(0.25):
            if _STOPPING.is_set():
                self._give_back()
                continue
            if time.monotonic() - renewed < HEARTBEAT_SECONDS:
                continue
            renewed = time.monotonic()
            with self._lock:
                mine = list(self._mine.values())
            for trial in mine:
                try:
                    self._lease(trial)
                except Exception:  # the storage unreachable for a moment: try again later
                    pass


def requeue(study, trial) -> bool:
    """Fail a running ``trial`` and queue it to run again with the same values, as a new trial
    that holds its place; False if another worker did so first, or it has finished."""
    import optuna

    try:
        study._storage.set_trial_user_attr(trial._trial_id, "requeued", True)
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    except (ValueError, RuntimeError):
        return False
    study.enqueue_trial(trial.params, user_attrs={"rerun_of": _place(trial)})
    return True


def run_trials(study, total: int, seed: int, batch: int,
               run_batch: Callable[[Worker, Survey, int], int], what: str,
               time_limit: float | None = None, started: float | None = None) -> bool:
    """Run trials, a batch at a time (trials to run again in a batch of their own first),
    until ``total`` are evaluated or ``time_limit`` seconds after ``started`` have passed;
    ``run_batch(worker, survey, size)`` claims and runs up to ``size`` trials and returns how
    many it ran. With nothing left to claim while other workers run the last trials, waits for
    them (and takes back any they lose). Returns whether this worker is to write the results:
    it ran the study's last trials, found the study finished, or stopped at the time limit
    (another worker running the last trials writes them)."""
    with Worker(study, total, seed) as worker:
        ran = True
        while True:
            if _STOPPING.is_set():
                raise Stopped("stopped: this worker's trials are queued to run again")
            survey = worker.survey()
            if survey.done >= total:
                return ran
            if (time_limit is not None and survey.done
                    and time.monotonic() - started >= time_limit):
                print(f"{what}: time limit of {time_limit:g} s reached after {survey.done} of "
                      f"{total} trials; run again with the same store folder or storage to "
                      "go on", file=sys.stderr)
                return True
            size = min(survey.reruns or batch, survey.free + survey.waiting)
            if size <= 0:
                ran = False
                time.sleep(POLL_SECONDS)
                continue
            worker.start_batch(survey)
            ran = run_batch(worker, survey, size) > 0 or ran
