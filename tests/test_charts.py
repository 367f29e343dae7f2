"""Every chart: drawn in the one style (title, labelled axes, replications and uncertainty in
a note, large type, the colour-blind-safe palette), written as PNG, with plain-English labels."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

from sim.app import engine  # noqa: E402
from sim.core.catalogue import causes  # noqa: E402
from sim.reporting import analysis, charts  # noqa: E402

SMALL = ["run.days=63", "run.warmup_days=14", "run.replications=2"]


@pytest.fixture(scope="module")
def runs():
    out = {}
    for name in ("baseline", "extra_homecare"):
        config = engine.compose([*SMALL, f"scenario={name}"])
        out[name] = engine.run_scenario(config, name=name, label=charts.scenario_label(name),
                                        workers=1)
    return out


def _texts(fig):
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


def _check(fig, path):
    """A title, a note naming the replications, labelled axes, no small type; the PNG."""
    texts = " ".join(_texts(fig))
    assert "replication" in texts
    assert any(ax.get_title() for ax in fig.axes) or fig._suptitle is not None
    for ax in fig.axes:
        if ax.axison:
            assert ax.get_xlabel() or ax.get_ylabel() or ax.get_yticklabels()
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
    assert min(sizes) >= 11
    assert path.exists() and path.stat().st_size > 10_000
    assert "_" not in " ".join(ax.get_title() for ax in fig.axes)  # no code names in titles


def test_every_chart_is_drawn_in_the_one_style(runs, tmp_path):
    base = runs["baseline"]
    params = base.params
    table = engine.compare(runs)
    tidy = engine.tidy(runs)
    labels = {n: r.label for n, r in runs.items()}
    warmup = params.run.warmup_days
    pathways = {k: engine.pathway_name(k, params) for k in params.pathways}
    drawn = {
        "by_pathway": lambda p: charts.delayed_days_by_scenario(
            {n: r.metrics for n, r in runs.items()}, pathways, path=p, labels=labels),
        "single": lambda p: charts.delayed_days_by_pathway(base.metrics, pathways, p, "base"),
        "comparison": lambda p: charts.scenario_comparison(table, p, labels=labels),
        "change": lambda p: charts.change_from_baseline(table, path=p, labels=labels),
        "fit": lambda p: charts.fit_in_hospital_over_time(
            {n: r.daily for n, r in runs.items()}, warmup, path=p, labels=labels),
        "fit_cli": lambda p: charts.fit_in_hospital_over_time(base.daily, warmup, p, "base"),
        "beds": lambda p: charts.acute_occupancy({n: r.daily for n, r in runs.items()},
                                                 params.acute.beds, warmup, path=p),
        "weekday": lambda p: charts.weekend_rules(analysis.weekend_rules(tidy), p),
        "cause": lambda p: charts.delay_by_cause(tidy, causes(params), path=p, labels=labels),
        "flow": lambda p: charts.patient_flow(base.mean_flows(), path=p, replications=2,
                                              days=params.run.measured_days),
    }
    for name, draw in drawn.items():
        path = tmp_path / f"{name}.png"
        _check(draw(path), path)


def test_the_change_chart_has_a_legend_for_its_colours_and_plain_labels(runs):
    fig = charts.change_from_baseline(engine.compare(runs), labels={"extra_homecare": "25 more"})
    legend = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().texts]
    assert any("fewer" in t for t in legend) and any("more" in t for t in legend)
    assert any("no change" in t for t in legend)
    assert "25 more" in _texts(fig)
    assert "extra_homecare" not in " ".join(_texts(fig))
    charts.plt.close(fig)


def test_weekly_means_remove_the_saw_tooth(runs):
    weekly = charts._weekly(runs["baseline"].daily, "fit_in_hospital")
    assert (weekly["replications"] == 2).all()
    assert len(weekly) == 63 // 7


def test_response_curve_has_a_band_and_a_plain_axis(tmp_path):
    import pandas as pd
    rows = [{"services.homecare.staff.count": c, "metric": m, "unit": "u", "mean": v,
             "ci_low": v - 1, "ci_high": v + 1, "replications": 5}
            for c, v in ((150, 10.0), (175, 8.0), (200, 7.0))
            for m in ("delayed_days_per_30d", "acute_occupancy")]
    fig = charts.response_curve(pd.DataFrame(rows), "services.homecare.staff.count",
                                tmp_path / "r.png")
    assert fig.axes[0].get_xlabel() == "domiciliary carers (staff)"
    assert fig.axes[0].collections  # the band
    assert (tmp_path / "r.png").exists()


def test_flow_counts_add_up(runs):
    flows = runs["baseline"].flows
    for k, group in flows.groupby("replication"):
        admitted = group[group["stage"] == 0]["patients"].sum()
        onwards = group[group["stage"] == 1]["patients"].sum()
        assert admitted == onwards  # nobody diverted by default


def test_labels_for_people():
    assert charts.scenario_label("extra_homecare") == "Extra homecare"
    assert charts.setting_label("services.care_home.capacity") == "care-home places"
    assert charts.setting_label("pathways.p1.rule.days").startswith("pathway 1")
    assert len(set(charts.PALETTE)) == len(charts.PALETTE)
