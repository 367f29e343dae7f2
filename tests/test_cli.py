"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SHORT = ["run.days=60", "run.warmup_days=14", "run.replications=2", "admissions.per_day=10",
         "acute.beds=106"]


def discharge_sim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "discharge-sim"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_run_writes_every_output_and_prints_the_summary(tmp_path):
    out = tmp_path / "run"
    done = discharge_sim(*SHORT, f"hydra.run.dir={out}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Delayed discharges by pathway" in done.stdout and "Pathway 3: care home" in done.stdout
    for name in ("patients.csv", "metrics.csv", "summary.md", "daily.csv",
                 "delayed_days_by_pathway.png", "fit_in_hospital.png", ".hydra/config.yaml"):
        assert (out / name).is_file(), name
    metrics = pd.read_csv(out / "metrics.csv")
    assert {"metric", "value", "unit"} <= set(metrics.columns)
    assert (metrics.loc[metrics["metric"] == "conservation_error", "value"] == 0).all()
    patients = pd.read_csv(out / "patients.csv")
    assert {"arrival", "fit", "left", "pathway", "delay", "delay_service", "delay_rule"} <= set(
        patients.columns)
    assert set(patients["replication"]) == {0, 1}
    assert (out / "summary.md").read_text().strip() in done.stdout


def test_cfg_job_prints_the_resolved_config(tmp_path):
    done = discharge_sim("--cfg", "job", "services.homecare.staff.count=120", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "count: 120" in done.stdout and "pathways:" in done.stdout


@pytest.mark.parametrize("override, names", [
    ("services.homecare.staff.count=-5", "services.homecare.staff.count"),
    ("acute.beds=0", "acute.beds"),
    ("pathways.p1.share=0.9", "p1.share"),
    ("services.step_down.then.home=0.9", "services.step_down.then"),
    ("services.care_home.initial_utilisation=1.2", "services.care_home.initial_utilisation"),
    ("pathways.p2.acute_stay.kind=weibull", "pathways.p2.acute_stay.kind"),
    ("pathways.p2.acute_stay.sd=-1", "pathways.p2.acute_stay.sd"),
    ("pathways.p0.rule.days=[0,9]", "pathways.p0.rule.days"),
    ("run.warmup_days=500", "run.warmup_days"),
    ("run.precision_metric=nonsense run.precision=0.1 run.days=20 run.warmup_days=1",
     "run.precision_metric"),
])
def test_bad_values_get_a_one_line_error_and_a_non_zero_exit(tmp_path, override, names):
    done = discharge_sim(*override.split(), cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip() and "replications:" not in line]
    assert len(lines) == 1 and names in lines[0] and "allowed" in lines[0], done.stderr


@pytest.mark.parametrize("override, words", [
    ("services.homecare.staff.carerz=3", ["services.homecare.staff.carerz", "not in 'Staff'"]),
    ("+acute.extra=3", ["acute.extra", "not a setting"]),
    ("services.homecare.staff.count=lots", ["services.homecare.staff.count", "Integer"]),
    ("scenario=nope", ["scenario/nope", "extra_homecare"]),
    ("run.days", ["run.days"]),
])
def test_unknown_keys_wrong_types_and_bad_syntax_get_a_one_line_error(tmp_path, override, words):
    done = discharge_sim(override, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and all(w in lines[0] for w in words), done.stderr


def test_run_records_how_it_was_made(tmp_path):
    out = tmp_path / "run"
    done = discharge_sim(*SHORT, "output.charts=false", f"hydra.run.dir={out}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "provenance.json").read_text())
    assert record["seed"] == 20240101 and record["replications"] == 2
    assert record["packages"]["simpy"] != "not installed"
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", record["git_revision"]), record["git_revision"]
    assert "beds: 106" in (out / ".hydra" / "config.yaml").read_text()


def test_a_bad_job_in_a_sweep_fails_the_sweep_but_keeps_the_others(tmp_path):
    sweep = tmp_path / "sweep"
    done = discharge_sim("-m", "services.homecare.staff.count=-1,30", *SHORT, "output.charts=false",
                         f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert done.returncode == 2
    assert "services.homecare.staff.count=-1 is not allowed" in done.stderr and "Traceback" not in done.stderr
    good = [p for p in sweep.iterdir() if p.name.startswith("acute.beds") and "staff.count=30" in p.name]
    assert len(good) == 1 and len(list((good[0] / "replications").glob("*.metrics.csv"))) == 2


def test_a_second_sweep_into_the_same_folder_collects_only_its_own_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    first = discharge_sim("-m", *SHORT, "services.homecare.staff.count=30", f"hydra.sweep.dir={sweep}",
                          cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = discharge_sim("-m", *SHORT, "services.homecare.staff.count=31,32", f"hydra.sweep.dir={sweep}",
                           cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    table = pd.read_csv(sweep / "sweep_results.csv")
    assert sorted(table["services.homecare.staff.count"].unique()) == [31, 32]


def test_an_analysis_that_would_pool_different_systems_is_refused_in_one_line(tmp_path):
    done = discharge_sim("-m", *SHORT, "services.homecare.staff.count=30,31",
                         "+hydra.callbacks.collect.analysis=scenario_comparison",
                         f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert done.returncode == 2
    assert "needs one job per scenario; this sweep also varies services.homecare.staff.count" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("arguments, words", [
    (["warmup", "scenario=nope"], "Could not find 'scenario/nope'"),
    (["validation", "run.replications=1"], "run.replications=1 is not allowed: an integer >= 2"),
    (["scenario_comparison", "services.homecare.staff.count=-3"],
     "services.homecare.staff.count=-3 is not allowed"),
    (["nonsense"], "experiment 'nonsense' is not allowed: one of"),
])
def test_experiments_give_a_one_line_error(tmp_path, arguments, words):
    path = Path(__file__).parents[1] / "experiments" / "run.py"
    done = subprocess.run([sys.executable, str(path), *arguments], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert words in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
