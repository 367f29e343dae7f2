"""Sweeps on real engines: a one-node SLURM cluster (``.ci/start-slurm``) and a local Dask
cluster started here (``dask scheduler``, ``dask worker``), through ``discharge-sim -m``.

The same sweep through joblib, submitit_local, SLURM and Dask gives the same collected table,
value for value, and each engine is shown to have run it (the SLURM array tasks, and the Dask
workers' processes, recorded by every job). A job killed part-way (a SLURM array task
cancelled; the Dask workers killed) is carried on, by the same command again or by Dask's own
retry, with every run kept once and nothing finished run again. Marked ``cluster``: left out
of the default run; ``pytest -m cluster`` (CI's third step). Without sbatch or Dask the tests
skip, or fail when ``CI_REQUIRE_CLUSTER=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from conftest import EXE, discharge_sim

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
DASK = Path(sys.executable).parent / "dask"
SMALL = ["run.days=60", "run.warmup_days=14", "run.replications=1", "admissions.per_day=10",
         "acute.beds=106", "output.charts=false"]
# Replications of about a second each, so that a job can be caught part-way.
SLOW_JOBS = ["scenario=baseline,extra_homecare", "run.replications=6", "run.days=400",
             "run.warmup_days=14", "admissions.per_day=30", "acute.beds=320",
             "output.charts=false", "output.patients_csv=false"]


def unavailable(reason: str) -> None:
    """Skip, or fail in CI (``CI_REQUIRE_CLUSTER=1``), when an engine is missing."""
    if os.environ.get("CI_REQUIRE_CLUSTER") == "1":
        pytest.fail(f"CI_REQUIRE_CLUSTER=1 but {reason}")
    pytest.skip(reason)


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    """What a failed command printed as errors (not progress, logs or sbatch's own lines)."""
    return [line for line in done.stderr.replace("\r", "\n").splitlines()
            if line.startswith("discharge-sim")]


def wait_for(condition, what: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def finished_runs(sweep: Path) -> dict[Path, int]:
    """Every finished replication of a sweep (its metrics file) and when it was written."""
    return {p: p.stat().st_mtime_ns for p in sweep.glob("*/replications/rep-*.metrics.csv")}


def each_run_once(sweep: Path, jobs: int, replications: int) -> pd.DataFrame:
    """The collected table, checked to hold every job x replication, each once."""
    table = pd.read_parquet(sweep / "sweep_results.parquet")
    assert not table.duplicated(["job", "replication", "metric"]).any()
    runs = table[["job", "replication"]].drop_duplicates()
    assert table["job"].nunique() == jobs
    assert sorted(runs.groupby("job")["replication"].apply(list).sum()) == sorted(
        list(range(replications)) * jobs)
    return table


def executed_by(sweep: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep.glob("*/provenance.json"))]


def slurm_task_process(task: str, sweep: Path) -> int | None:
    """The process id of the job that SLURM array task ``task`` of the sweep into ``sweep``
    runs: submitit's Python (not the ``srun`` that started it, whose command names it too)."""
    for status in Path("/proc").glob("[0-9]*/environ"):
        try:
            environment = status.read_bytes().split(b"\0")
            command = (status.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (f"SLURM_ARRAY_TASK_ID={task}".encode() in environment
                and Path(command[0].decode()).name.startswith("python")
                and b"submitit.core._submit" in command
                and any(str(sweep).encode() in part for part in command)):
            return int(status.parent.name)
    return None


# ------------------------------------------------------------------------------ the engines
@pytest.fixture(scope="module")
def partition() -> str:
    """The SLURM partition of the running cluster (``.ci/start-slurm``)."""
    try:
        import hydra_plugins.hydra_submitit_launcher  # noqa: F401
    except ImportError:
        unavailable('hydra-submitit-launcher is not installed (pip install -e ".[cluster]")')
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        unavailable("SLURM's sbatch/sinfo are not installed (run .ci/start-slurm)")
    done = subprocess.run(["sinfo", "-h", "-o", "%P %a"], capture_output=True, text=True,
                          timeout=30)
    up = [line.split()[0].rstrip("*") for line in done.stdout.splitlines()
          if line.endswith(" up")]
    if done.returncode != 0 or not up:
        unavailable(f"no SLURM partition is up (sinfo: {done.stderr.strip() or done.stdout})")
    return up[0]


class DaskCluster:
    """A Dask scheduler and two single-threaded worker processes (with their nanny), started
    as a user starts them, in a folder of their own."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        scheduler_file = folder / "scheduler.json"
        self.processes = [subprocess.Popen(
            [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)], cwd=folder,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        wait_for(scheduler_file.is_file, "the Dask scheduler", timeout=60)
        self.address = json.loads(scheduler_file.read_text())["address"]
        self.processes.append(subprocess.Popen(
            [str(DASK), "worker", self.address, "--nworkers", "2", "--nthreads", "1",
             "--no-dashboard"], cwd=folder, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
        from dask.distributed import Client
        self.client = Client(self.address, timeout=60)
        self.client.wait_for_workers(2, timeout=120)

    def worker_pids(self) -> set[int]:
        """The process ids of the workers now connected."""
        return set(self.client.run(os.getpid).values())

    def close(self) -> None:
        self.client.close()
        for process in reversed(self.processes):
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def dask_cluster(tmp_path) -> Iterator[DaskCluster]:
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        unavailable('Dask is not installed (pip install -e ".[cluster]")')
    cluster = DaskCluster(tmp_path / "dask-workers")
    try:
        yield cluster
    finally:
        cluster.close()


# ------------------------------------------------------------------------------ the tests
def test_the_same_sweep_gives_the_same_table_on_every_launcher(tmp_path, partition,
                                                               dask_cluster):
    out = tmp_path / "same"
    done = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "same_sweep.py"), "--out", str(out),
         "--partition", partition, "--dask-address", dask_cluster.address],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    report = {line.split()[0]: line for line in done.stdout.splitlines()[1:]}
    for launcher in ("submitit_local", "submitit_slurm", "dask"):
        assert " identical " in report[launcher], done.stdout
    reference = pd.read_parquet(out / "joblib" / "sweep_results.parquet")
    assert len(reference[["job", "replication"]].drop_duplicates()) == 6
    for launcher in ("submitit_local", "submitit_slurm", "dask"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / launcher / "sweep_results.parquet"),
                                      reference, check_exact=True)

    # SLURM ran it: each job was a task of one job array, which SLURM itself knows.
    slurm = [r["executed_by"] for r in executed_by(out / "submitit_slurm")]
    assert len(slurm) == 2 and all(r["pid"] != os.getpid() for r in slurm)
    assert sorted(r["slurm_array_task_id"] for r in slurm) == ["0", "1"]
    array = {r["slurm_array_job_id"] for r in slurm}
    assert len(array) == 1
    for record in slurm:
        shown = subprocess.run(["scontrol", "show", "job", record["slurm_job_id"]],
                               capture_output=True, text=True, timeout=30)
        assert f"ArrayJobId={record['slurm_array_job_id']}" in shown.stdout, shown.stderr
    # Dask ran it: each job in a process of the Dask workers, none of joblib's or this one's.
    dask_jobs = executed_by(out / "dask")
    pids = {r["executed_by"]["pid"] for r in dask_jobs}
    assert pids <= dask_cluster.worker_pids(), (pids, dask_cluster.worker_pids())
    joblib_pids = {r["executed_by"]["pid"] for r in executed_by(out / "joblib")}
    assert not pids & (joblib_pids | {os.getpid()})
    assert {r["launcher"] for r in dask_jobs} == {"dask"}
    assert {r["launcher"] for r in executed_by(out / "submitit_slurm")} == {"submitit_slurm"}


def test_a_sweep_on_dask_runs_in_the_launching_folder_and_survives_killed_workers(
        tmp_path, dask_cluster):
    """Relative paths mean the launching folder, whatever the workers' own; workers killed
    part-way are restarted by their nanny, Dask runs their jobs again, and each job carries
    on from its finished replications."""
    sweep = tmp_path / "sweep"
    command = [str(EXE), "-m", "hydra/launcher=dask",
               f"hydra.launcher.address={dask_cluster.address}", *SLOW_JOBS,
               "hydra.sweep.dir=sweep"]  # relative: the workers run in another folder
    started = dask_cluster.worker_pids()
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(finished_runs(sweep)) >= 2, "finished replications")
    for pid in started:  # both workers, each part-way through a job
        os.kill(pid, signal.SIGKILL)
    kept = finished_runs(sweep)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    assert 2 <= len(kept) < 12, "killed part-way"
    assert not (dask_cluster.folder / "sweep").exists()
    each_run_once(sweep, jobs=2, replications=6)
    assert all(finished_runs(sweep)[path] == written for path, written in kept.items()), \
        "a replication finished before the kill was run again"
    pids = {r["executed_by"]["pid"] for r in executed_by(sweep)}
    assert not pids & started and pids <= dask_cluster.worker_pids()


def test_a_cancelled_slurm_array_task_is_carried_on_by_the_same_command(tmp_path, partition):
    sweep = tmp_path / "sweep"
    command = ["-m", "hydra/launcher=submitit_slurm", f"hydra.launcher.partition={partition}",
               "hydra.launcher.array_parallelism=2", *SLOW_JOBS, f"hydra.sweep.dir={sweep}"]
    process = subprocess.Popen([str(EXE), *command], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(finished_runs(sweep)) >= 1, "a finished replication")
    job = slurm_task_process("1", sweep)
    assert job is not None, "array task 1 runs"
    os.kill(job, signal.SIGKILL)  # as a node that dies (scancel sends SIGTERM, which
    # submitit's jobs ignore, as it may mean preemption, and the job ends within KillWait)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 2, stderr[-3000:]
    lines = error_lines(subprocess.CompletedProcess([], 2, stdout, stderr))
    assert len(lines) == 1 and "run the same command again" in lines[0], stderr[-3000:]
    assert "Traceback" not in stderr
    kept = finished_runs(sweep)
    assert 1 <= len(kept) < 12, "cancelled part-way"

    again = discharge_sim(*command, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    each_run_once(sweep, jobs=2, replications=6)
    assert all(finished_runs(sweep)[path] == written for path, written in kept.items())
    collected = discharge_sim("collect", str(sweep), cwd=tmp_path, timeout=600)
    assert collected.returncode == 0 and "2 jobs, 12 runs" in collected.stdout, collected.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(sweep / "sweep_results.parquet"),
                                  each_run_once(sweep, jobs=2, replications=6))


def test_an_unreachable_dask_scheduler_or_slurm_partition_is_one_line(tmp_path, partition):
    pytest.importorskip("dask.distributed")
    done = discharge_sim("-m", "hydra/launcher=dask", "hydra.launcher.address=tcp://127.0.0.1:9",
                         "hydra.launcher.connect_timeout_s=2", *SMALL,
                         f"hydra.sweep.dir={tmp_path / 'a'}", cwd=tmp_path, timeout=600)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = error_lines(done)
    assert "hydra.launcher.address=tcp://127.0.0.1:9: no Dask scheduler answers there" in line

    done = discharge_sim("-m", "hydra/launcher=submitit_slurm",
                         "hydra.launcher.partition=no_such_partition", *SMALL,
                         f"hydra.sweep.dir={tmp_path / 'b'}", cwd=tmp_path, timeout=600)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = error_lines(done)
    assert "SLURM refused" in line and "hydra.launcher.partition" in line
    assert f"partitions: {partition}" in line
