"""Forecasting from a snapshot of today: the back-test of its prediction bands against the
model's own runs, an empty snapshot against a cold start, dated changes on their day, and
every bad snapshot file refused in one line naming the line and the column."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim import Params
from sim.core.metrics import compute_daily
from sim.core.model import Model, patient_table, simulate
from sim.core.params import override
from sim.core.start import Change, Snapshot, StartPatient, StartService
from sim.config.forecast_command import forecast_command, main as forecast_main
from sim.running.forecast import bands, forecast_params, run_forecast
from sim.running.snapshot import SnapshotError, read_snapshot, snapshot_of
from conftest import small_params

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "configs" / "snapshots"
TODAY = dt.date(2026, 12, 8)


# ----------------------------------------------------------------------------- the back-test
def _backtest(params: Params, day: int, replication: int, weeks: int, forecasts: int
              ) -> tuple[np.ndarray, pd.DataFrame]:
    """One run of the model to ``day``, its snapshot there, the run's own next ``weeks``
    (the actual daily fit-in-hospital counts) and the forecast's bands from the snapshot."""
    whole = override(params, {"run.days": day + 7 * weeks + 1.0, "run.warmup_days": 0.0})
    model = Model(whole, 1000 + replication)
    model.run(until=day)
    snapshot = snapshot_of(model)
    model.env.run(until=day + 7 * weeks)
    daily = compute_daily(patient_table(model.patients, until=model.env.now), whole)
    actual = daily.set_index("day").loc[day:day + 7 * weeks - 1, "fit_in_hospital"]
    tidy = run_forecast(params, snapshot, weeks, forecasts, workers=2)
    table = bands(tidy)
    return actual.to_numpy(float), table[table["metric"] == "fit_in_hospital"].sort_values("day")


def test_the_forecast_bands_cover_the_models_own_next_eight_weeks_at_their_stated_rate():
    """Eight runs of the (small) system, snapshots on a Monday and a Thursday after 20 weeks,
    39 forecasts from each: the 80% and 95% bands of the daily count of medically fit patients
    in hospital cover the run's actual days 1-55 at about 80% and 95%. Days of one run are
    correlated: the tolerance treats each run as four independent days (two weeks apart; the
    count forgets its state within about a week), so n = 32 and three standard errors of a
    binomial proportion either side."""
    params = small_params()
    hits80, hits95 = [], []
    for r in range(8):
        actual, band = _backtest(params, 140 + 3 * (r % 2), r, 8, 39)
        actual, band = actual[1:], band.iloc[1:]  # day 0 is the snapshot itself
        hits80.append(np.mean((actual >= band["p10"].to_numpy()) & (actual <= band["p90"].to_numpy())))
        hits95.append(np.mean((actual >= band["p2.5"].to_numpy())
                              & (actual <= band["p97.5"].to_numpy())))
    n = 8 * 4
    for hits, rate in ((hits80, 0.8), (hits95, 0.95)):
        coverage = float(np.mean(hits))
        tolerance = 3 * math.sqrt(rate * (1 - rate) / n)
        print(f"{rate:.0%} band: coverage {coverage:.3f} (runs: {np.round(hits, 2)}), "
              f"allowed {rate - tolerance:.3f} to {min(1.0, rate + tolerance):.3f}")
        assert abs(coverage - rate) <= tolerance


def test_an_empty_snapshot_forecasts_what_a_cold_start_does():
    """An empty hospital with the services as any run starts them: the same numbers, to the
    last bit, as a run from cold with no warm-up (the snapshot's draws are streams of their
    own)."""
    params = override(small_params(), {"run.days": 56.0, "run.warmup_days": 0.0})
    cold = simulate(params, 3)
    empty = simulate(params, 3, Snapshot())
    pd.testing.assert_frame_equal(cold.patients, empty.patients)
    pd.testing.assert_frame_equal(cold.metrics, empty.metrics)
    pd.testing.assert_frame_equal(cold.daily, empty.daily)


