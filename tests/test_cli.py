"""The command line, run as a user runs it."""

from __future__ import annotations

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
    assert "Delayed discharges by pathway" in done.stdout and "P3 care home" in done.stdout
    for name in ("patients.csv", "metrics.csv", "summary.md", "daily.csv",
                 "delayed_days_by_pathway.png", "fit_in_hospital.png", ".hydra/config.yaml"):
        assert (out / name).is_file(), name
    metrics = pd.read_csv(out / "metrics.csv")
    assert {"metric", "value", "unit"} <= set(metrics.columns)
    assert (metrics.loc[metrics["metric"] == "conservation_error", "value"] == 0).all()
    patients = pd.read_csv(out / "patients.csv")
    assert {"arrival", "fit", "left", "pathway", "delay", "delay_package", "delay_rule"} <= set(
        patients.columns)
    assert set(patients["replication"]) == {0, 1}
    assert (out / "summary.md").read_text().strip() in done.stdout


def test_cfg_job_prints_the_resolved_config(tmp_path):
    done = discharge_sim("--cfg", "job", "homecare.carers=120", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "carers: 120" in done.stdout and "pathways:" in done.stdout


@pytest.mark.parametrize("override, names", [
    ("homecare.carers=-5", "homecare.carers"),
    ("pathways.p1.share=0.9", "p1.share"),
    ("pathways.p2.acute_stay.kind=weibull", "pathways.p2.acute_stay.kind"),
    ("run.warmup_days=500", "run.warmup_days"),
])
def test_bad_values_get_a_one_line_error_and_a_non_zero_exit(tmp_path, override, names):
    done = discharge_sim(override, cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and names in lines[0] and "allowed" in lines[0], done.stderr
