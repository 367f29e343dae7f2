"""Every chart: drawn in the one style (title, labelled axes, replications and uncertainty in
a note, large type, the colour-blind-safe palette), written as PNG, with plain-English labels."""

from __future__ import annotations

import re

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

from sim.app import engine  # noqa: E402
from sim.config.schema import scenario_names, scenario_titles  # noqa: E402
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
    assert not re.search(r"\b[a-z0-9]+_[a-z0-9_]+\b", texts), texts  # nor anywhere else


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
        "harm_circle": lambda p: charts.harm_circle(
            analysis.scenario_comparison(tidy, "baseline", analysis.HARM_METRICS), p,
            labels=labels),
        "fitted_sets": lambda p: charts.fitted_sets(pd.DataFrame({
            "set": [1, 1, 2, 2], "scenario": ["extra_homecare", "seven_day_discharge"] * 2,
            "change": [-40.0, -300.0, -10.0, -280.0], "ci_low": [-60.0, -330.0, -30.0, -310.0],
            "ci_high": [-20.0, -270.0, 12.0, -250.0], "replications": [10] * 4}), p),
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
            for c, v in ((150, 10.0), (175, 8.0), (200, 7.0)) for m in ("delayed_days_per_30d",)]
    rows += [{"services.homecare.staff.count": c, "metric": "acute_occupancy", "unit": "u",
              "mean": v, "ci_low": v - 0.02, "ci_high": v + 0.02, "replications": 5}
             for c, v in ((150, 0.995), (175, 0.97), (200, 0.95))]
    fig = charts.response_curve(pd.DataFrame(rows), "services.homecare.staff.count",
                                tmp_path / "r.png")
    assert fig.axes[0].get_xlabel() == "homecare carers (posts)"  # the lever table's label
    assert fig.axes[0].collections  # the band
    occupancy = fig.axes[1]
    assert occupancy.get_ylabel() == "% of beds"
    top = max(path.vertices[:, 1].max() for path in occupancy.collections[0].get_paths())
    assert top <= 100  # a share's band stops at 100%
    assert (tmp_path / "r.png").exists()


def test_flow_counts_add_up(runs):
    flows = runs["baseline"].flows
    for k, group in flows.groupby("replication"):
        admitted = group[group["stage"] == 0]["patients"].sum()
        onwards = group[group["stage"] == 1]["patients"].sum()
        assert admitted == onwards  # nobody diverted by default


def test_labels_for_people():
    assert charts.scenario_label("my_new_scenario") == "My new scenario"
    assert charts.scenario_label("extra_homecare", {"extra_homecare": "Plan A"}) == "Plan A"
    assert charts.setting_label("services.care_home.capacity") == "care-home places"
    assert charts.setting_label("pathways.p1.rule.days").startswith("pathway 1")
    assert len(set(charts.PALETTE)) == len(charts.PALETTE)


def test_scenario_titles_say_what_the_scenario_files_change():
    base = engine.compose([])
    carers = engine.compose(["scenario=extra_homecare"])
    now = carers.params.services["homecare"].staff.count
    before = base.params.services["homecare"].staff.count
    assert engine.scenario_title("extra_homecare", carers, base) == \
        f"{now} carers ({now - before:+d})"  # the numbers from the files, whatever they are
    seven = engine.compose(["scenario=seven_day_discharge"])
    assert engine.scenario_title("seven_day_discharge", seven, base) == "Seven-day working"
    harm = engine.compose(["scenario=harm"])
    assert engine.scenario_title("harm", harm, base) == "Harm of waiting modelled"
    assert engine.scenario_title("baseline", base, base) == "Baseline"
    titles = scenario_titles()  # every scenario file's title: no numbers, which can change
    assert set(titles) == set(scenario_names()) and all(titles.values())
    assert not any(c.isdigit() for title in titles.values() for c in title)


def _legend_colours(fig) -> dict[str, tuple]:
    ax = fig.axes[0]
    return {t.get_text(): tuple(h.get_facecolor()) if hasattr(h, "get_facecolor") else
            matplotlib.colors.to_rgba(h.get_color())
            for t, h in zip(ax.get_legend().texts, ax.get_legend().legend_handles)}


