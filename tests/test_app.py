"""The workshop app: its page logic, the page driven through Streamlit's AppTest (the numbers
shown are those of a direct model run with the same seeds), and (slow) the app served and
loaded in headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sim.app import engine, workshop
from sim.config.schema import load_config
from sim.core.model import simulate
from sim.reporting.html import format_change, format_value

APP = Path(workshop.__file__)
SMALL = "run.days=63 run.warmup_days=14 run.replications=2"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_levers_become_the_command_lines_overrides():
    base = engine.lever_defaults(engine.compose([]))
    assert base["services.homecare.staff.count"] == 175
    values = {**base, "services.homecare.staff.count": 195, "seven_day": True}
    overrides = engine.what_if_overrides(values, base, "acute.beds=540")
    assert overrides[0] == "services.homecare.staff.count=195"
    assert overrides[-1] == "acute.beds=540"
    assert engine.what_if_label(values, base) == "195 carers (+20), seven-day working"
    # a switch applies exactly its scenario's settings
    seven = engine.compose(engine.what_if_overrides({**base, "seven_day": True}, base)).params
    assert seven == load_config(["scenario=seven_day_discharge"]).params
    assert engine.compose(engine.what_if_overrides(
        {**base, "discharge_to_assess": True}, base)).params.assessment.in_hospital is False


@pytest.mark.parametrize("overrides, message", [
    (["services.homecare.staff.count=-5"],
     "services.homecare.staff.count=-5 is not allowed: an integer >= 0"),
    (["homecare.carerz=3"], "Could not override 'homecare.carerz'"),
])
def test_bad_input_is_one_line_as_on_the_command_line(overrides, message):
    with pytest.raises(engine.InputError) as error:
        engine.compose(overrides)
    assert message in str(error.value) and "\n" not in str(error.value)


def _app(monkeypatch):
    AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

    monkeypatch.setenv(workshop.OVERRIDES_VARIABLE, SMALL)
    at = AppTest.from_file(str(APP), default_timeout=240)
    at.run()
    assert not at.exception and not at.error
    return at


def _direct(overrides, metric):
    params = load_config(overrides).params
    return np.array([simulate(params, k).value(metric) for k in range(2)])


def test_app_shows_the_models_numbers_for_a_what_if(monkeypatch):
    at = _app(monkeypatch)
    assert "Baseline ready" in at.info[0].value
    at.sidebar.number_input(key="services.homecare.staff.count").set_value(150)
    at.sidebar.button(key="run").click().run()
    assert not at.exception and not at.error
    shown = {m.label: (m.value, m.delta) for m in at.metric}
    metric = "delayed_days_per_30d"
    base = _direct(SMALL.split(), metric)
    what_if = _direct([*SMALL.split(), "services.homecare.staff.count=150"], metric)
    from sim.reporting.stats import estimate
    diff = estimate(what_if - base)
    value, delta = shown["Delayed bed-days per 30 days"]
    assert value == format_value(what_if.mean(), metric)
    assert delta == format_change(diff.mean, diff.low, diff.high, metric)
    assert at.session_state["current"].metrics.query("metric == @metric")["value"].tolist() \
        == what_if.tolist()
    assert "150 carers (-25)" in at.subheader[0].value
    images = [e for e in at.main if type(e).__name__ == "Image"]
    assert len(images) == 7  # one chart per tab

    # keep it, run another, keep that: both side by side
    at.button(key="keep").click().run()
    at.sidebar.toggle(key="seven_day").set_value(True)
    at.sidebar.number_input(key="services.homecare.staff.count").set_value(175)
    at.sidebar.button(key="run").click().run()
    at.button(key="keep").click().run()
    assert not at.exception and not at.error
    side_by_side = at.dataframe[-1].value
    assert {"150 carers (-25)", "Seven-day working"} <= set(side_by_side.columns)


def test_app_refuses_bad_input_in_one_line(monkeypatch):
    at = _app(monkeypatch)
    at.sidebar.number_input(key="services.homecare.staff.count").set_value(-5)
    at.sidebar.button(key="run").click().run()
    assert [e.value for e in at.error] == [
        "services.homecare.staff.count=-5 is not allowed: an integer >= 0"]
    at.sidebar.number_input(key="services.homecare.staff.count").set_value(175)
    at.sidebar.text_input(key="extra").input("homecare.carerz=3")
    at.sidebar.button(key="run").click().run()
    assert len(at.error) == 1 and "homecare.carerz" in at.error[0].value
    assert "\n" not in at.error[0].value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium package")
def test_app_in_a_browser(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    port = _free_port()
    env = {**os.environ, workshop.OVERRIDES_VARIABLE: SMALL}
    server = subprocess.Popen(
        [sys.executable, "-m", "sim.app", "--server.headless", "true", "--server.port",
         str(port), "--server.fileWatcherType", "none"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            deadline = time.time() + 60
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}", timeout=10_000)
                    break
                except playwright.Error:
                    if time.time() > deadline:
                        raise
                    time.sleep(1)
            page.get_by_text("Baseline ready").wait_for(timeout=180_000)
            page.get_by_role("button", name="Run what-if").click()
            page.get_by_text("What if:").wait_for(timeout=180_000)
            page.locator("[data-testid='stImage'] img").first.wait_for(timeout=60_000)
            page.wait_for_timeout(1000)
            rendered = page.eval_on_selector_all(
                "[data-testid='stImage'] img", "imgs => imgs.map(i => i.naturalWidth)")
            assert rendered and all(width > 500 for width in rendered)
            assert page.locator("[data-testid='stException']").count() == 0
            assert page.locator("[data-testid='stAlertContentError']").count() == 0
            page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
            browser.close()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
