"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import discharge_sim

from sim.config.schema import job_folder_name

SHORT = ["run.days=60", "run.warmup_days=14", "run.replications=2", "admissions.per_day=10",
         "acute.beds=106", "services.homecare.market.segments.0.providers=6",
         "services.homecare.market.segments.1.providers=3"]
"""A small system (a fifth of the default's admissions and beds, a third of its homecare
providers, so that each keeps some size) on a short run."""


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
    summary = (out / "summary.md").read_text()
    assert summary.strip() in done.stdout
    # Named from the scenario and the overrides that change results (not how many replications).
    title = summary.splitlines()[0]
    assert title.startswith("# Delayed discharge: baseline with ")
    assert all(o in title for o in SHORT if not o.startswith("run.replications"))
    assert "run.replications" not in title
    # No interval of a quantity that cannot be negative goes below zero; some were cut at 0
    # (two replications give wide intervals), and the summary says why.
    from sim.core.catalogue import catalogue
    from sim.config.schema import load_config
    bounds = {k: m.lower for k, m in catalogue(load_config(SHORT).params).items()}
    bounded = metrics[metrics["metric"].map(bounds).notna()]
    assert (bounded["ci_low"].dropna() >= 0).all()
    cut = bounded[(bounded["ci_low"] == 0) & (bounded["value"] > 0)]
    assert not cut.empty and "too few replications" in summary and "[-" not in summary