def test_the_forecasts_day_zero_is_the_snapshots_weekday():
    """A snapshot of a Thursday: the clock starts at Thursday 00:00 (day 3), nobody arrives
    before, and the forecast's day 0 is the model's day 3 (weekday 3)."""
    snapshot = Snapshot(weekday=3, patients=(StartPatient(2.0),) * 10)
    params = forecast_params(small_params(), snapshot, 2)
    result = simulate(params, 0, snapshot)
    arrivals = result.patients["arrival"].to_numpy()
    assert (arrivals[10:] >= 3.0).all() and np.allclose(arrivals[:10], 1.0)
    assert result.daily.loc[result.daily["day"] == 3, "weekday"].item() == 3
    tidy = run_forecast(small_params(), snapshot, 2, 2)
    assert tidy["day"].min() == 0 and tidy["day"].max() == 13
    assert (tidy.loc[tidy["day"] == 0, "occupied_beds"] == 10).all()


def test_a_snapshots_patients_stay_on_and_fit_ones_start_their_discharge():
    """Patients not yet fit become fit later (a stay drawn beyond the days already in); fit
    patients count as delayed from when they became fit and leave in time."""
    params = override(small_params(), {"run.days": 28.0, "run.warmup_days": 0.0})
    patients = (StartPatient(10.0, None, "p1"),) * 20 + (StartPatient(12.0, 4.0, "p0"),) * 5
    result = simulate(params, 0, Snapshot(patients=patients, services={
        "step_down": StartService(10, 2)}))
    p = result.patients.iloc[:25]
    assert (p["arrival"].iloc[:20] == -10.0).all() and not (p["fit"].iloc[:20] <= 0).any()
    assert (p["fit"].iloc[20:] == -4.0).all() and (p["left"].iloc[20:] > 0).all()
    waits = result.service_waits
    assert (waits[waits["service"] == "step_down"]["source"] == "initial").sum() == 10


def test_a_dated_change_takes_effect_on_its_day():
    """Beds added on day 14 of a full hospital: more patients than the old beds only after it;
    step-down places added: the service's capacity rises then."""
    params = override(small_params(), {"acute.beds": 70, "run.days": 42.0, "run.warmup_days": 0.0})
    model = Model(params, 0, Snapshot(patients=(StartPatient(3.0),) * 70),
                  (Change(14, "acute.beds", 90), Change(14, "services.step_down.capacity", 40)))
    model.run(until=13.99)
    assert model.beds.in_use <= 70 and model.pools["step_down"].capacity == pytest.approx(25)
    model.env.run(until=42)
    assert model.beds.capacity == 90
    assert model.pools["step_down"].capacity == pytest.approx(40)
    daily = compute_daily(patient_table(model.patients, until=42), params)
    assert daily.loc[daily["day"] < 14, "in_hospital"].max() <= 70
    assert daily.loc[daily["day"] >= 14, "in_hospital"].min() > 70


def test_a_homecare_staff_change_scales_its_carers_hours():
    params = override(small_params(), {"run.days": 30.0, "run.warmup_days": 0.0})
    model = Model(params, 0, Snapshot(), (Change(7, "services.homecare.staff.count", 104),))
    before = None
    model.run(until=6.9)
    before = model.pools["homecare"].capacity
    model.env.run(until=7.1)
    assert model.pools["homecare"].capacity == pytest.approx(before * 2, rel=0.05)


@pytest.mark.parametrize("setting", ["run.days", "services.homecare.capacity",
                                     "services.nowhere.capacity", "admissions.per_day"])
def test_a_change_of_anything_but_a_capacity_is_refused_in_one_line(setting):
    with pytest.raises(ValueError, match=f"change {setting}: cannot be changed") as error:
        Model(small_params(), 0, None, (Change(3, setting, 1.0),))
    assert "\n" not in str(error.value)


# ----------------------------------------------------------------------------- the files
def test_the_example_snapshots_read_and_forecast(tmp_path):
    params = Params()
    listed = read_snapshot(EXAMPLES / "example.yaml", params, TODAY)
    sitrep = read_snapshot(EXAMPLES / "example_sitrep.yaml", params, TODAY)
    assert listed.date == dt.date(2026, 12, 7) and listed.snapshot.weekday == 0
    assert len(listed.snapshot.patients) == 486 and len(sitrep.snapshot.patients) == 486
    assert sum(p.fit for p in sitrep.snapshot.patients) == 86
    out = forecast_command([f"snapshot={EXAMPLES / 'example_sitrep.yaml'}", "weeks=2",
                            "replications=2", "workers=1", f"out={tmp_path}",
                            "change=7:acute.beds=+10", "today=2026-12-08"])
    table = pd.read_csv(out / "forecast.csv")
    assert set(table["scenario"]) == {"as things are", "acute.beds +10 from day 7"}
    assert list(table.columns[:3]) == ["scenario", "day", "date"]
    assert {"mean", "p10", "p90", "p2.5", "p97.5"} <= set(table.columns)
    assert table["date"].iloc[0] == "2026-12-07" and (out / "forecast.png").stat().st_size > 0


