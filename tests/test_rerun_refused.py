"""A rerun into a folder that holds results of another configuration never reuses them (issue
24), on every path that keeps results: a run (``discharge-sim``), a sweep (``-m``), an
experiment (``experiments/run.py NAME``) and the calibration's resumable study. Tried as a user
would: the same command again with only ``run.warmup_days`` changed. Changed on the command
line, a sweep's job gets a folder of its own (named from the overrides) and starts afresh;
changed where the folder name cannot show it (a scenario file edited), the rerun is refused in
one line with exit status 2, and the first run's results are left as they were."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import discharge_sim, small_params
from sim.core.params import override
from sim.running.calibration import CalibrationError, Parameter, Source, Target, calibrate

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments" / "run.py"
SHORT = ["run.days=30", "run.replications=1", "output.charts=false"]
"""A short run of the default system (seconds)."""
SMALL = ["admissions.per_day=10", "acute.beds=106"]
"""A smaller hospital, for experiments whose settings are checked with the baseline's warm-up
(112 days) before the sweep's scenario is applied."""


def experiment(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXPERIMENTS), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    """What a command printed on stderr, less the progress bar and Hydra's log lines."""
    return [line for line in done.stderr.replace("\r", "\n").splitlines()
            if line.strip() and "replications:" not in line and "][HYDRA]" not in line]


