"""The HTML report: one self-contained file with charts, a plain-words table with numbers for
people, the assumptions and the settings that differ; and its command."""

from __future__ import annotations

import re

import pytest

from sim.app import engine
from sim.reporting.html import format_change, format_value, plain_table, write_report

SMALL = ["run.days=63", "run.warmup_days=14", "run.replications=2"]


@pytest.fixture(scope="module")
def runs():
    out = {}
    for name, label in (("baseline", "Baseline"), ("extra_homecare", "25 more carers")):
        config = engine.compose([*SMALL, f"scenario={name}"])
        out[name] = engine.run_scenario(config, name=name, label=label, workers=1)
    return out


def test_numbers_are_formatted_for_people():
    assert format_value(0.938, "acute_occupancy") == "93.8%"
    assert format_value(1970.4, "delayed_days_per_30d") == "1,970"
    assert format_value(1.3962, "delay_mean.all") == "1.4"
    assert format_value(1.91e-05, "bed_wait_mean") == "0.00"
    assert format_change(-69.2, -85.1, -52.3, "delayed_days_per_30d") == "-69 (-85 to -52)"
    assert format_change(0.012, 0.003, 0.021, "acute_occupancy") == "+1.2 points (+0.3 to +2.1)"
    assert format_change(0.0, 0.0, 0.0, "delayed_days_per_30d") == "no change"


def test_the_report_is_one_self_contained_file(runs, tmp_path):
    comparison = engine.compare(runs)
    path = write_report(runs, comparison, tmp_path / "r" / "report.html")
    text = path.read_text()
    images = re.findall(r'<img[^>]*src="([^"]*)"', text)
    assert len(images) >= 7 and all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(http|/|\.)', text)  # nothing outside the file
    assert "25 more carers" in text and "extra_homecare" not in re.sub(r"<img[^>]*>", "", text)
    assert "Acute bed occupancy" in text and "%" in text
    assert not re.search(r"\d\.\d+e-\d", re.sub(r"<img[^>]*>", "", text))  # no 1.91e-05
    assert "Assumptions" in text and "common random numbers" in text
    assert "domiciliary carers (staff)" in text  # the setting that differs, in words
    assert "services.homecare.staff.count" in text and ">175<" in text and ">200<" in text


def test_plain_table_has_words_not_code_names(runs):
    table = plain_table(engine.compare(runs), {"baseline": "Baseline",
                                               "extra_homecare": "25 more carers"})
    assert list(table.columns[:4]) == ["measure", "unit", "Baseline", "25 more carers"]
    assert "Delayed-discharge bed-days per 30 days" in set(table["measure"])
    assert not any("_" in m for m in table["measure"])


def test_report_command_writes_the_report_and_refuses_bad_input(tmp_path, capsys):
    from sim.config.report_command import main

    out = tmp_path / "handout.html"
    assert main(["extra_homecare", *SMALL, "--workers", "1", "--out", str(out)]) == out
    assert out.read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(SystemExit) as exit_:
        main(["no_such_scenario", "--out", str(out)])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        main(["extra_homecare", "services.homecare.staff.count=-5", "--out", str(out)])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.endswith("services.homecare.staff.count=-5 is not allowed: an integer >= 0")