PATIENTS = """id,admitted,medically_fit,fit_since,pathway,waiting_for
A1,2026-12-01,no,,,
F1,2026-11-20,yes,2026-12-01,p1,service
F2,2026-11-25,yes,,,
"""
SITREP = "pathway,los_band,patients\np1,7-13,3\nunknown,21+,2\n"


def _write(folder: Path, patients: str = PATIENTS, yaml_text: str | None = None,
           sitrep: str | None = None) -> Path:
    (folder / "patients.csv").write_text(patients)
    if sitrep is not None:
        (folder / "sitrep.csv").write_text(sitrep)
    text = yaml_text or ("date: 2026-12-07\npatients: patients.csv\n"
                         "services:\n  step_down: {in_service: 5, waiting: 1}\n")
    (folder / "snap.yaml").write_text(text)
    return folder / "snap.yaml"


def _sitrep_yaml(occupied: int = 10, services: str = "") -> str:
    return f"date: 2026-12-07\nsitrep: sitrep.csv\noccupied_beds: {occupied}\n{services}"


BAD = {
    "missing column": (dict(patients=PATIENTS.replace("admitted,", "when,")),
                       "line 1, column 'when': unknown column"),
    "missing required column": (dict(patients="id,medically_fit\nA1,no\n"),
                                "line 1, column 'admitted': missing"),
    "unknown column": (dict(patients=PATIENTS.replace("waiting_for", "waiting_for,ward")
                            .replace("\nA1,2026-12-01,no,,,", "\nA1,2026-12-01,no,,,,")),
                       "line 1, column 'ward': unknown column"),
    "admitted in the future": (dict(patients=PATIENTS.replace("2026-11-25", "2026-12-09")),
                               "line 4, column 'admitted': 2026-12-09 is after"),
    "fit in the future": (dict(patients=PATIENTS.replace("yes,2026-12-01", "yes,2026-12-08")),
                          "line 3, column 'fit_since': 2026-12-08 is after"),
    "negative stay": (dict(patients=PATIENTS.replace("yes,2026-12-01", "yes,2026-11-01")),
                      "line 3, column 'fit_since': 2026-11-01 is before 'admitted'"),
    "not a date": (dict(patients=PATIENTS.replace("2026-12-01,no", "1/12/2026,no")),
                   "line 2, column 'admitted': '1/12/2026' is not a date"),
    "unknown pathway": (dict(patients=PATIENTS.replace(",p1,", ",p9,")),
                        "line 3, column 'pathway': 'p9' is not a pathway"),
    "fit not yes or no": (dict(patients=PATIENTS.replace(",no,", ",maybe,")),
                          "line 2, column 'medically_fit': 'maybe' is not allowed"),
    "unknown waiting for": (dict(patients=PATIENTS.replace("service\n", "bus\n")),
                            "line 3, column 'waiting_for': 'bus' is not allowed"),
    "more patients than beds": (
        dict(patients=PATIENTS + "A2,2026-12-01,no,,,\n" * 600),
        "line 522, column 'admitted': patient 521, more than the 520 acute beds"),
    "snapshot in the future": (dict(yaml_text="date: 2026-12-09\npatients: patients.csv\n"),
                               "key 'date': 2026-12-09 is in the future"),
    "unknown key": (dict(yaml_text="date: 2026-12-07\npatients: patients.csv\nward: 3\n"),
                    "key 'ward': unknown"),
    "unknown service": (dict(yaml_text="date: 2026-12-07\npatients: patients.csv\n"
                             "services:\n  hospice: {in_service: 3}\n"),
                        "services, 'hospice': unknown service"),
    "negative service count": (dict(yaml_text="date: 2026-12-07\npatients: patients.csv\n"
                                    "services:\n  step_down: {in_service: -3}\n"),
                               "step_down, key 'in_service': -3 is not allowed"),
    "unknown segment": (dict(yaml_text="date: 2026-12-07\npatients: patients.csv\nservices:\n"
                             "  care_home: {in_service: 3, by_segment: {luxury: 2}}\n"),
                        "care_home, by_segment 'luxury': unknown segment"),
    "more in segments than in service": (
        dict(yaml_text="date: 2026-12-07\npatients: patients.csv\nservices:\n"
             "  care_home: {in_service: 3, by_segment: {nursing: 4}}\n"),
        "care_home, key 'by_segment': 4 clients, more than in_service (3)"),
    "complex not yes or no": (dict(patients=PATIENTS.replace("waiting_for\n", "waiting_for,complex\n")
                                   .replace(",service\n", ",service,twice\n")),
                              "line 3, column 'complex': 'twice' is not allowed"),
    "sitrep unknown pathway": (dict(sitrep=SITREP.replace("p1,", "p7,"), yaml_text=_sitrep_yaml()),
                               "line 2, column 'pathway': 'p7' is not a pathway"),
    "sitrep negative band": (dict(sitrep=SITREP.replace("7-13", "9-3"), yaml_text=_sitrep_yaml()),
                             "line 2, column 'los_band': '9-3' is not allowed"),
    "sitrep negative count": (dict(sitrep=SITREP.replace(",3\n", ",-3\n"),
                                   yaml_text=_sitrep_yaml()),
                              "line 2, column 'patients': '-3' is not allowed"),
    "sitrep missing column": (dict(sitrep="pathway,patients\np1,3\n", yaml_text=_sitrep_yaml()),
                              "line 1, column 'los_band': missing"),
    "sitrep fewer beds than patients": (dict(sitrep=SITREP, yaml_text=_sitrep_yaml(3)),
                                        "key 'occupied_beds': 3 is fewer than the 5"),
    "sitrep more patients than beds": (dict(sitrep=SITREP, yaml_text=_sitrep_yaml(600)),
                                       "key 'occupied_beds': 600 patients, more than the 520"),
}