def test_cfg_job_prints_the_resolved_config(tmp_path):
    done = discharge_sim("--cfg", "job", "services.homecare.staff.count=120", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "count: 120" in done.stdout and "pathways:" in done.stdout


BAD_VALUES = [
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
]


def test_bad_values_get_a_one_line_error_and_a_non_zero_exit(tmp_path):
    results = run_all([[*override.split(), f"hydra.run.dir={tmp_path / str(i)}"]
                       for i, (override, _) in enumerate(BAD_VALUES)], tmp_path)
    for (override, name), done in zip(BAD_VALUES, results):
        line = one_error_line(done)
        assert name in line and "allowed" in line, (override, line)


BAD_KEYS = [
    ("services.homecare.staff.carerz=3", ["services.homecare.staff.carerz", "not in 'Staff'"]),
    ("+acute.extra=3", ["acute.extra", "not a setting"]),
    ("services.homecare.staff.count=lots", ["services.homecare.staff.count", "Integer"]),
    ("scenario=nope", ["scenario/nope", "extra_homecare"]),
    ("run.days", ["run.days"]),
]


def test_unknown_keys_wrong_types_and_bad_syntax_get_a_one_line_error(tmp_path):
    results = run_all([[override, f"hydra.run.dir={tmp_path / str(i)}"]
                       for i, (override, _) in enumerate(BAD_KEYS)], tmp_path)
    for (override, words), done in zip(BAD_KEYS, results):
        line = one_error_line(done)
        assert all(w in line for w in words), (override, line)


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
    done = discharge_sim("-m", "services.homecare.staff.count=-1,40", *SHORT, "output.charts=false",
                         f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert done.returncode == 2
    assert "services.homecare.staff.count=-1 is not allowed" in done.stderr and "Traceback" not in done.stderr
    jobs = [p for p in sweep.iterdir() if p.is_dir()]
    good = [p for p in jobs if not (p / "error.txt").is_file()]
    assert len(jobs) == 2 and len(good) == 1
    assert "staff:\n      count: 40" in (good[0] / ".hydra" / "config.yaml").read_text()
    assert len(list((good[0] / "replications").glob("*.metrics.csv"))) == 2


def test_a_sweep_collected_on_demand_holds_every_run_once_and_says_what_is_missing(tmp_path):
    sweep = tmp_path / "sweep"
    done = discharge_sim("-m", "services.homecare.staff.count=30,40", *SHORT,
                         "output.charts=false", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    at_end = pd.read_parquet(sweep / "sweep_results.parquet")
    (sweep / "sweep_results.parquet").unlink()
    job = at_end.loc[at_end["services.homecare.staff.count"] == 40, "job"].iloc[0]
    (sweep / job / "replications" / "rep-0001.metrics.csv").unlink()  # as if not finished

    collected = discharge_sim("collect", str(sweep), cwd=tmp_path)
    assert collected.returncode == 0, collected.stderr
    assert "Collected 2 jobs, 3 runs" in collected.stdout
    assert f"{job}: 1 of 2 replications finished" in collected.stdout
    table = pd.read_parquet(sweep / "sweep_results.parquet")
    unfinished = (at_end["job"] == job) & (at_end["replication"] == 1)
    pd.testing.assert_frame_equal(table, at_end[~unfinished].reset_index(drop=True))
    # Each job records where it executed: this machine, a process of the joblib launcher.
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/provenance.json"))]
    assert [r["launcher"] for r in records] == ["joblib", "joblib"]
    assert {r["executed_by"]["host"] for r in records} == {os.uname().nodename}
    assert "slurm_job_id" not in records[0]["executed_by"]


@pytest.mark.parametrize("arguments, words", [
    (["-m", "hydra/launcher=nope", *SHORT],
     "hydra/launcher=nope is not a launcher: one of joblib, submitit_local, submitit_slurm, "
     "dask"),
    (["collect", "no_such_folder"], "no_such_folder is not a folder"),
    (["collect"], "usage: discharge-sim collect SWEEP_DIR"),
])
def test_an_unknown_launcher_or_a_bad_collect_is_one_line(tmp_path, arguments, words):
    done = discharge_sim(*arguments, cwd=tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], done.stderr


@pytest.mark.slow
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


@pytest.mark.slow
def test_an_analysis_that_would_pool_different_systems_is_refused_in_one_line(tmp_path):
    done = discharge_sim("-m", *SHORT, "services.homecare.staff.count=30,31",
                         "experiment.analysis=scenario_comparison",
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


def run_all(commands: list[list[str]], cwd: Path) -> list[subprocess.CompletedProcess]:
    """Several commands at once (each is mostly start-up time)."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda args: discharge_sim(*args, cwd=cwd), commands))


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The one line a refusal prints (asserting that it is one line, exit status 2)."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.replace("\r", "\n").splitlines()
             if line.strip() and "replications:" not in line]
    assert len(lines) == 1, done.stderr
    return lines[0]


REFUSED_BEFORE_RUNNING = [
    # Systems that cannot work by construction: nobody on these pathways would ever leave.
    ("assessment.staff=0", ["assessment.staff=0 is not allowed", "pathways.p1",
                            "assessment.in_hospital=false"]),
    ("services.homecare.staff.count=0", ["services.homecare.staff.count=0 is not allowed",
                                         "none of them would ever leave hospital"]),
    ("services.care_home.capacity=0", ["services.care_home.capacity=0.0 is not allowed"]),
    # One carer (25 carer-hours a week): some packages are larger than all of homecare.
    ("services.homecare.staff.count=1", ["services.homecare.amount=", "is not allowed",
                                         "25 carer-hours/week", "wait for ever"]),
    # Runs that would not fit in memory: the estimate and the setting to change.
    ("run.days=1e7", ["run.days=10000000.0 is not allowed", "patients", "GiB",
                      "make run.days at most about"]),
    ("run.days=1e9", ["run.days=1000000000.0 is not allowed", "TiB"]),
    ("admissions.per_day=1e6", ["admissions.per_day=1000000.0 is not allowed", "memory",
                                "make admissions.per_day at most about"]),
    # Finite but extreme distribution values, refused before they overflow.
    ("pathways.p3.acute_stay.sd=1e200", ["pathways.p3.acute_stay.sd=1e+200 is not allowed",
                                         "times the mean"]),
    ("pathways.p3.acute_stay.mean=1e308", ["pathways.p3.acute_stay.mean=1e+308 is not allowed"]),
    ("services.homecare.amount.kind=exponential services.homecare.amount.sd=3",
     ["services.homecare.amount.sd=3.0 is not allowed", "kind=exponential"]),
    # Checked before the first replication, not after the last.
    ("run.precision_metric=nosuch run.precision=0.1",
     ["run.precision_metric='nosuch' is not allowed", "delayed_days_per_30d"]),
    # Overrides Hydra's lexer cannot read: a plain line naming the override.
    ("acute.beds=\u00fc", ["the override 'acute.beds=\u00fc' cannot be read", "quotes"]),
    ("acute.beds=[1,2", ["the override 'acute.beds=[1,2' cannot be read", "brackets"]),
]


def nothing_written(folder: Path) -> bool:
    """The folder holds nothing a run writes (at most the empty log Hydra opens)."""
    return not folder.exists() or all(
        p.suffix == ".log" and p.stat().st_size == 0 for p in folder.rglob("*"))


def test_what_cannot_run_is_refused_at_once_in_one_line(tmp_path):
    """Each refused before anything is written."""
    commands = [[*case.split(), f"hydra.run.dir={tmp_path / str(i)}"]
                for i, (case, _) in enumerate(REFUSED_BEFORE_RUNNING)]
    for i, ((case, words), done) in enumerate(zip(REFUSED_BEFORE_RUNNING,
                                                   run_all(commands, tmp_path))):
        line = one_error_line(done)
        assert all(w in line for w in words), (case, line)
        assert nothing_written(tmp_path / str(i)), case


def test_a_malformed_scenario_file_is_one_line_naming_the_file_and_the_line(tmp_path):
    configs = tmp_path / "configs" / "scenario"
    configs.mkdir(parents=True)
    (configs / "unclosed.yaml").write_text("# @package _global_\nname: unclosed\n"
                                           "acute:\n  beds: [1, 2\n")
    (configs / "tabbed.yaml").write_text("# @package _global_\nname: tabbed\nacute:\n\tbeds: 3\n")
    search = f"hydra.searchpath=[file://{tmp_path / 'configs'}]"
    unclosed, tabbed = run_all([[search, "scenario=unclosed"], [search, "scenario=tabbed"]],
                               tmp_path)
    line = one_error_line(unclosed)
    assert "unclosed.yaml, line 4" in line and "close the bracket" in line
    line = one_error_line(tabbed)
    assert "tabbed.yaml, line 4" in line and "not tabs" in line


def _read_only_folder(folder: Path) -> Path:
    """A folder nobody can write to: a read-only tmpfs for root (who ignores permissions),
    else a folder without write permission."""
    folder.mkdir()
    if os.geteuid() == 0:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                              capture_output=True)
        if done.returncode != 0:
            pytest.skip("root cannot be refused writing here without mounting a read-only tmpfs")
    else:
        folder.chmod(0o555)
    return folder


def test_an_output_folder_that_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    read_only = _read_only_folder(tmp_path / "read_only")
    try:
        cases = [(tmp_path / "a_file", ["a_file is a file, not a folder", "hydra.run.dir"]),
                 (tmp_path / "a_file" / "run", ["a_file is a file, not a folder"]),
                 (read_only, ["cannot write to", "read_only", "hydra.run.dir"]),
                 (read_only / "run", ["cannot write to", "read_only"])]
        results = run_all([[*SHORT, f"hydra.run.dir={folder}"] for folder, _ in cases], tmp_path)
        for (folder, words), done in zip(cases, results):
            line = one_error_line(done)
            assert all(w in line for w in words), (folder, line)
        assert (tmp_path / "a_file").read_text() == "not a folder"
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(read_only)], capture_output=True)


def test_changing_a_distributions_kind_alone_drops_its_unused_sd(tmp_path):
    out = tmp_path / "run"
    done = discharge_sim(*SHORT, "output.charts=false", "pathways.p3.acute_stay.kind=exponential",
                         f"hydra.run.dir={out}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    import yaml
    stay = yaml.safe_load((out / ".hydra" / "config.yaml").read_text())["pathways"]["p3"][
        "acute_stay"]
    assert stay["kind"] == "exponential" and stay["sd"] == 0 and stay["mean"] == 14.0


def test_a_queue_that_grows_all_run_is_reported_and_its_waits_count_everyone(tmp_path):
    """Too few beds for the admissions: the queue for beds grows all run. The console and the
    summary say so with the figures, and the share who waited for a bed counts those still
    waiting at the end (checked against the patient log)."""
    out = tmp_path / "run"
    done = discharge_sim(*SHORT, "acute.beds=60", "output.charts=false",
                         f"hydra.run.dir={out}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    warning = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and "the queue for acute beds grew all run in 2 of 2" in warning[0]
    assert "people waiting at the end" in warning[0] and "were admitted" in warning[0]
    summary = (out / "summary.md").read_text()
    assert "## Warning: queues that grew all run" in summary
    per_run = pd.read_csv(out / "replications.csv")
    patients = pd.read_csv(out / "patients.csv")
    for k, log in patients.groupby("replication"):
        values = per_run[per_run["replication"] == k].set_index("metric")["value"]
        arrived = log[(log["arrival"] >= 14) & ~log["diverted"]]
        waited = arrived["bed"].isna() | (arrived["bed"] > arrived["arrival"])
        assert arrived["bed"].isna().sum() > 0, "some still wait at the end"
        assert values["bed_wait_share"] == pytest.approx(waited.mean(), abs=1e-12)
        assert values["bed_queue_end"] == (log["bed"].isna() & ~log["diverted"]).sum()


def test_the_default_run_folder_is_named_from_the_scenario_and_the_overrides(tmp_path):
    """No ``hydra.run.dir``: the run goes to results/runs/<scenario>+<overrides that change
    results>/<time> (not how many replications, nor what to write), and without such overrides
    to results/runs/<scenario>/<time>; the command recorded is the one typed. The harm
    scenario's summary has its harm section and counts deaths in the conservation line."""
    harm = ["scenario=harm", *SHORT, "output.charts=false", "output.patients_csv=false"]
    plain = ["run.replications=1", "output.charts=false", "output.patients_csv=false"]
    for args, done in zip([harm, plain], run_all([harm, plain], tmp_path)):
        assert done.returncode == 0, done.stderr
    changes = ",".join(sorted(o for o in SHORT if not o.startswith("run.replications")))
    named = job_folder_name(f"harm+{changes}")  # (shortened with a hash when too long)
    runs = tmp_path / "results" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["baseline", named]
    for folder, args in ((runs / named, harm), (runs / "baseline", plain)):
        (out,) = folder.iterdir()
        assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", out.name), out.name
        assert (out / "summary.md").is_file() and (out / "metrics.csv").is_file()
        assert json.loads((out / "provenance.json").read_text())["command"][1:] == args
    (out,) = (runs / named).iterdir()
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# Delayed discharge: harm with ")
    assert "## Harm of waiting" in summary and "Deaths in hospital" in summary
    metrics = pd.read_csv(out / "metrics.csv").set_index("metric")
    died = int(metrics.loc["died_total", "value"])
    assert metrics.loc["died_total", "summary"] == "total" and died > 0
    assert f"+ {died:,} died + " in summary and "**OK**" in summary
    (out,) = (runs / "baseline").iterdir()
    assert "Harm of waiting" not in (out / "summary.md").read_text()
