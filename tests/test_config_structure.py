"""The system is data (issue 9): a new community service and a pathway that needs it are added
in a scenario file alone, composed through Hydra like any scenario, and run; their metrics
appear with their units and labels from the metric catalogue, and the summary shows them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.config.schema import load_config
from sim.core.catalogue import catalogue
from sim.reporting.report import summary_markdown
from sim.running.runner import run_replications

NURSING_HOMES = """\
# @package _global_
name: nursing_homes
services:
  nursing_home: {unit: places, capacity: 300, stay: {kind: lognormal, mean: 600, sd: 800},
                 community_referrals_per_day: 0.1, initial_utilisation: 0.9}
pathways:
  p0: {share: 0.4407}
  p3n: {share: 0.05, acute_stay: {kind: lognormal, mean: 16, sd: 12}, service: nursing_home,
        transfer: {kind: lognormal, mean: 10, sd: 7}, rule: {days: [0, 1, 2, 3, 4]}}
"""
"""The README's example, with a share large enough for a short run to discharge some."""

SMALL = ["run.days=128", "run.warmup_days=28", "admissions.per_day=10", "acute.beds=106"]

NEW_METRICS = ["delayed_days_per_30d.p3n", "delay_mean.p3n", "delay_p90.p3n",
               "discharge_share.p3n", "delayed_days_per_30d.nursing_home",
               "nursing_home.utilisation", "nursing_home.in_use", "nursing_home.queue_mean",
               "nursing_home.wait_mean.hospital", "harm.escalated_to.nursing_home"]
"""Metrics a system with the new service and pathway has and the default system does not."""


@pytest.fixture(scope="module")
def nursing_homes(tmp_path_factory):
    """The scenario file on Hydra's search path, composed and run (two replications)."""
    folder = tmp_path_factory.mktemp("configs")
    (folder / "scenario").mkdir()
    (folder / "scenario" / "nursing_homes.yaml").write_text(NURSING_HOMES)
    config = load_config([f"hydra.searchpath=[file://{folder}]", "scenario=nursing_homes",
                          *SMALL])
    return config, run_replications(config.params, 2, workers=1)


def test_the_scenario_file_adds_the_service_and_the_pathway(nursing_homes):
    config, _ = nursing_homes
    params = config.params
    assert config.name == "nursing_homes"
    assert list(params.services)[-1] == "nursing_home" and "p3n" in params.pathways
    assert params.pathways["p3n"].service == "nursing_home"
    assert params.services["nursing_home"].capacity == 300
    assert sum(p.share for p in params.pathways.values()) == pytest.approx(1.0)
    assert "nursing_home" not in load_config(SMALL).params.services


def test_its_patients_go_to_the_new_service(nursing_homes):
    _, results = nursing_homes
    patients = results.patients
    on_new = patients[patients["pathway"] == "p3n"]
    assert len(on_new) > 0 and (on_new["service"] == "nursing_home").all()
    assert on_new["left"].notna().any(), "some were discharged to a nursing home"
    assert (patients.loc[patients["service"] == "nursing_home", "pathway"] == "p3n").all()
    in_use = results.metrics.query("metric == 'nursing_home.in_use'")["value"]
    assert (in_use > 0).all()


def test_its_metrics_appear_with_the_catalogues_units_and_labels(nursing_homes):
    config, results = nursing_homes
    entries = catalogue(config.params)
    metrics = results.metrics
    names = set(metrics["metric"])
    assert set(NEW_METRICS) <= names
    assert not set(NEW_METRICS) & set(catalogue(load_config(SMALL).params)), "new ones"
    assert names <= set(entries), "every metric computed is declared"
    for row in metrics.drop_duplicates("metric").itertuples():
        assert row.unit == entries[row.metric].unit, row.metric
    for name in NEW_METRICS:
        label = entries[name].label
        assert "nursing home" in label or "p3n" in label, label
        assert entries[name].unit, name


def test_the_summary_shows_the_new_service_and_pathway(nursing_homes):
    config, results = nursing_homes
    summary = summary_markdown(results, config.name)
    assert "| P3n: nursing home |" in summary
    assert "| Nursing home (places) |" in summary
    assert "| waiting for nursing home |" in summary
    rows = [line for line in summary.splitlines() if line.startswith("| P3n: nursing home |")]
    assert rows and rows[0].count("|") == 6 and " - |" not in rows[0], rows


def test_the_readmes_example_composes_as_it_says(tmp_path):
    """The README's own nursing_homes file, copied as printed there, composes into a system
    with the new service and pathway (the file above differs only in its shares)."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    opening = "```yaml\n# @package _global_\nname: nursing_homes\n"
    assert opening in readme, "the README's nursing_homes example is gone or changed"
    start = readme.index(opening) + len("```yaml\n")
    (tmp_path / "scenario").mkdir()
    (tmp_path / "scenario" / "nursing_homes.yaml").write_text(
        readme[start:readme.index("```", start)])
    params = load_config([f"hydra.searchpath=[file://{tmp_path}]",
                          "scenario=nursing_homes", *SMALL]).params
    assert params.pathways["p3n"].service == "nursing_home" in params.services
    assert "delayed_days_per_30d.p3n" in catalogue(params)