def test_a_scenario_has_one_colour_on_every_chart(runs):
    labels = {n: r.label for n, r in runs.items()}
    params = runs["baseline"].params
    pathways = {k: engine.pathway_name(k, params) for k in params.pathways}
    reversed_runs = dict(reversed(runs.items()))  # a table in another order: same colours
    by_weekday = charts.weekend_rules(analysis.weekend_rules(engine.tidy(reversed_runs)),
                                      labels=labels)
    by_pathway = charts.delayed_days_by_scenario({n: r.metrics for n, r in runs.items()},
                                                 pathways, labels=labels)
    over_time = charts.fit_in_hospital_over_time({n: r.daily for n, r in runs.items()},
                                                 params.run.warmup_days, labels=labels)
    colours = [_legend_colours(f) for f in (by_weekday, by_pathway, over_time)]
    for label in labels.values():
        assert len({c[label][:3] for c in colours}) == 1, label
    for fig in (by_weekday, by_pathway, over_time):
        charts.plt.close(fig)


def test_occupancy_never_shows_more_patients_than_beds(runs):
    params = runs["baseline"].params
    beds = 300  # fewer than the patients in them, to make the interval reach past them
    weekly = charts._weekly(runs["baseline"].daily, "in_hospital", upper=beds)
    assert weekly["ci_high"].max() <= beds and weekly["ci_low"].min() >= 0
    fig = charts.acute_occupancy({n: r.daily for n, r in runs.items()}, params.acute.beds,
                                 params.run.warmup_days)
    ax = fig.axes[0]
    assert any(line.get_ydata()[0] == params.acute.beds for line in ax.get_lines())
    assert ax.get_ylim()[1] > params.acute.beds  # the capacity line is in view
    charts.plt.close(fig)


@pytest.mark.parametrize("lowest, capacity", [(440, 520), (520, 520), (100, 520), (9, 10)])
def test_the_occupancy_axis_starts_below_the_lowest_value(lowest, capacity):
    start = charts._axis_start(lowest, capacity)
    assert 0 <= start < lowest or start == 0
    assert start == 0 or start >= capacity / 2 - capacity * 0.1  # zoomed, not exaggerated


def test_the_patient_flows_labels_do_not_overlap(runs):
    base = runs["baseline"]
    fig = charts.patient_flow(base.mean_flows(), replications=2, days=49)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if "\n" in t.get_text()]  # a node's name and count
    assert len(labels) >= 7
    assert all(any(ch.isdigit() for ch in t.get_text()) for t in labels)
    boxes = [t.get_window_extent(renderer) for t in labels]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), "two labels of the flow diagram overlap"
    charts.plt.close(fig)


def test_the_causes_add_up_to_the_total_and_each_has_its_own_look(runs):
    tidy = engine.tidy(runs)
    params = runs["baseline"].params
    causes_ = causes(params)
    fig = charts.delay_by_cause(tidy, causes_, labels={n: r.label for n, r in runs.items()})
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert len(legend.texts) == len(causes_)  # every cause drawn, however many there are
    looks = {(tuple(h.get_facecolor()), h.get_hatch()) for h in legend.legend_handles}
    assert len(looks) == len(causes_)
    assert all(colour[:3] != (0, 0, 0) for colour, _ in looks)  # black is the error bars'
    total = tidy[tidy["metric"] == "delayed_days_per_30d"].groupby("scenario")["value"].mean()
    ends = {}
    for bar in ax.patches:
        row = round(bar.get_y() + bar.get_height() / 2)
        ends[row] = max(ends.get(row, 0.0), bar.get_x() + bar.get_width())
    names = list(dict.fromkeys(tidy["scenario"]))
    for row, name in zip(range(len(names))[::-1], names):
        assert ends[row] == pytest.approx(total[name], rel=1e-6), name
    charts.plt.close(fig)


def test_error_bars_of_a_level_stop_at_zero_and_of_a_change_do_not():
    low_part = charts._errors([1.0], [-2.0], [4.0])[0][0]
    assert low_part == 1.0  # from 1 down to 0, not to -2
    assert charts._errors([1.0], [-2.0], [4.0], floor=None)[0][0] == 3.0

