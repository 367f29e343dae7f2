"""The workshop app: its page logic, the page driven through Streamlit's AppTest (the numbers
shown are those of a direct model run with the same seeds), and (slow) the app served and
loaded in headless Chromium (Debian's chromium package, driven by Playwright).

With ``CI_REQUIRE_BROWSER=1`` (set by ``.ci/run``) the browser test fails, instead of being
skipped, when chromium or Playwright is missing: CI must really run it."""

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
from sim.core.levers import lever
from sim.core.model import simulate
from sim.reporting.html import format_change, format_value
from sim.running.stats import estimate

APP = Path(workshop.__file__)
TAB_TITLES = ("Change from baseline", "By pathway", "Where the delay comes from",
              "Medically fit over time", "Acute beds", "By weekday", "Patient flow")
SMALL = "run.days=63 run.warmup_days=14 run.replications=2"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
"""Debian's chromium, offline and without a sandbox (CI runs as root); Playwright adds a fresh
``--user-data-dir`` (``launch_persistent_context``)."""


def require(reason: str) -> None:
    """Skip a test whose tools are missing; fail it where CI must run it."""
    if os.environ.get("CI_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and CI_REQUIRE_BROWSER=1: CI must run this test")
    pytest.skip(reason)


def _carers() -> int:
    """The baseline's domiciliary carers."""
    return engine.lever_defaults(engine.compose([]))["services.homecare.staff.count"]


def test_levers_become_the_command_lines_overrides():
    base = engine.lever_defaults(engine.compose([]))
    carers = base["services.homecare.staff.count"]
    assert carers == load_config([]).params.services["homecare"].staff.count
    values = {**base, "services.homecare.staff.count": carers + 20, "seven_day": True}
    overrides = engine.what_if_overrides(values, base, "acute.beds=540")
    assert overrides[0] == f"services.homecare.staff.count={carers + 20}"
    assert overrides[-1] == "acute.beds=540"
    assert engine.what_if_label(values, base) == f"{carers + 20} carers (+20), seven-day working"
    # a switch applies exactly its scenario's settings
    seven = engine.compose(engine.what_if_overrides({**base, "seven_day": True}, base)).params
    assert seven == load_config(["scenario=seven_day_discharge"]).params
    assert engine.compose(engine.what_if_overrides(
        {**base, "discharge_to_assess": True}, base)).params.assessment.in_hospital is False


TURNOVER = "services.homecare.staff.workforce.turnover_per_year"


def test_carers_turnover_is_a_lever_while_the_workforce_comes_and_goes():
    config = engine.compose([])
    assert config.params.services["homecare"].staff.workforce.enabled  # the default system
    base = engine.lever_defaults(config)
    lever = next(lever for lever in engine.levers(config) if lever.setting == TURNOVER)
    assert lever.shown(base[TURNOVER]) == 100 * base[TURNOVER]  # shown as a per cent
    values = {**base, TURNOVER: lever.value(lever.shown(base[TURNOVER]) - 10)}
    overrides = engine.what_if_overrides(values, base)
    assert overrides == [f"{TURNOVER}={base[TURNOVER] - 0.1:g}"]
    assert engine.what_if_label(values, base) == \
        f"{100 * base[TURNOVER] - 10:g}% carer turnover (-10 points)"
    assert engine.compose(overrides).params.services["homecare"].staff.workforce \
        .turnover_per_year == pytest.approx(base[TURNOVER] - 0.1)
    # shown and read back unchanged: no override
    same = {**base, TURNOVER: lever.value(lever.shown(base[TURNOVER]))}
    assert engine.what_if_overrides(same, base) == []
    # a system whose carers never leave has no turnover to change
    assert TURNOVER not in engine.lever_defaults(engine.compose(["scenario=one_pool"]))