def test_a_good_snapshot_file_reads(tmp_path):
    snap = read_snapshot(_write(tmp_path), Params(), TODAY).snapshot
    assert [p.days_in for p in snap.patients] == [6.0, 17.0, 12.0]
    assert snap.patients[1].fit_days == 6.0 and snap.patients[1].waiting_for == "service"
    assert math.isnan(snap.patients[2].fit_days) and snap.patients[2].pathway is None
    assert snap.services == {"step_down": StartService(5, 1)}


@pytest.mark.parametrize("case", list(BAD))
def test_every_bad_snapshot_is_refused_in_one_line_naming_the_line_and_column(
        tmp_path, case, capsys):
    files, words = BAD[case]
    path = _write(tmp_path, **files)
    with pytest.raises(SnapshotError) as error:
        read_snapshot(path, Params(), TODAY)
    message = str(error.value)
    assert words in message and "\n" not in message, message
    with pytest.raises(SystemExit) as exit_status:
        forecast_main([f"snapshot={path}", "weeks=1", "replications=2", "today=2026-12-08",
                       f"out={tmp_path / 'out'}"])
    assert exit_status.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


@pytest.mark.parametrize("arguments, words", [
    (["weeks=8"], "snapshot=FILE is required"),
    (["snapshot=nowhere.yaml"], "nowhere.yaml: no such snapshot file"),
    (["snapshot=S", "weeks=0"], "weeks=0: not allowed"),
    (["snapshot=S", "change=14:run.days=3"], "change run.days: cannot be changed"),
    (["snapshot=S", "change=fourteen"], "not DAY:SETTING=VALUE"),
    (["snapshot=S", "acute.beds=-4"], "acute.beds"),
])
def test_the_command_refuses_bad_arguments_in_one_line_with_exit_status_2(
        tmp_path, arguments, words):
    path = _write(tmp_path)
    argv = [a.replace("snapshot=S", f"snapshot={path}") for a in arguments]
    done = subprocess.run([str(Path(sys.executable).with_name("discharge-sim")), "forecast",
                           *argv, "today=2026-12-08", f"out={tmp_path / 'out'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
