"""The lever table (sim/core/levers.py): every lever in one place, its setting or scenario real,
and no lever's key or label written anywhere else in the package."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.config.schema import load_config, scenario_names, scenario_text
from sim.core.levers import LEVERS, get_setting, lever, lever_of_setting, setting_label
from sim.core.params import Params

SIM = Path(__file__).resolve().parents[1] / "sim"


def test_every_number_lever_sets_a_setting_of_the_model():
    params = Params()
    numbers = [item for item in LEVERS if not item.is_switch]
    for item in numbers:
        assert not item.scenario and item.label and item.unit and item.short and item.help
        assert isinstance(get_setting(params, item.setting), (int, float)), item.name
    settings = [item.setting for item in numbers if not item.pay]
    assert len(set(settings)) == len(settings)
    assert len({item.name for item in LEVERS}) == len(LEVERS)


def test_every_switch_applies_a_scenario_with_a_title_and_what_it_does():
    for item in (item for item in LEVERS if item.is_switch):
        assert not item.setting and not item.label  # its words are the scenario file's
        assert item.scenario in scenario_names()
        title, about = scenario_text(item.scenario)
        assert title and about, item.scenario
        assert load_config([f"scenario={item.scenario}"]).params != Params()


def test_labels_come_from_the_table():
    homecare = lever("homecare_posts")
    assert lever_of_setting(homecare.setting) is homecare
    assert setting_label(homecare.setting) == "homecare carers (posts)"
    assert setting_label("acute.beds") == "acute beds"
    assert setting_label("pathways.p2.rule.start_hour") == "pathway 2: discharges from (hour)"
    assert setting_label("no.such.setting") == "no.such.setting"
    with pytest.raises(KeyError, match="homecare_posts"):
        lever("nosuch")


@pytest.mark.parametrize("item", LEVERS, ids=lambda item: item.name)
def test_no_lever_label_or_setting_is_written_twice(item):
    """A lever's label appears in the package's code once, in the table; its setting is not
    written in the layers that show levers to people (the app, the reports and charts)."""
    for path in SIM.rglob("*.py"):
        if item.label:
            assert path.read_text().count(f"\"{item.label}\"") == (path.name == "levers.py"), path
        if item.setting and path.parent.name in ("app", "reporting"):
            assert item.setting not in path.read_text(), path