@pytest.mark.parametrize("overrides, message", [
    (["services.homecare.staff.count=-5"],
     "services.homecare.staff.count=-5 is not allowed: an integer >= 0"),
    (["homecare.carerz=3"], "Could not override 'homecare.carerz'"),
])
def test_bad_input_is_one_line_as_on_the_command_line(overrides, message):
    with pytest.raises(engine.InputError) as error:
        engine.compose(overrides)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_what_ifs_compose_one_at_a_time_across_threads():
    """The app's script runs are threads, and Hydra's Compose API is global to the process."""
    import threading

    errors: list[str] = []

    def compose_twice():
        for _ in range(2):
            try:
                engine.compose(["services.homecare.staff.count=180"])
            except Exception as error:  # noqa: BLE001 - any error is the failure shown
                errors.append(repr(error))

    threads = [threading.Thread(target=compose_twice) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def _app(monkeypatch):
    AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

    monkeypatch.setenv(workshop.OVERRIDES_VARIABLE, SMALL)
    at = AppTest.from_file(str(APP), default_timeout=240)
    at.run()
    assert not at.exception and not at.error
    return at


def _direct(overrides, metrics):
    """Each metric of replications 0 and 1, run directly by the model (not by the app)."""
    params = load_config(overrides).params
    results = [simulate(params, k) for k in range(2)]
    return {m: np.array([r.value(m) for r in results]) for m in metrics}


def _images(at) -> int:
    return sum(type(e).__name__ == "Image" for e in at.main)


def _run_what_if(at, carers: int):
    at.sidebar.number_input(key="services.homecare.staff.count").set_value(carers)
    at.sidebar.button(key="run").click().run()
    assert not at.exception and not at.error
    return at


def test_app_shows_the_models_numbers_for_a_what_if(monkeypatch):
    at = _app(monkeypatch)
    from streamlit.proto.Metric_pb2 import Metric as MetricProto

    assert "Baseline ready" in at.info[0].value
    fewer = _carers() - 25
    _run_what_if(at, fewer)
    assert f"{fewer} carers (-25)" in at.subheader[0].value
    shown = {m.label: (m.value, m.delta, MetricProto.MetricColor.Name(m.proto.color))
             for m in at.metric}
    assert len(shown) == len(engine.HEADLINE)
    base = _direct(SMALL.split(), engine.HEADLINE)
    what_if = _direct([*SMALL.split(), f"services.homecare.staff.count={fewer}"],
                      engine.HEADLINE)
    for metric in engine.HEADLINE:  # each headline number, from a direct run on seeds 0, 1
        diff = estimate(what_if[metric] - base[metric])
        value, delta, colour = shown[workshop.SHORT_LABELS[metric]]
        assert value == format_value(what_if[metric].mean(), metric), metric
        assert delta == format_change(diff.mean, diff.low, diff.high, metric), metric
        # grey unless the interval excludes 0; then red for more (all four: lower is better)
        assert colour == ("GRAY" if diff.low <= 0 <= diff.high else
                          "RED" if diff.mean > 0 else "GREEN"), metric
    delayed = what_if["delayed_days_per_30d"]
    assert at.session_state["current"].metrics.query(
        "metric == 'delayed_days_per_30d'")["value"].tolist() == delayed.tolist()
    table = at.dataframe[0].value.set_index("measure")
    assert table.loc["Delayed-discharge bed-days per 30 days", "What-if"] == format_value(
        delayed.mean(), "delayed_days_per_30d")
    assert not any(table.index.str.startswith("Escalations"))  # zeros left out
    assert len(at.tabs) == len(TAB_TITLES)
    assert _images(at) == 1  # the open tab's chart; the others are drawn when opened


def test_app_refuses_bad_input_in_one_line(monkeypatch):
    at = _app(monkeypatch)
    at.sidebar.number_input(key="services.homecare.staff.count").set_value(-5)
    at.sidebar.button(key="run").click().run()
    assert [e.value for e in at.error] == [workshop.verbatim(  # shown as is, not as Markdown
        "services.homecare.staff.count=-5 is not allowed: an integer >= 0")]
    assert not at.metric  # nothing shown for input that was refused
    at.sidebar.number_input(key="services.homecare.staff.count").set_value(_carers())
    at.sidebar.text_input(key="extra").input("homecare.carerz=3")
    at.sidebar.button(key="run").click().run()
    assert len(at.error) == 1 and workshop.verbatim("homecare.carerz") in at.error[0].value
    assert "\n" not in at.error[0].value
    at.sidebar.text_input(key="extra").input("")
    at.sidebar.number_input(key="run.warmup_days").set_value(70.0)
    at.run()
    assert len(at.error) == 1
    assert at.error[0].value.startswith(workshop.verbatim("run.warmup_days=70"))
    assert "\n" not in at.error[0].value


def test_app_finds_the_best_mix_for_a_budget(monkeypatch):
    """The budget view: a budget, a price changed, **Find the best mix**: the best mixes, the
    single levers and the chart are shown, and the search ran at the price given."""
    at = _app(monkeypatch)
    at.sidebar.radio(key="view").set_value(workshop.VIEWS[1]).run()
    assert not at.exception and not at.error
    at.number_input(key="budget").set_value(1_000_000.0)
    at.number_input(key="candidates").set_value(8)
    at.number_input(key="budget_replications").set_value(1)
    at.number_input(key="costs.seven_day_working_year").set_value(400_000.0)
    at.button(key="find_mix").click().run()
    assert not at.exception and not at.error
    result = at.session_state["budget_result"]
    assert len(result.trials) >= 8 and result.budget == 1_000_000.0
    seven = next(o for o in result.options if o.name == "seven_day")
    assert seven.step_cost == pytest.approx(400_000.0)  # the price given on the page
    assert (result.trials["spend"] <= 1_000_000.0 + 1e-6).all()
    assert at.dataframe[0].value["mix"].iloc[0] == result.best["mix"].iloc[0]
    assert _images(at) == 1


def test_app_forecasts_the_next_weeks_from_a_snapshot(monkeypatch):
    """The forecast view: the example snapshot, two weeks, a dated change: the fan chart is
    drawn, and the bands are the forecast's (both runs, each day of the two weeks)."""
    at = _app(monkeypatch)
    at.sidebar.radio(key="view").set_value(workshop.VIEWS[2]).run()
    assert not at.exception and not at.error
    at.number_input(key="weeks").set_value(2)
    at.number_input(key="forecast_replications").set_value(2)
    at.text_input(key="forecast_change").input("7:services.step_down.capacity=+20")
    at.button(key="forecast").click().run()
    assert not at.exception and not at.error
    table = at.session_state["forecast_table"]
    assert set(table["scenario"]) == {"as things are", "step-down / rehab beds +20 from day 7"}
    assert table["day"].max() == 13 and _images(at) == 1
    at.text_input(key="forecast_change").input("7:services.step_down.colour=+20")
    at.button(key="forecast").click().run()
    assert len(at.error) == 1 and "\n" not in at.error[0].value


def test_app_warns_as_the_command_line_does_when_a_queue_grows_all_run(monkeypatch):
    AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

    monkeypatch.setenv(workshop.OVERRIDES_VARIABLE, SMALL + " acute.beds=300")
    at = AppTest.from_file(str(APP), default_timeout=240)
    at.run()
    assert not at.exception and not at.error
    assert len(at.warning) == 1
    assert workshop.verbatim("Baseline: The queue for acute beds grew all run in 2 of 2") \
        in at.warning[0].value


@pytest.mark.slow
def test_app_draws_every_chart_and_keeps_what_ifs_side_by_side(monkeypatch):
    carers = _carers()
    at = _run_what_if(_app(monkeypatch), carers - 25)
    assert [tab.label for tab in at.tabs] == list(TAB_TITLES)
    for title in TAB_TITLES:
        at.session_state["chart_tab"] = title
        at.run()
        assert not at.exception and not at.error
        assert _images(at) == 1, title
    drawn = {key[1] for key in at.session_state["chart_pngs"]}
    assert drawn == set(TAB_TITLES)

    at.button(key="keep").click().run()
    turnover = at.sidebar.number_input(key=TURNOVER)
    assert turnover.label.startswith("Carers leaving a year (%)")
    turnover.set_value(turnover.value - 10)
    at.sidebar.button(key="run").click().run()
    assert not at.exception and not at.error
    assert "carer turnover (-10 points)" in at.subheader[0].value
    run = at.session_state["current"]
    assert run.params.services["homecare"].staff.workforce.turnover_per_year == \
        pytest.approx(turnover.value / 100)
    at.sidebar.number_input(key=TURNOVER).set_value(turnover.value + 10)  # back to baseline
    at.sidebar.toggle(key="seven_day").set_value(True)
    at.sidebar.number_input(key="services.homecare.staff.count").set_value(carers)
    at.sidebar.button(key="run").click().run()
    at.button(key="keep").click().run()
    assert not at.exception and not at.error
    side_by_side = at.dataframe[-1].value
    assert {f"{carers - 25} carers (-25)", "Seven-day working"} <= set(side_by_side.columns)
    assert _images(at) == 1 + 4  # the open tab, and four charts of the kept what-ifs
    at.button(key="prepare").click().run()
    assert not at.exception and not at.error
    report = at.session_state["report_html"].decode()
    assert at.get("download_button")  # the report can be downloaded
    assert f"{carers - 25} carers (-25)" in report and "Seven-day working" in report




# ----------------------------------------------------------------------------- in a browser
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, log: Path) -> subprocess.Popen:
    """The app as ``python -m sim.app`` serves it, on short runs."""
    env = {**os.environ, workshop.OVERRIDES_VARIABLE: SMALL}
    return subprocess.Popen(
        [sys.executable, "-m", "sim.app", "--server.headless", "true", "--server.port",
         str(port), "--server.fileWatcherType", "none"], env=env,
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _settled(page) -> None:
    """Wait until the app has finished running its script (Streamlit's "Running" status)."""
    page.wait_for_timeout(300)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="detached", timeout=180_000)


