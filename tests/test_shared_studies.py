"""Studies shared by several workers and run on engines (sim/running/studies.py): the storage
setting is checked in one line; only a trial whose worker is gone (or whose lease ran out) is
run again; marked ``cluster``: two worker processes on one journal file, SQLite database or
PostgreSQL server run each trial once, a worker killed mid-trial leaves its trials to the other,
and a calibration's replications on a real Dask cluster give the same trials on 1 or 2 Dask
workers as on local processes."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from sim.config.schema import ConfigError, load_config
from sim.core.params import ParameterError
from sim.running import studies
from sim.running.studies import Worker, check_dask, check_storage, open_study

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments" / "run.py"
TINY = ["experiment.keep=2", "experiment.confirm_replications=0", "run.replications=1",
        "run.days=120", "admissions.per_day=10", "acute.beds=106"]
"""A calibration of a small hospital: a trial takes a fraction of a second."""
LONGER = [a.replace("run.days=120", "run.days=480") for a in TINY]
"""Trials of about a second: a worker is stopped while it runs trials, not between them."""


def experiment(*args: str, cwd: Path, wait: bool = True):
    command = [sys.executable, str(EXPERIMENTS), *args]
    if not wait:
        return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and "targets in" not in line]


# ----------------------------------------------------------------------------- the setting

@pytest.mark.parametrize("storage", ["", "sqlite:////tmp/a.db", "postgresql://u:p@h:5432/d",
                                     "postgresql+psycopg://u@h/d", "mysql://u@h/d",
                                     "journal:/shared/study.log", "journal:relative.log"])
def test_a_storage_of_each_allowed_form_is_accepted(storage):
    assert check_storage(storage) == storage
    assert load_config([f"experiment.storage={storage}"]).experiment.storage == storage


@pytest.mark.parametrize("storage", ["optuna.db", "sqlite://relative.db", "journal:",
                                     "mongodb://h/d", "postgres://h/d"])
def test_a_storage_of_another_form_is_refused_naming_the_setting_and_the_forms(storage):
    with pytest.raises(ParameterError) as refused:
        check_storage(storage)
    line = str(refused.value)
    assert line.startswith(f"experiment.storage={storage!r} is not allowed: ")
    assert "journal:PATH" in line and "postgresql://" in line and "\n" not in line
    with pytest.raises(ConfigError, match="experiment.storage="):
        load_config([f"experiment.storage={storage}"])


@pytest.mark.parametrize("address, allowed", [("tcp://10.0.0.1:8786", True), ("h:8786", True),
                                              ("", True), ("tcp://h", False),
                                              ("http://h:8786", False)])
def test_a_dask_address_is_checked(address, allowed):
    if allowed:
        assert check_dask(address) == address
    else:
        with pytest.raises(ParameterError, match=r"^experiment.dask=.*tcp://HOST:PORT$"):
            check_dask(address)


def test_the_experiment_refuses_a_bad_or_unusable_storage_in_one_line(tmp_path):
    """Exit 2, one line, no traceback: a storage of no allowed form, and one that cannot be
    opened (a database in a folder that does not exist)."""
    for storage, says in [("mongodb://h/d", "is not allowed"),
                          (f"sqlite:///{tmp_path}/no/such/folder/x.db", "cannot be opened")]:
        done = experiment("calibration", f"experiment.storage={storage}", *TINY, cwd=tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        lines = error_lines(done.stderr)
        assert len(lines) == 1 and "experiment.storage=" in lines[0] and says in lines[0], lines
    assert not (tmp_path / "results" / "calibration" / "trials.csv").exists()


# ----------------------------------------------------------------------------- leases

def _gone_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_only_trials_whose_worker_is_gone_or_whose_lease_ran_out_are_run_again(tmp_path):
    """Four trials running on a shared study: of a process of this machine that is gone, of
    one that runs, of another machine with its lease run out, and of another machine with a
    lease. A worker fails and queues again the first and third only, once (a second worker
    finds nothing to take back), and the places they hold are kept: a new trial beyond the
    total is surplus, with no values."""
    import optuna

    storage = f"journal:{tmp_path / 'study.log'}"
    study = open_study(None, "s", "fingerprint", "a test", storage=storage)
    alive = subprocess.Popen(["sleep", "60"])
    here, now = socket.gethostname(), time.time()
    leases = [{"worker": f"{here}:{_gone_pid()}", "until": now + 600},
              {"worker": f"{here}:{alive.pid}", "until": now + 600},
              {"worker": "elsewhere:1", "until": now - 1},
              {"worker": "elsewhere:2", "until": now + 600}]
    try:
        for k, lease in enumerate(leases):
            trial = study.ask()
            trial.suggest_float("x", 0.0, 1.0)
            trial.set_user_attr("lease", lease)
        worker = Worker(study, total=4, seed=0)
        survey = worker.survey()
        trials = study.get_trials(deepcopy=False)
        assert [t.state.name for t in trials] == ["FAIL", "RUNNING", "FAIL", "RUNNING",
                                                  "WAITING", "WAITING"]
        assert [t.user_attrs.get("rerun_of") for t in trials[4:]] == [0, 2]
        assert [t.system_attrs["fixed_params"] for t in trials[4:]] == [trials[0].params,
                                                                       trials[2].params]
        assert (survey.free, survey.waiting, survey.reruns, survey.running) == (0, 2, 2, 2)
        assert Worker(study, total=4, seed=0).survey() == survey  # taken back once only
        worker.start_batch(survey)
        assert [worker.claim().number for _ in range(2)] == [4, 5]  # the reruns, queued
        assert worker.claim() is None  # a new trial: beyond the total of 4
        surplus = study.get_trials(deepcopy=False)[-1]
        assert surplus.state == optuna.trial.TrialState.FAIL and surplus.params == {}
        assert surplus.user_attrs["surplus"]
    finally:
        alive.kill()
        alive.wait()


# ----------------------------------------------------------------------------- several workers

def _check_every_trial_once(trials, total: int) -> dict:
    """``total`` trials evaluated, each in a place of its own (a trial run again holds the
    place of the one it runs again), complete, with distinct values; every other trial is a
    surplus claim (no values), one taken back from a lost worker, or a mix whose switches cost
    more than it spends (a budget search's). Returns each evaluated
    trial's worker."""
    done = [t for t in trials if studies.evaluated(t)]
    places = [studies._place(t) for t in done]
    assert len(done) == total and len(set(places)) == total, places
    assert all(t.state.name == "COMPLETE" for t in done), [t.state for t in done]
    values = [tuple(sorted(t.params.items())) for t in done]
    assert len(set(values)) == len(values)  # no trial drawn or claimed twice
    for t in trials:
        if not studies.evaluated(t):
            assert t.state.name == "FAIL" and any(t.user_attrs.get(why) for why in (
                "surplus", "requeued", "over_budget")), t
    return {t.number: t.user_attrs["lease"]["worker"] for t in done}


def _required(module: str):
    """``module``, imported; missing, the test is skipped, or fails under CI_REQUIRE_CLUSTER=1."""
    if os.environ.get("CI_REQUIRE_CLUSTER") == "1":
        return __import__(module)
    return pytest.importorskip(module)


def _postgres_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of its own (initdb on a private folder and port), its URL."""
    binaries = _postgres_binaries()
    if binaries is None:
        message = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI_REQUIRE_CLUSTER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    # (root may not run the server: its user must reach the folder, so not under pytest's own)
    folder = Path(tempfile.mkdtemp(prefix="discharge-sim-postgres-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        os.chmod(folder, 0o777)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = folder / "data"
    subprocess.run([*as_user, str(binaries / "initdb"), "-D", str(data), "-A", "trust",
                    "-U", "postgres"], check=True, capture_output=True)
    subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-l",
                    str(folder / "log"), "-w", "-o",
                    f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        subprocess.run([*as_user, str(binaries / "createdb"), "-h", "127.0.0.1", "-p",
                        str(port), "-U", "postgres", "studies"], check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/studies"
    finally:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _storage(kind: str, tmp_path: Path, request) -> str:
    if kind == "journal":
        return f"journal:{tmp_path / 'shared' / 'study.log'}"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'shared' / 'study.db'}"
    _required("psycopg")
    return request.getfixturevalue("postgres")


@pytest.mark.cluster
@pytest.mark.parametrize("kind", ["journal", "sqlite", "postgresql"])
def test_two_workers_on_one_storage_run_each_trial_once(kind, tmp_path, request):
    """Two processes run the calibration command on one storage at once: together they run
    the 12 trials, each once; the one that runs the last trials writes the tables."""
    storage = _storage(kind, tmp_path, request)
    (tmp_path / "shared").mkdir(exist_ok=True)
    command = ["calibration", "experiment.trials=12", f"experiment.storage={storage}", *TINY]
    started = time.monotonic()
    workers = [experiment(*command, cwd=tmp_path, wait=False) for _ in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    seconds = time.monotonic() - started
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err
    by_worker = _check_every_trial_once(studies.stored_trials(storage, "calibration"), 12)
    assert sorted(by_worker) == list(range(12))  # numbers 0..11: none lost, none twice
    assert len(set(by_worker.values())) == 2, by_worker  # both workers ran trials
    table = pd.read_csv(tmp_path / "results" / "calibration" / "trials.csv")
    assert sorted(table["trial"]) == list(range(12)) and (table["state"] == "COMPLETE").all()
    writers = [err for _, err in outputs if "the worker that runs the last trials" not in err]
    assert writers, "no worker wrote the tables"
    print(f"{kind}: 2 workers, 12 trials in {seconds:.1f} s")


@pytest.mark.cluster
def test_two_workers_share_one_budget_search(tmp_path):
    """The budget search too: two processes, one journal file, each of the 12 mixes (the
    first ones queued once: buying nothing, the whole budget on each lever) run once."""
    storage = f"journal:{tmp_path / 'study.log'}"
    command = ["budget", "experiment.candidates=12", "experiment.confirm_replications=1",
               f"experiment.storage={storage}", *TINY]
    workers = [experiment(*command, cwd=tmp_path, wait=False) for _ in range(2)]
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
    trials = studies.stored_trials(storage, "budget")
    by_worker = _check_every_trial_once(trials, 12)
    anchors = [t for t in trials if t.number < 7]  # nothing, 5 levers alone, seven-day working
    assert all(studies.evaluated(t) for t in anchors) and len(set(by_worker.values())) == 2
    table = pd.read_csv(tmp_path / "results" / "budget" / "trials.csv")
    assert sorted(table["trial"]) == sorted(by_worker)


@pytest.mark.cluster
def test_a_worker_killed_mid_trial_leaves_its_trials_to_the_other_then_a_rerun_finds_all(
        tmp_path):
    """Two workers on a journal file; one is killed (SIGKILL) while it runs trials. The other
    runs them again, with the same values, and finishes the study: none of its own trials
    is failed. A rerun then runs nothing and writes the same tables."""
    storage = f"journal:{tmp_path / 'study.log'}"
    command = ["calibration", "experiment.trials=12", f"experiment.storage={storage}", *LONGER]
    first = experiment(*command, cwd=tmp_path, wait=False)
    second = experiment(*command, cwd=tmp_path, wait=False)
    names = {f"{socket.gethostname()}:{p.pid}" for p in (first, second)}
    victim = f"{socket.gethostname()}:{first.pid}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        running = {t.user_attrs.get("lease", {}).get("worker")
                   for t in studies.stored_trials(storage, "calibration", missing_ok=True)
                   if t.state.name == "RUNNING"}
        if running >= names:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the two workers never ran trials at the same time")
    first.send_signal(signal.SIGKILL)
    first.wait()
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    trials = studies.stored_trials(storage, "calibration")
    by_worker = _check_every_trial_once(trials, 12)
    lost = [t for t in trials if studies._taken_back(t)]
    assert lost and all(t.user_attrs["lease"]["worker"] == victim for t in lost)
    reruns = {t.user_attrs["rerun_of"]: t for t in trials if "rerun_of" in t.user_attrs}
    for t in lost:
        # the same values (a trial killed while drawing them: those it had drawn)
        assert t.params.items() <= reruns[t.number].params.items()
        assert by_worker[reruns[t.number].number] != victim
    folder = tmp_path / "results" / "calibration"
    before = (folder / "trials.csv").read_text()
    again = experiment(*command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(studies.stored_trials(storage, "calibration")) == len(trials)
    assert (folder / "trials.csv").read_text() == before


@pytest.mark.cluster
def test_a_worker_ended_by_sigterm_queues_its_trials_to_run_again_at_once(tmp_path):
    """SIGTERM (SLURM's at a job's time limit) while a worker runs trials: it queues them to
    run again before it exits, so no other worker waits for their leases to run out."""
    storage = f"journal:{tmp_path / 'study.log'}"
    worker = experiment("calibration", "experiment.trials=400",  # longer than the test
                        f"experiment.storage={storage}", *LONGER, cwd=tmp_path, wait=False)
    deadline = time.monotonic() + 120
    while not any(t.state.name == "RUNNING" and "lease" in t.user_attrs
                  for t in studies.stored_trials(storage, "calibration", missing_ok=True)):
        assert time.monotonic() < deadline, "the worker never ran a trial"
        time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 128 + signal.SIGTERM, err
    trials = studies.stored_trials(storage, "calibration")
    taken_back = [t for t in trials if studies._taken_back(t)]
    queued = [t for t in trials if t.state.name == "WAITING"]
    assert taken_back and not [t for t in trials if t.state.name == "RUNNING"]
    assert sum(studies.evaluated(t) for t in trials) < 400
    assert [t.user_attrs["rerun_of"] for t in queued] == [t.number for t in taken_back]


# ----------------------------------------------------------------------------- Dask

def _tiny():
    from conftest import small_params
    from sim.running.calibration import Parameter, Source, Target

    source = Source("simulated", "this test", "today", "-")
    base = small_params(**{"run.days": 56.0, "run.warmup_days": 14.0})
    targets = [Target("delay", "delay_mean.all", 1.5, 0.2, source)]
    parameters = [Parameter("pathways.p1.transfer.mean", 0.1, 3.0, log=True),
                  Parameter("acute.beds", 80, 140, integer=True)]
    return base, targets, parameters


@pytest.mark.cluster
def test_the_same_trials_on_one_or_two_dask_workers_as_on_local_processes():
    """A calibration's replications on a real local Dask cluster of 1 and of 2 worker
    processes: the trials table is the same as on one local process, and the replications
    ran in the Dask workers (their process ids, not this one's)."""
    distributed = _required("distributed")
    from sim.running.calibration import calibrate

    base, targets, parameters = _tiny()
    kwargs = dict(trials=8, replications=2, seed=3)
    local = calibrate(base, targets, parameters, workers=1, **kwargs)
    for n in (1, 2):
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            pids = client.run(os.getpid)
            with distributed.get_task_stream(client) as stream:
                result = calibrate(base, targets, parameters, pool=client.get_executor(),
                                   **kwargs)
            ran = [task for task in stream.data if "_replicate" in str(task["key"])]
        assert result.trials.equals(local.trials), n
        assert result.best == local.best
        assert len(ran) == 8 * 2  # trials x replications
        assert {task["worker"] for task in ran} == set(pids)  # every Dask worker ran some
        assert os.getpid() not in pids.values() and len(set(pids.values())) == n


@pytest.mark.cluster
def test_the_calibration_experiment_on_a_dask_cluster_writes_the_same_trials(tmp_path):
    """``experiment.dask=tcp://HOST:PORT``: the command runs its replications on the cluster
    (its scheduler counts them) and writes the same trials as on local processes."""
    distributed = _required("distributed")
    command = ["calibration", "experiment.trials=4", *TINY]
    (tmp_path / "local").mkdir()
    (tmp_path / "dask").mkdir()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream:
            on_dask = experiment(*command, f"experiment.dask={cluster.scheduler_address}",
                                 cwd=tmp_path / "dask")
        ran = [task for task in stream.data if "_replicate" in str(task["key"])]
    assert on_dask.returncode == 0, on_dask.stderr
    assert len(ran) >= 4
    local = experiment(*command, cwd=tmp_path / "local")
    assert local.returncode == 0, local.stderr
    tables = [pd.read_csv(tmp_path / where / "results" / "calibration" / "trials.csv")
              for where in ("local", "dask")]
    assert tables[0].equals(tables[1])
