"""Faults, through the command line as a user meets them: a run killed with ``kill -9`` and
run again, run again once more, a refused run into a finished folder, two runs into one folder
at once, and a full disk. Nothing a user ran may be lost, a refused run changes nothing, and
every refusal is one line with exit status 2."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import EXE, discharge_sim

# Replications of about a second each, so that a run can be caught part-way.
RUN = ["run.days=400", "run.warmup_days=14", "admissions.per_day=30", "acute.beds=320",
       "output.charts=false"]
SHORT = ["run.days=60", "run.warmup_days=14", "run.replications=3", "admissions.per_day=10",
         "acute.beds=106", "output.charts=false", "output.workers=1"]


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    """What a failed command printed, less the progress bar."""
    return [line for line in done.stderr.replace("\r", "\n").splitlines()
            if line.strip() and "replications:" not in line]


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: its content's hash and modification time."""
    return {str(p.relative_to(folder)): (hashlib.sha1(p.read_bytes()).hexdigest(),
                                         p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux /proc), and theirs."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found + [g for c in found for g in children(c)]


def running(pid: int) -> bool:
    """The process exists and is not a zombie (killed, waiting to be reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status and "\nState:\tX" not in status


def wait_for(condition, what: str, process: subprocess.Popen | None = None,
             timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        assert process is None or process.poll() is None, f"the run ended before {what}"
        time.sleep(0.05)


def finished(folder: Path) -> list[Path]:
    return sorted((folder / "replications").glob("rep-*.metrics.csv"))


def same_tables(folder: Path, reference: Path) -> None:
    """Every table of a run equals the reference run's (same config and seed)."""
    for name in ("metrics.csv", "replications.csv", "daily.csv", "patients.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(folder / name), pd.read_csv(reference / name),
                                      obj=name)


linux_only = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """A clean run of :data:`RUN` with 6 replications, to compare the faulty ones with."""
    folder = tmp_path_factory.mktemp("reference") / "run"
    done = discharge_sim(*RUN, "run.replications=6", f"hydra.run.dir={folder}",
                         cwd=folder.parent)
    assert done.returncode == 0, done.stderr
    return folder


@pytest.mark.slow
@linux_only
def test_kill_9_ends_the_workers_and_a_rerun_then_a_second_rerun_lose_nothing(tmp_path,
                                                                              reference):
    folder = tmp_path / "run"
    command = [str(EXE), *RUN, "run.replications=6", "output.workers=2",
               f"hydra.run.dir={folder}"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_for(lambda: len(finished(folder)) >= 1, "a finished replication", process)
    workers = children(process.pid)
    assert workers, "the run works in worker processes"
    process.send_signal(signal.SIGKILL)  # no clean-up at all
    process.wait()
    wait_for(lambda: not any(running(w) for w in workers), "the workers to end", timeout=5)
    kept = len(finished(folder))
    assert 1 <= kept < 6, "killed part-way"

    rerun = discharge_sim(*command[1:], cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    same_tables(folder, reference)
    assert set(pd.read_csv(folder / "patients.csv")["replication"]) == set(range(6))

    before = pd.read_csv(folder / "patients.csv")
    again = discharge_sim(*command[1:], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    pd.testing.assert_frame_equal(pd.read_csv(folder / "patients.csv"), before)
    same_tables(folder, reference)


@pytest.mark.slow
@linux_only
def test_kill_9_of_a_sweep_ends_its_workers(tmp_path):
    sweep = tmp_path / "sweep"
    process = subprocess.Popen(
        [str(EXE), "-m", *RUN, "acute.beds=320,330", "run.replications=4",
         "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(list(sweep.glob("*/replications/rep-*.metrics.csv"))) >= 1,
             "a finished replication", process)
    workers = children(process.pid)
    assert workers, "the sweep runs its jobs in worker processes"
    process.send_signal(signal.SIGKILL)
    process.wait()
    wait_for(lambda: not any(running(w) for w in workers), "the workers to end", timeout=5)


def test_a_refused_rerun_changes_nothing_in_the_folder(tmp_path):
    folder = tmp_path / "run"
    first = discharge_sim(*SHORT, f"hydra.run.dir={folder}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = snapshot(folder)
    for change, words in [("acute.beds=-1", "acute.beds=-1 is not allowed"),
                          ("acute.beds=107", "different configuration"),
                          ("run.precision_metric=nosuch", "run.precision_metric='nosuch'")]:
        done = discharge_sim(*SHORT, change, f"hydra.run.dir={folder}", cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        lines = error_lines(done)
        assert len(lines) == 1 and words in lines[0], done.stderr
        assert snapshot(folder) == before, f"{change} changed the folder"
    assert "beds: 106" in (folder / ".hydra" / "config.yaml").read_text()
    # Run again as it was: nothing is simulated again, and every output is whole.
    patients = pd.read_csv(folder / "patients.csv")
    assert set(patients["replication"]) == {0, 1, 2}
    again = discharge_sim(*SHORT, f"hydra.run.dir={folder}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    pd.testing.assert_frame_equal(pd.read_csv(folder / "patients.csv"), patients)
    assert all(snapshot(folder)[name] == before[name] for name in before
               if name.startswith("replications/"))


@pytest.mark.slow
def test_a_sweep_run_again_keeps_every_jobs_patient_log(tmp_path):
    sweep = tmp_path / "sweep"
    command = ["-m", *SHORT, "acute.beds=106,110", f"hydra.sweep.dir={sweep}"]
    assert discharge_sim(*command, cwd=tmp_path).returncode == 0
    logs = {job: pd.read_csv(job) for job in sweep.glob("*/patients.csv")}
    assert len(logs) == 2
    again = discharge_sim(*command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    for job, log in logs.items():
        assert set(log["replication"]) == {0, 1, 2}
        pd.testing.assert_frame_equal(pd.read_csv(job), log)


def test_a_refused_run_into_a_new_folder_writes_nothing_there(tmp_path):
    folder = tmp_path / "new"
    done = discharge_sim(*SHORT, "acute.beds=-1", f"hydra.run.dir={folder}", cwd=tmp_path)
    assert done.returncode == 2
    # At most the empty log file Hydra opens before the run starts.
    assert all(p.suffix == ".log" and p.stat().st_size == 0 for p in folder.rglob("*"))


@pytest.mark.slow
def test_two_runs_into_one_folder_at_once_the_second_is_refused(tmp_path, reference):
    folder = tmp_path / "run"
    command = [*RUN, "run.replications=6", "output.workers=1", f"hydra.run.dir={folder}"]
    first = subprocess.Popen([str(EXE), *command], cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (folder / ".hydra" / "overrides.yaml").is_file(), "the first run to start",
             first)
    second = discharge_sim(*command, cwd=tmp_path)
    assert second.returncode == 2
    lines = error_lines(second)
    assert len(lines) == 1 and "in use by another discharge-sim run" in lines[0], second.stderr
    assert str(folder) in lines[0] and "hydra.run.dir" in lines[0]
    assert first.wait(timeout=300) == 0, first.stderr.read()
    same_tables(folder, reference)


def _mount_small_disk(folder: Path, size: str) -> bool:
    """Mount a tmpfs of ``size`` on ``folder`` (root on Linux); False if that is not possible."""
    folder.mkdir()
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


SIMULATED_FULL_DISK = textwrap.dedent("""
    import errno, os, sys
    replace = os.replace
    def full(source, destination, *args, **kwargs):
        if "rep-0002" in str(destination):  # the disk fills up at the third replication
            os.remove(source)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(destination))
        return replace(source, destination, *args, **kwargs)
    os.replace = full
    from sim.config.cli import main
    sys.argv[0] = "discharge-sim"
    main()
""")


@pytest.mark.parametrize("disk_kind", [
    "small tmpfs", pytest.param("simulated", marks=pytest.mark.slow)])
def test_a_full_disk_is_one_line_and_keeps_every_finished_replication(tmp_path, disk_kind):
    disk = tmp_path / "disk"
    mounted = disk_kind == "small tmpfs" and _mount_small_disk(disk, "1m")
    if disk_kind == "small tmpfs" and not mounted:
        pytest.skip("cannot mount a tmpfs here (needs root on Linux): the simulated case, "
                    "marked slow, runs instead")
    disk.mkdir(exist_ok=True)
    folder = disk / "run"
    command = [*SHORT, "run.replications=6", "run.days=300", f"hydra.run.dir={folder}"]
    try:
        if mounted:
            done = discharge_sim(*command, cwd=tmp_path)
        else:
            done = subprocess.run([sys.executable, "-c", SIMULATED_FULL_DISK, *command],
                                  cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, done.stderr
        lines = error_lines(done)
        assert len(lines) == 1 and "no space left" in lines[0], done.stderr
        assert "Traceback" not in done.stderr
        kept = finished(folder)
        assert 1 <= len(kept) < 6
        assert f"the {len(kept)} finished replications are kept" in lines[0]
        assert "run the same command again" in lines[0]
        # What was kept is complete, and the same as an undisturbed run's.
        clean = tmp_path / "clean"
        reference = discharge_sim(*command[:-1], f"hydra.run.dir={clean}", cwd=tmp_path)
        assert reference.returncode == 0, reference.stderr
        for path in kept:
            pd.testing.assert_frame_equal(pd.read_csv(path),
                                          pd.read_csv(clean / "replications" / path.name))
        assert not list(folder.rglob("*.tmp")), "no half-written files"
        # With space again, the same command carries on where it stopped and finishes.
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=50m", str(disk)], check=True)
        again = discharge_sim(*command, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        same_tables(folder, clean)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(disk)])