def _open(page, url: str, playwright) -> None:
    deadline = time.time() + 60
    while True:
        try:
            page.goto(url, timeout=10_000)
            return
        except playwright.Error:
            if time.time() > deadline:
                raise
            time.sleep(1)


@pytest.mark.slow
def test_app_in_a_browser(tmp_path):
    if not Path(CHROMIUM).exists():
        require("needs Debian's chromium package (apt-get install chromium)")
    try:
        import playwright.sync_api as playwright
    except ImportError:
        require("needs Playwright (pip install -e \".[browser]\")")
    port = _free_port()
    log = tmp_path / "server.log"
    server = _serve(port, log)
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True,
                args=CHROMIUM_ARGS, viewport={"width": 1600, "height": 1000})
            page = browser.new_page()
            _open(page, f"http://127.0.0.1:{port}", playwright)
            page.get_by_text("Baseline ready").wait_for(timeout=180_000)
            carers = page.get_by_role("spinbutton", name=lever("homecare_posts").label)
            carers.fill("-5")
            carers.press("Enter")
            page.get_by_role("button", name="Run what-if").click()
            error = page.locator("[data-testid='stAlertContentError'] "
                                 "[data-testid='stMarkdownContainer']")
            error.wait_for(timeout=60_000)
            # one line, as the command line says it (Streamlit's typography draws >= as ≥)
            assert error.inner_text().strip().replace("≥", ">=") == (
                "services.homecare.staff.count=-5 is not allowed: an integer >= 0")

            fewer = _carers() - 25
            carers.fill(str(fewer))
            carers.press("Enter")
            page.get_by_role("button", name="Run what-if").click()
            page.get_by_text(f"What if: {fewer} carers (-25)").wait_for(timeout=180_000)
            metrics = page.locator("[data-testid='stMetric']")
            metrics.nth(len(engine.HEADLINE) - 1).wait_for(timeout=60_000)
            _settled(page)
            assert page.get_by_text("2 replications of 49 measured days").count() == 1
            assert metrics.count() == len(engine.HEADLINE)
            widths = {}
            for title in TAB_TITLES:
                page.get_by_role("tab", name=title).click()
                _settled(page)
                image = page.get_by_role("tabpanel").locator("[data-testid='stImage'] img")
                image.wait_for(timeout=60_000)
                widths[title] = image.evaluate("i => i.complete ? i.naturalWidth : 0")
            assert min(widths.values()) > 500, widths  # every tab's chart is drawn
            assert page.locator("[data-testid='stException']").count() == 0
            assert page.locator("[data-testid='stAlertContentError']").count() == 0
            page.set_viewport_size({"width": 1600, "height": 2600})
            page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
            browser.close()
        assert (tmp_path / "app.png").stat().st_size > 50_000
    except Exception:
        print(log.read_text()[-5000:])
        raise
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