def contents(folder: Path, leave_out: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file under ``folder`` (but those named in ``leave_out``) and its content's hash."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in leave_out}


def refused(done: subprocess.CompletedProcess, folder: Path) -> str:
    """The one line of a rerun refused for holding another configuration's results."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = error_lines(done)
    assert len(lines) == 1, done.stderr
    assert str(folder) in lines[0] and "different configuration" in lines[0], lines[0]
    return lines[0]


def scenario(configs: Path, warmup_days: float) -> str:
    """A scenario file ``mine`` with this warm-up, in a config folder of the user's; the
    override that puts the folder on Hydra's search path."""
    (configs / "scenario").mkdir(parents=True, exist_ok=True)
    (configs / "scenario" / "mine.yaml").write_text(
        f"# @package _global_\nname: mine\nrun:\n  warmup_days: {warmup_days}\n")
    return f"hydra.searchpath=[file://{configs}]"


# ----------------------------------------------------------------------------- a run
def test_a_run_again_with_another_warm_up_is_refused_in_one_line(tmp_path):
    """The issue's case: the same folder, only ``run.warmup_days`` changed. Also the same
    settings with a table's entries in another order (which changes the numbers)."""
    folder = tmp_path / "run"
    first = discharge_sim(*SHORT, "run.warmup_days=5", f"hydra.run.dir={folder}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = contents(folder)
    for changes in (["run.warmup_days=6"],
                    ["run.warmup_days=5", "~services.step_down.then.home",
                     "+services.step_down.then.home=0.55"]):
        done = discharge_sim(*SHORT, *changes, f"hydra.run.dir={folder}", cwd=tmp_path)
        refused(done, folder / "replications")
        assert contents(folder) == before, f"{changes} changed the folder"
    again = discharge_sim(*SHORT, "run.warmup_days=5", f"hydra.run.dir={folder}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr  # the same settings: the folder is reused


# ----------------------------------------------------------------------------- a sweep
@pytest.mark.slow
def test_a_sweep_again_with_another_warm_up_starts_afresh_or_is_refused(tmp_path):
    """On the command line, another warm-up names another job folder: its job runs afresh,
    and the sweep's table holds it alone. In a scenario file, the job's folder is the same:
    the job is refused, the sweep exits 2, and the folder keeps what it held."""
    sweep = tmp_path / "sweep"
    search = scenario(tmp_path / "configs", 5)
    command = ["-m", search, "scenario=mine", *SHORT, f"hydra.sweep.dir={sweep}"]
    first = discharge_sim(*command, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    job = _jobs(sweep)[0]
    before = contents(job)

    afresh = discharge_sim(*command, "run.warmup_days=6", cwd=tmp_path)
    assert afresh.returncode == 0, afresh.stderr
    assert contents(job) == before
    assert_only_the_new_job_is_collected(sweep, job)

    held = contents(sweep, leave_out=("multirun.yaml",))  # (Hydra's record of each sweep)
    scenario(tmp_path / "configs", 6)  # edited: the job's folder name cannot show it
    done = discharge_sim(*command, cwd=tmp_path)
    assert_the_job_is_refused(done, job)
    assert contents(sweep, leave_out=("multirun.yaml", "error.txt")) == held


def _jobs(sweep: Path) -> list[Path]:
    return sorted(p.parent.parent for p in sweep.glob("*/.hydra/overrides.yaml"))


def assert_only_the_new_job_is_collected(sweep: Path, old: Path) -> None:
    """The sweep's table holds the job with the new warm-up alone, in a folder of its own."""
    table = pd.read_csv(sweep / "sweep_results.csv")
    (new,) = set(table["job"])
    assert new != old.name and "run.warmup_days=6" in new
    assert set(table["run.warmup_days"]) == {6}
    assert len(_jobs(sweep)) == 2


def assert_the_job_is_refused(done: subprocess.CompletedProcess, job: Path) -> None:
    """The sweep exits 2, without a traceback, naming the job's folder in one line."""
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    failed = [line for line in error_lines(done) if line.startswith("discharge-sim: error in ")]
    assert len(failed) == 1, done.stderr
    assert str(job / "replications") in failed[0] and "different configuration" in failed[0]
    assert "1 of the sweep's jobs failed" in done.stderr


# ----------------------------------------------------------------------------- an experiment
@pytest.mark.slow
def test_an_experiment_again_with_another_warm_up_starts_afresh_or_is_refused(tmp_path):
    """``experiments/run.py`` writes to ``results/NAME/`` whatever the settings: the same
    rules as a sweep."""
    search = scenario(tmp_path / "configs", 5)
    command = ["weekend_rules", search, "hydra.sweeper.params.scenario=mine", "run.days=120",
               "run.replications=2", *SMALL]
    folder = tmp_path / "results" / "weekend_rules"
    first = experiment(*command, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    job = _jobs(folder)[0]
    before = contents(job)

    afresh = experiment(*command, "run.warmup_days=6", cwd=tmp_path)
    assert afresh.returncode == 0, afresh.stderr
    assert contents(job) == before
    assert_only_the_new_job_is_collected(folder, job)

    scenario(tmp_path / "configs", 6)
    done = experiment(*command, cwd=tmp_path)
    assert_the_job_is_refused(done, job)
    assert contents(job, leave_out=("error.txt",)) == before


# ----------------------------------------------------------------------------- the calibration
SOURCE = Source("simulated", "this test", "today", "-")


def _tiny_calibration(params, folder: Path):
    targets = [Target("delay", "delay_mean.all", 1.5, 0.2, SOURCE)]
    parameters = [Parameter("acute.beds", 80, 140, integer=True)]
    return calibrate(params, targets, parameters, trials=2, replications=1, workers=1, seed=1,
                     batch=2, store_folder=folder)


def test_a_calibration_again_with_another_warm_up_is_refused(tmp_path):
    """The study in the store folder is resumed by the same system only: another warm-up, or
    the same pathways in another order, is refused before any trial runs."""
    base = small_params(run__days=40.0, run__warmup_days=5.0)
    first = _tiny_calibration(base, tmp_path)
    for other in (override(base, {"run.warmup_days": 6.0}),
                  override(base, {"pathways": dict(reversed(list(base.pathways.items())))})):
        with pytest.raises(CalibrationError, match="another system"):
            _tiny_calibration(other, tmp_path)
    again = _tiny_calibration(base, tmp_path)  # the same system: resumed, nothing run again
    assert again.trials.equals(first.trials)


def test_the_calibration_experiment_again_with_another_warm_up_is_refused_in_one_line(tmp_path):
    """``experiments/run.py calibration`` keeps its study in ``results/calibration/``."""
    command = ["calibration", "experiment.trials=1", "experiment.keep=1",
               "experiment.confirm_replications=0", "run.replications=1", "run.days=120",
               *SMALL]
    first = experiment(*command, "run.warmup_days=5", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "results" / "calibration"
    before = contents(folder)
    done = experiment(*command, "run.warmup_days=6", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = error_lines(done)
    assert len(lines) == 1 and "calibration of another system" in lines[0], done.stderr
    assert contents(folder) == before
