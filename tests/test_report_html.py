"""The HTML report: one self-contained file with charts, a plain-words table with numbers for
people, the assumptions and the settings that differ; and its command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim.app import engine
from sim.reporting.html import (format_change, format_value, measures_table, plain_table,
                                write_report)

SMALL = ["run.days=63", "run.warmup_days=14", "run.replications=2"]


@pytest.fixture(scope="module")
def runs():
    out = {}
    for name, label in (("baseline", "Baseline"), ("extra_homecare", "More carers")):
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


def test_tables_align_numbers_right_and_names_left():
    import pandas as pd
    from sim.reporting.html import _table_html

    text = _table_html(pd.DataFrame({"scenario": ["200 carers (-5)"], "bed-days": ["3,848"],
                                     "what it means": ["fewer delayed bed-days"]}))
    assert "<td>200 carers (-5)</td>" in text and '<td class="n">3,848</td>' in text
    assert "<td>fewer delayed bed-days</td>" in text


def test_the_report_is_one_self_contained_file(runs, tmp_path):
    comparison = engine.compare(runs)
    path = write_report(runs, comparison, tmp_path / "r" / "report.html")
    text = path.read_text()
    images = re.findall(r'<img[^>]*src="([^"]*)"', text)
    assert len(images) >= 7 and all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(http|/|\.)', text)  # nothing outside the file
    assert "More carers" in text and "extra_homecare" not in re.sub(r"<img[^>]*>", "", text)
    assert "Acute bed occupancy" in text and "%" in text
    assert "Warning: queues" not in text  # none grew in these short runs
    assert not re.search(r"\d\.\d+e-\d", re.sub(r"<img[^>]*>", "", text))  # no 1.91e-05
    assert "Assumptions" in text and "common random numbers" in text
    assert "homecare carers (posts)" in text  # the setting that differs, in words
    assert "services.homecare.staff.count" in text
    before, now = (runs[n].params.services["homecare"].staff.count
                   for n in ("baseline", "extra_homecare"))
    assert f'<td class="n">{before}</td>' in text and f'<td class="n">{now}</td>' in text
    assert "<td>no change the simulation can detect</td>" in text \
        or "<td>fewer delayed bed-days</td>" in text  # words, left-aligned
    # one column per scenario in the table of all measures: value, then the change under it
    row = re.search(r"<tr><td>Delayed-discharge bed-days per 30 days</td>.*?</tr>", text).group()
    assert row.count("<td") == 4 and "<span class='change'>" in row


def test_the_report_warns_of_a_queue_that_grew_all_run():
    from sim.reporting.html import report_html

    config = engine.compose([*SMALL, "acute.beds=300"])
    runs = {"baseline": engine.run_scenario(config, name="baseline", label="Too few beds",
                                            workers=1)}
    text = report_html(runs, engine.compare(runs))
    assert "Warning: queues that grew all run" in text
    assert "<li>Too few beds: the queue for acute beds grew all run in 2 of 2" in text


def test_plain_table_has_words_not_code_names(runs):
    table = plain_table(engine.compare(runs), {"baseline": "Baseline",
                                               "extra_homecare": "More carers"})
    assert list(table.columns[:4]) == ["measure", "unit", "Baseline", "More carers"]
    assert "Delayed-discharge bed-days per 30 days" in set(table["measure"])
    assert not any("_" in m for m in table["measure"])
    assert not table["measure"].str.startswith("Escalations").any()  # harm is off: all zeros


def test_measures_table_has_a_column_per_scenario(runs):
    labels = {"baseline": "Baseline", "extra_homecare": "More carers"}
    table = measures_table(engine.compare(runs), labels)
    assert list(table.columns) == ["measure", "unit", "Baseline", "More carers"]
    value, change = table.set_index("measure").loc[
        "Delayed-discharge bed-days per 30 days", "More carers"].split("\n")
    assert re.fullmatch(r"[\d,]+", value) and re.fullmatch(r"[-+]?[\d,]+ \(.+ to .+\)", change)


def test_report_command_writes_the_report_and_refuses_bad_input(tmp_path, capsys):
    from sim.app.report_command import main

    out = tmp_path / "handout.html"
    command = Path(sys.executable).with_name("discharge-report")  # as people run it
    done = subprocess.run([str(command), "extra_homecare", *SMALL, "--workers", "1", "--out",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Report: {out}"
    assert out.read_text().startswith("<!DOCTYPE html>")
    title = engine.scenario_title("extra_homecare", engine.compose(["scenario=extra_homecare"]),
                                  engine.compose([]))
    assert f"{title}: 2 replications" in done.stderr  # its numbers, from the config
    assert re.fullmatch(r"\d+ carers \([-+]\d+\)", title)
    with pytest.raises(SystemExit) as exit_:
        main(["no_such_scenario", "--out", str(out)])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        main(["extra_homecare", "services.homecare.staff.count=-5", "--out", str(out)])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.endswith("services.homecare.staff.count=-5 is not allowed: an integer >= 0")
