"""The run summary and metrics.csv: what they show is read from the metric catalogue, the harm
of waiting has its section when it is on, conservation counts deaths and is computed from the
counts, and a count declared ``total`` is a total."""

from __future__ import annotations

import dataclasses
import re

import pandas as pd
import pytest

from sim.core.catalogue import HARM, catalogue
from sim.reporting.report import DELAY_NOTE, summary_markdown, write_tables
from sim.running.runner import Replications, run_replications

from conftest import small_params

HARM_ON = {f"harm__{name}__enabled": True
           for name in ("escalation", "unwell_again", "death", "readmission")}


@pytest.fixture(scope="module")
def harmed() -> Replications:
    """Two replications of the small system with every harm mechanism on."""
    return run_replications(small_params(run__days=128.0, **HARM_ON), 2, workers=1)


@pytest.fixture(scope="module")
def unharmed() -> Replications:
    return run_replications(small_params(run__days=128.0), 2, workers=1)


def _section(summary: str, heading: str) -> str:
    """The text of one ``## heading`` section."""
    match = re.search(rf"^## {re.escape(heading)}.*?\n(.*?)(?=^## |\Z)", summary, re.S | re.M)
    assert match, heading
    return match.group(1)


def test_the_harm_section_shows_every_harm_metric_with_its_label_unit_and_interval(harmed):
    summary = summary_markdown(harmed, "harm")
    harm = _section(summary, "Harm of waiting")
    entries = [m for m in catalogue(harmed.params).values() if m.group == HARM]
    assert len(entries) >= 11
    for m in entries:
        row = next((line for line in harm.splitlines()
                    if line.startswith(f"| {m.label[:1].upper() + m.label[1:]} |")), None)
        assert row is not None, m.name
        unit = m.unit.replace("fraction", "%") if m.percent else m.unit
        assert row.endswith(f"| {unit} |"), row
    deaths = harmed.metrics.query("metric == 'harm.deaths_in_hospital'")["value"]
    assert deaths.gt(0).all(), "the death mechanism is on: some die"
    assert "[-" not in summary, "no interval of a quantity that cannot be negative below 0"


def test_no_harm_section_when_every_mechanism_is_off(unharmed):
    summary = summary_markdown(unharmed, "baseline")
    assert "Harm of waiting" not in summary and "medically unfit again" not in summary


def test_days_medically_unfit_again_are_beside_the_causes_and_said_not_to_be_delayed(harmed):
    causes = _section(summary_markdown(harmed, "harm"), "Delayed bed-days per 30 days by cause")
    line = next(line for line in causes.splitlines() if "medically unfit again" in line)
    assert "not delayed days" in line and not line.startswith("|"), "beside the table, not in it"
    value = harmed.metrics.query("metric == 'harm.unfit_again_days'")["value"].mean()
    assert f"{value:,.1f} [" in line


def test_conservation_counts_deaths_and_adds_up_in_each_replication(harmed):
    per_run = harmed.metrics.pivot_table(index="replication", columns="metric", values="value")
    died = int(per_run["died_total"].sum())
    assert died > 0
    line = _section(summary_markdown(harmed, "harm"), "Conservation of patients").split(
        "\n\n")[0]
    assert f"+ {died:,} died +" in line and "**OK**" in line
    numbers = [int(n.replace(",", "")) for n in re.findall(r"(\d[\d,]*) [a-z]", line)]
    assert len(numbers) == 5
    assert numbers[0] == sum(numbers[1:]) == int(per_run["arrivals_total"].sum())


def test_conservation_fails_when_the_counts_do_not_add_up_whatever_conservation_error_says(
        harmed):
    """Three more arrivals in replication 1 than it accounts for; the model's own
    ``conservation_error`` (left at 0) is not what the summary believes."""
    runs = list(harmed.runs)
    m = runs[1].metrics.copy()
    m.loc[m["metric"] == "arrivals_total", "value"] += 3
    runs[1] = dataclasses.replace(runs[1], metrics=m)
    broken = dataclasses.replace(harmed, runs=runs)
    assert broken.metrics.query("metric == 'conservation_error'")["value"].eq(0).all()
    line = _section(summary_markdown(broken, "broken"), "Conservation of patients")
    assert "**FAILED by 3 patients in 1 of 2 replications**" in line and "OK" not in line


def test_the_summary_reads_labels_and_units_from_the_catalogue(unharmed, monkeypatch):
    """Change a label and a unit in the catalogue: the summary follows."""
    import sim.reporting.report as report
    real = report.catalogue

    def relabelled(params):
        entries = dict(real(params))
        entries["acute_occupancy"] = dataclasses.replace(entries["acute_occupancy"],
                                                         label="beds in use, all told")
        for k in params.pathways:
            entries[f"delay_mean.{k}"] = dataclasses.replace(entries[f"delay_mean.{k}"],
                                                             unit="days of waiting")
        return entries

    monkeypatch.setattr(report, "catalogue", relabelled)
    summary = summary_markdown(unharmed, "baseline")
    assert "- Beds in use, all told: " in summary
    assert "| mean delay (days of waiting) |" in summary


def test_the_delay_table_says_whose_delays_it_counts(unharmed):
    table = _section(summary_markdown(unharmed, "baseline"), "Delayed discharges by pathway")
    assert DELAY_NOTE in table and "discharged in the measured window" in DELAY_NOTE
    assert "still waiting at the end are not in them" in DELAY_NOTE


def test_metrics_csv_gives_totals_for_counts_declared_total(unharmed, tmp_path):
    """A ``total`` metric: its total over the replications, no sd or interval; the others
    their mean and interval, cut at a share's 100%."""
    write_tables(unharmed, tmp_path, patients=False)
    table = pd.read_csv(tmp_path / "metrics.csv").set_index("metric")
    assert list(table.columns) == ["value", "unit", "sd", "ci_low", "ci_high", "replications",
                                   "summary"]
    per_run = unharmed.metrics.pivot_table(index="replication", columns="metric",
                                           values="value")
    entries = catalogue(unharmed.params)
    totals = [name for name, m in entries.items() if m.summary == "total"]
    assert {"arrivals_total", "died_total", "in_system_end"} <= set(totals)
    for name in totals:
        assert table.loc[name, "value"] == per_run[name].sum(), name
        assert table.loc[name, "summary"] == "total"
        assert table.loc[name, ["sd", "ci_low", "ci_high"]].isna().all(), name
    means = table[table["summary"] == "mean"]
    assert means.loc["delayed_days_per_30d", "value"] == pytest.approx(
        per_run["delayed_days_per_30d"].mean(), rel=1e-12)
    shares = [name for name, m in entries.items() if m.percent and name in means.index]
    assert (means.loc[shares, "ci_high"].dropna() <= 1.0).all()
