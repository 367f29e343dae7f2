"""The workshop app: "what if we added 20 carers?", answered by the real model in seconds.

    .venv/bin/python -m sim.app          # or: .venv/bin/streamlit run sim/app/workshop.py

The levers in the sidebar compose a what-if's config exactly as the command line does (bad
input is refused in one line, with the command line's message); the what-if runs the model on
common random numbers against a cached baseline, its replications in parallel; the headline
numbers are shown against the baseline with 95% confidence intervals, then the charts. A what-if
can be kept, and kept what-ifs are compared side by side and handed on as an HTML report.

The page logic is in plain functions (tested directly); :func:`main` draws the page.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from typing import Any, Callable, Mapping

import pandas as pd

from sim.app import engine
from sim.core.levers import get_setting, lever, setting_label
from sim.reporting.html import format_change, format_value, plain_table, verdict
from sim.reporting.money import cost_comparison, cost_table_for_people

BASELINE = "baseline"
# Overrides of the app's baseline (``python -m sim.app key=value ...`` sets it). (Comments,
# not docstrings, at the top level here: Streamlit would show a bare string on the page.)
OVERRIDES_VARIABLE = "DISCHARGE_SIM_APP_OVERRIDES"
RUN_SETTINGS = ("run.replications", "run.days", "run.warmup_days")
SHORT_LABELS = {"delayed_days_per_30d": "Delayed bed-days per 30 days",
                "fit_in_hospital_midnight": "Medically fit, still in hospital",
                "delay_mean.all": "Mean delay (days)", "acute_occupancy": "Acute bed occupancy"}
VIEWS = ("What if", "Best use of a budget", "The next weeks")
BUDGET_PRICES = (("costs.delayed_bed_day", "A delayed bed-day (£)"),
                 ("costs.services.homecare.price", "An hour of homecare (£)"),
                 ("costs.services.care_home.segments.residential", "A residential care-home week (£)"),
                 ("costs.services.care_home.segments.nursing", "A nursing-home week (£)"),
                 ("costs.services.step_down.price", "A step-down bed-day (£)"),
                 ("costs.discharge_team_member_year", "A discharge-team member a year (£)"),
                 ("costs.seven_day_working_year", "Seven-day working a year (£)"))
LOWER_IS_BETTER = {"delayed_days_per_30d", "fit_in_hospital_midnight", "delay_mean.all",
                   "acute_occupancy"}


# ----------------------------------------------------------------------------- plain page logic
def startup_overrides() -> list[str]:
    """The overrides the app was started with (its baseline: ``python -m sim.app
    run.replications=10``)."""
    return shlex.split(os.environ.get(OVERRIDES_VARIABLE, ""))


def verbatim(text: str) -> str:
    """``text`` for Streamlit to show as it is, not as Markdown: a message may hold ``*``,
    ``_``, ``[...]``, ``$`` or ``:name:``, which Markdown would turn into italics, links, maths
    or icons. (Streamlit still draws a lone ``>=`` as ``≥``.)"""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~$=])", r"\\\1", text)


def run_overrides(settings: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[str]:
    """Overrides for the run settings (replications, length) that differ from the config's:
    applied to the baseline and every what-if alike."""
    return [f"{key}={settings[key]:g}" if isinstance(settings[key], float)
            else f"{key}={settings[key]}" for key in RUN_SETTINGS
            if key in settings and settings[key] != defaults[key]]


def headline(comparison: pd.DataFrame, name: str) -> list[dict[str, Any]]:
    """The headline numbers of scenario ``name`` against the baseline: for each of
    :data:`engine.HEADLINE`, its label, the baseline's and the what-if's value (formatted), the
    change with its 95% CI, what the interval says, and the raw numbers."""
    from sim.core.catalogue import describe

    out = []
    for metric in engine.HEADLINE:
        rows = comparison[comparison["metric"] == metric].set_index("scenario")
        if name not in rows.index:
            continue
        base, r = rows.loc[BASELINE], rows.loc[name]
        entry = describe(metric)
        out.append({
            "metric": metric,
            "label": SHORT_LABELS.get(metric, entry.label[:1].upper() + entry.label[1:]),
            "long_label": entry.label[:1].upper() + entry.label[1:],
            "baseline": format_value(base["mean"], metric),
            "value": format_value(r["mean"], metric),
            "change": format_change(r["difference"], r["diff_ci_low"], r["diff_ci_high"],
                                    metric),
            "verdict": verdict(r["diff_ci_low"], r["diff_ci_high"]),
            "detectable": bool(r["diff_ci_low"] > 0 or r["diff_ci_high"] < 0),
            "mean": float(r["mean"]), "baseline_mean": float(base["mean"]),
            "difference": float(r["difference"]) if name != BASELINE else 0.0,
        })
    return out


def cost_lines(runs: Mapping[str, engine.ScenarioRun], name: str) -> list[str]:
    """What the what-if ``name`` costs against the baseline, in words and pounds a year (empty
    if the runs have no costs)."""
    tidy = engine.tidy(runs)
    if "cost.total" not in set(tidy["metric"]):
        return []
    table = cost_table_for_people(cost_comparison(tidy, BASELINE))
    row = table[table["scenario"] == name].iloc[0]
    year = runs[BASELINE].costs.price_year if runs[BASELINE].costs is not None else ""
    return [f"**{column[:1].upper()}{column[1:]}**: {row[column]}"
            for column in table.columns if column != "scenario"] + [
        f"Pounds at {year} prices (`configs/costs/`); the net cost counts community capacity "
        "provided, the discharge team, programmes and delayed bed-days; negative saves money."]


def run_warnings(runs: Mapping[str, engine.ScenarioRun]) -> list[str]:
    """The command line's warnings about the runs, each naming its run: a queue that grew all
    run makes its waits, and the delays behind it, depend on how long the run is."""
    from sim.reporting.report import queue_warnings

    return [f"{name}: {line[:1].upper()}{line[1:]}." for name, run in runs.items()
            for line in queue_warnings(run)]


def delta_colour(item: Mapping[str, Any]) -> str:
    """How Streamlit colours a headline's change: green when better, red when worse, grey when
    the simulation cannot tell it from no change (its sign alone would colour it)."""
    if not item["detectable"]:
        return "off"
    return "inverse" if item["metric"] in LOWER_IS_BETTER else "normal"


def chart_makers(runs: Mapping[str, engine.ScenarioRun], comparison: pd.DataFrame,
                 flow_of: str) -> dict[str, Callable[[], Any]]:
    """The app's charts by tab title, each a function that draws it (a matplotlib figure), for
    the baseline and the given what-ifs; the patient flow of ``flow_of``. Only the charts
    looked at are drawn: drawing all seven takes seconds."""
    from sim.core.catalogue import causes
    from sim.reporting import analysis, charts

    labels = {name: run.label for name, run in runs.items()}
    base = runs[BASELINE]
    params = base.params
    warmup = params.run.warmup_days
    pathways = {k: engine.pathway_name(k, params) for k in params.pathways}
    tidy = engine.tidy(runs)
    flow = runs[flow_of]
    dailies = {n: r.daily for n, r in runs.items()}
    return {
        "Change from baseline": lambda: charts.scenario_comparison(
            comparison, baseline=BASELINE, labels=labels),
        "By pathway": lambda: charts.delayed_days_by_scenario(
            {n: r.metrics for n, r in runs.items()}, pathways, labels=labels),
        "Where the delay comes from": lambda: charts.delay_by_cause(tidy, causes(params),
                                                                    labels=labels),
        "Medically fit over time": lambda: charts.fit_in_hospital_over_time(
            dailies, warmup, labels=labels),
        "Acute beds": lambda: charts.acute_occupancy(dailies, params.acute.beds, warmup,
                                                     labels=labels),
        "By weekday": lambda: charts.weekend_rules(analysis.weekend_rules(tidy), labels=labels),
        "Patient flow": lambda: charts.patient_flow(flow.mean_flows(), title=flow.label,
                                                    replications=flow.replications,
                                                    days=flow.params.run.measured_days),
    }


def table_height(table: pd.DataFrame) -> int:
    """Pixels that show every row of a table on the page (no scrolling inside it)."""
    return 38 + 35 * len(table)


def run_what_if(values: Mapping[str, Any], extra: str, run_settings: list[str],
                baseline_values: Mapping[str, Any], pool=None, progress=None,
                workers: int = engine.WORKERS) -> engine.ScenarioRun:
    """Compose and run a what-if (raises :class:`engine.InputError` with a one-line message)."""
    overrides = engine.what_if_overrides(values, baseline_values, extra)
    config = engine.compose(run_settings + overrides)
    label = engine.what_if_label(values, baseline_values, extra)
    return engine.run_scenario(config, name=label, label=label, overrides=overrides,
                               pool=pool, progress=progress, workers=workers)


# ----------------------------------------------------------------------------- the page
# (Drawn by Streamlit; tests/test_app.py drives it with AppTest and a browser.)
def main() -> None:  # pragma: no cover
    import streamlit as st

    st.set_page_config(page_title="Delayed discharge: what if?", layout="wide",
                       page_icon=":hospital:")
    st.markdown("<style>[data-testid='stMetricValue']{font-size:2.4rem}"
                "[data-testid='stMetricLabel'] p{font-size:1.05rem}</style>",
                unsafe_allow_html=True)
    startup = startup_overrides()
    try:
        base_config = engine.compose(startup)
    except engine.InputError as error:
        st.error(verbatim(f"Started with bad settings: {error}"))
        st.stop()
    view = st.sidebar.radio("View", VIEWS, key="view", horizontal=True)
    st.title("Delayed hospital discharge: what if?")
    if view == VIEWS[0]:
        st.caption("Change the levers on the left and press **Run what-if**. The simulation "
                   "runs the same patients through the baseline system and your what-if "
                   "(common random numbers), so the change you see is the effect of what you "
                   "changed.")
    base_values = engine.lever_defaults(base_config)
    run_defaults = {key: get_setting(base_config, key) for key in RUN_SETTINGS}
    values, extra, settings, run_clicked = _sidebar(st, base_config, base_values, run_defaults)
    base_key = ("baseline", tuple(startup + run_overrides(settings, run_defaults)))
    pool, baselines = _kept_for_the_app(st)
    if view == VIEWS[1]:
        _budget_view(st, base_config, list(base_key[1]), pool())
        return
    if view == VIEWS[2]:
        _forecast_view(st, list(base_key[1]))
        return
    try:
        baseline = _baseline(st, base_key, pool(), baselines())
        if run_clicked:
            _run_what_if(st, values, extra, base_key, base_values, pool())
    except engine.InputError as error:
        st.error(verbatim(str(error)), icon=":material/error:")
        st.stop()
    _results(st, baseline, base_key)


def _make_pool():  # pragma: no cover
    return engine.make_pool(engine.WORKERS)


def _baselines() -> dict:  # pragma: no cover
    return {}


def _kept_for_the_app(st: Any) -> tuple[Callable[[], Any], Callable[[], dict]]:  # pragma: no cover
    """The app's worker processes and the baselines run so far, by their run settings: made
    once and kept for the app's life (Streamlit runs this script again on every click)."""
    return (st.cache_resource(show_spinner=False)(_make_pool),
            st.cache_resource(show_spinner=False)(_baselines))


def _sidebar(st: Any, base_config: Any, base_values: Mapping[str, Any],
             run_defaults: Mapping[str, Any]) -> tuple[dict, str, dict, bool]:  # pragma: no cover
    """The levers, the switches, other settings and the run settings: their values, and
    whether **Run what-if** was pressed."""
    with st.sidebar:
        st.header("What if…")
        values: dict[str, Any] = {}
        for lever in engine.levers(base_config):
            default = lever.shown(base_values[lever.setting])
            is_float = isinstance(base_values[lever.setting], float)
            shown = st.number_input(
                f"{lever.label} (baseline {default:g})", value=default,
                step=float(lever.step) if is_float else int(lever.step), help=lever.help,
                key=lever.setting, format="%g" if is_float else "%d")
            values[lever.setting] = lever.value(shown)
        for switch in engine.switches():
            values[switch.name] = st.toggle(switch.title, value=False, help=switch.about,
                                            key=switch.name)
        extra = st.text_input("Other settings (as on the command line)", key="extra",
                              placeholder="e.g. acute.beds=540",
                              help="Any setting of `discharge-sim --cfg job`, key=value, "
                                   "separated by spaces.")
        with st.expander("Run settings"):
            settings = {
                "run.replications": st.number_input(
                    "Replications", value=run_defaults["run.replications"], step=1,
                    key="run.replications", help="More replications: narrower intervals, "
                    "slower runs."),
                **{key: st.number_input(setting_label(key).capitalize(),
                                        value=float(run_defaults[key]), step=7.0, key=key,
                                        format="%g")
                   for key in ("run.days", "run.warmup_days")},
            }
        clicked = st.button("Run what-if", type="primary", width="stretch", key="run")
    return values, extra, settings, clicked


def _progress(st: Any, text: str):  # pragma: no cover
    """A progress bar, and the function that moves it as replications finish."""
    bar = st.progress(0.0, text=text)
    return bar, (lambda done, total: bar.progress(
        done / total, text=f"{text}: replication {done} of {total} done"))


def _baseline(st: Any, base_key: tuple, pool: Any,
              baselines: dict) -> engine.ScenarioRun:  # pragma: no cover
    """The baseline of these run settings: run once, then kept."""
    if base_key not in baselines:
        bar, report = _progress(st, "Running the baseline (once; then it is kept)")
        config = engine.compose(list(base_key[1]))
        baselines[base_key] = engine.run_scenario(config, name=BASELINE, label="Baseline",
                                                  pool=pool, progress=report)
        bar.empty()
    return baselines[base_key]


def _run_what_if(st: Any, values: Mapping[str, Any], extra: str, base_key: tuple,
                 base_values: Mapping[str, Any], pool: Any) -> None:  # pragma: no cover
    """Run the what-if in the sidebar and keep it as the current one."""
    bar, report = _progress(st, "Running your what-if")
    started = time.perf_counter()
    what_if = run_what_if(values, extra, list(base_key[1]), base_values, pool=pool,
                          progress=report)
    what_if.extra["wall_seconds"] = time.perf_counter() - started
    bar.empty()
    st.session_state["current"] = what_if
    st.session_state["current_key"] = base_key


def _results(st: Any, baseline: engine.ScenarioRun, base_key: tuple) -> None:  # pragma: no cover
    """The current what-if against the baseline, and the kept what-ifs side by side."""
    current = st.session_state.get("current")
    if current is not None and st.session_state.get("current_key") != base_key:
        current = None  # run settings changed: the what-if no longer pairs with the baseline
    shown = {"Baseline": baseline} if current is None else {"Baseline": baseline,
                                                            "What-if": current}
    for line in run_warnings(shown):
        st.warning(verbatim(line), icon=":material/warning:")
    if current is None:
        st.info(f"Baseline ready ({baseline.replications} replications of "
                f"{baseline.params.run.measured_days:g} measured days). Choose a what-if and "
                "press **Run what-if**.")
        return
    kept = {k: v for k, v in st.session_state.setdefault("kept", {}).items()
            if v.extra.get("base_key") == base_key}
    _show_what_if(st, baseline, current, base_key, kept)
    if kept:
        _show_kept(st, baseline, kept, base_key)


def _show_what_if(st: Any, baseline: engine.ScenarioRun, current: engine.ScenarioRun,
                  base_key: tuple, kept: dict) -> None:  # pragma: no cover
    """The what-if's headline numbers, a button to keep it, its table and its charts."""
    runs = {BASELINE: baseline, "what_if": current}
    comparison = engine.compare(runs)
    st.subheader(f"What if: {current.label}")
    st.caption(f"{current.replications} replications of {current.params.run.measured_days:g} "
               f"measured days each, on the same random numbers as the baseline; ran in "
               f"{current.extra.get('wall_seconds', current.seconds):.1f} s. "
               "Change: what-if minus baseline, with its 95% confidence interval.")
    for column, item in zip(st.columns(len(engine.HEADLINE)), headline(comparison, "what_if")):
        with column:
            st.metric(item["label"], item["value"], delta=item["change"],
                      delta_color=delta_colour(item),
                      help=f"{item['long_label']}. Baseline: {item['baseline']}. The change "
                           "from the baseline is shown with its 95% CI in brackets.")
            st.caption(f"baseline {item['baseline']}: {item['verdict']}")
    for line in cost_lines(runs, "what_if"):
        st.markdown(line)
    keep_col, name_col = st.columns([1, 3])
    with name_col:
        keep_name = st.text_input("Name to keep it under", value=current.label,
                                  key=f"keep_name:{current.label}", label_visibility="collapsed")
    with keep_col:
        if st.button("Keep this what-if for comparison", key="keep"):
            kept[keep_name] = st.session_state["kept"][keep_name] = current.renamed(
                keep_name, base_key=base_key)
    st.markdown("#### In plain words")
    table = plain_table(comparison, {BASELINE: "Baseline", "what_if": "What-if"})
    st.dataframe(table, hide_index=True, width="stretch", height=table_height(table))
    makers = chart_makers(runs, comparison, "what_if")
    key = ("current", current.run_id, baseline.run_id)
    titles = list(makers)
    try:  # only the open tab's chart is drawn (Streamlit >= 1.5x); else all of them
        tabs, lazy = st.tabs(titles, key="chart_tab", on_change="rerun"), True
    except TypeError:
        tabs, lazy = st.tabs(titles), False
    for tab, title in zip(tabs, titles):
        with tab:
            if not lazy or tab.open:
                st.image(_chart_png(st, key, makers, title), width="stretch")


def budget_overrides(prices: Mapping[str, float], defaults: Mapping[str, float]) -> list[str]:
    """The overrides of the prices changed in the budget view."""
    return [f"{key}={prices[key]:g}" for key in prices if prices[key] != defaults[key]]


def run_budget_search(config: Any, amount: float, objective: str, candidates: int,
                      replications: int, pool: Any = None, progress: Any = None):
    """A budget search on the app's system: the levers of the budget experiment, at the
    config's prices (raises :class:`engine.InputError` with a one-line message)."""
    from sim.config.schema import programmes_on, switches_of
    from sim.core.levers import LEVERS
    from sim.running import budget as search

    levers = [lever for lever in LEVERS if lever.budget_step]
    programmes = programmes_on(config.params)
    try:
        options = search.make_options(config.params, config.costs, programmes, levers, amount,
                                      switches_of(levers))
        return search.search(config.params, config.costs, programmes, options, amount,
                             objective, candidates, replications, confirm=replications * 2,
                             keep=3, seed=config.run.seed, pool=pool, progress=progress)
    except search.BudgetError as error:
        raise engine.InputError(str(error)) from None


def _budget_view(st: Any, base_config: Any, run_settings: list[str],
                 pool: Any) -> None:  # pragma: no cover
    """A budget a year, the prices, and the best mix of levers it buys, with its chart."""
    from sim.reporting import charts
    from sim.reporting.money import budget_table_for_people, single_table_for_people

    st.subheader("Where does the next pound go?")
    st.caption("The search tries mixes of more carers, care-home places, step-down beds, "
               "discharge-team staff, a pay rise for carers and seven-day working that the "
               "budget buys, each on the same patients (common random numbers), runs the best "
               "again on more replications, and compares the best with spending the whole "
               "budget on any one lever. A workshop search is short; `experiments/run.py "
               "budget` runs a full one.")
    cols = st.columns(4)
    amount = cols[0].number_input("Budget a year (£)", value=2_500_000.0, step=100_000.0,
                                  key="budget", format="%.0f")
    objective = cols[1].selectbox("Minimise", ["delayed_days", "total_cost"], key="objective",
                                  format_func=lambda x: {"delayed_days": "delayed bed-days",
                                                         "total_cost": "total cost"}[x])
    candidates = int(cols[2].number_input("Mixes to try", value=16, step=4, key="candidates"))
    replications = int(cols[3].number_input("Replications each", value=3, step=1,
                                            key="budget_replications"))
    with st.expander(f"Prices ({base_config.costs.price_year}; configs/costs/)"):
        defaults = {key: float(get_setting(base_config, key)) for key, _ in BUDGET_PRICES}
        prices = {key: st.number_input(label, value=defaults[key], key=key, format="%g")
                  for key, label in BUDGET_PRICES}
    if st.button("Find the best mix", type="primary", key="find_mix"):
        bar = st.progress(0.0, text="Searching")
        try:
            config = engine.compose(run_settings + budget_overrides(prices, defaults))
            st.session_state["budget_result"] = run_budget_search(
                config, amount, objective, candidates, replications, pool=pool,
                progress=lambda done, total, what: bar.progress(min(1.0, done / total),
                                                                text=what))
        except engine.InputError as error:
            st.error(verbatim(str(error)), icon=":material/error:")
            return
        bar.empty()
    result = st.session_state.get("budget_result")
    if result is None:
        st.info("Set a budget and press **Find the best mix**.")
        return
    st.markdown(f"**Best mix for £{result.budget:,.0f} a year**: "
                + result.best["mix"].iloc[0])
    st.dataframe(budget_table_for_people(result.best), hide_index=True, width="stretch")
    st.markdown("**Against the whole budget on one lever** (negative: the mix does better)")
    st.dataframe(single_table_for_people(result.against_single, result.objective),
                 hide_index=True, width="stretch")
    st.image(charts.to_png(charts.budget(result.trials, result.front, result.best,
                                         result.against_single, result.baseline,
                                         result.objective, result.budget,
                                         price_year=base_config.costs.price_year)),
             width="stretch")


def run_forecast_view(config: Any, snapshot: str, weeks: int, replications: int,
                      change: str = "", workers: int = engine.WORKERS):
    """The forecast of the app's view: from a snapshot file, as things are and, with a dated
    ``change`` (day, setting and value, as the forecast command takes it), with it; the daily
    bands and the fan chart (raises :class:`engine.InputError` with a one-line message)."""
    from sim.config.forecast_command import UsageError, parse_change
    from sim.reporting import charts
    from sim.running.forecast import bands, run_forecast
    from sim.running.snapshot import SnapshotError, read_snapshot

    params = config.params
    try:
        dated = read_snapshot(snapshot, params)
        changes = [parse_change(change.strip(), params)] if change.strip() else []
    except (SnapshotError, UsageError) as error:
        raise engine.InputError(str(error)) from None
    runs: dict[str, list] = {"as things are": []}
    if changes:
        value = change.partition("=")[2].strip()
        runs[f"{setting_label(changes[0].setting)} {value} from day {changes[0].day:g}"] = changes
    tables = []
    for name, dated_changes in runs.items():
        table = bands(run_forecast(params, dated.snapshot, weeks, replications, dated_changes,
                                   workers), dated.date)
        table.insert(0, "scenario", name)
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    figure = charts.forecast(table, title=f"The next {weeks} weeks from {dated.date:%A %d %B %Y}",
                             change_days={name: [c.day for c in ch] for name, ch in runs.items()},
                             beds=params.acute.beds)
    return table, figure


def _forecast_view(st: Any, run_settings: list[str]) -> None:  # pragma: no cover
    """A snapshot of today, the weeks ahead, a dated change: the forecast's fan chart."""
    from sim.config.schema import CONFIG_DIR
    from sim.reporting import charts

    st.subheader("What happens over the next weeks, from today?")
    st.caption("The model starts from a snapshot of today (the patients in the acute beds and "
               "the community services' clients and waiting lists; `configs/snapshots/` and "
               "docs/forecast.md say how to make one), not from an empty hospital, and "
               "forecasts each day with 80% and 95% prediction bands.")
    files = sorted(str(f.relative_to(CONFIG_DIR.parent))
                   for f in (CONFIG_DIR / "snapshots").glob("*.yaml"))
    cols = st.columns(4)
    snapshot = cols[0].selectbox("Snapshot", files, key="snapshot")
    weeks = int(cols[1].number_input("Weeks", value=8, min_value=1, step=1, key="weeks"))
    replications = int(cols[2].number_input("Replications", value=20, min_value=2, step=5,
                                            key="forecast_replications"))
    example = f"14:{lever('step_down_beds').setting}=+20"
    change = cols[3].text_input("A dated change", value=example, key="forecast_change",
                                help="DAY:SETTING=VALUE, +N or -N: acute.beds, "
                                     "services.<name>.capacity or services.<name>.staff.count")
    if st.button("Forecast", type="primary", key="forecast"):
        with st.spinner("Forecasting"):
            try:
                config = engine.compose(run_settings)
                table, figure = run_forecast_view(config, snapshot, weeks, replications, change)
            except engine.InputError as error:
                st.error(verbatim(str(error)), icon=":material/error:")
                return
            st.session_state["forecast_png"] = charts.to_png(figure)
            st.session_state["forecast_table"] = table
    if "forecast_png" in st.session_state:
        st.image(st.session_state["forecast_png"], width="stretch")
        st.download_button("Download the daily bands (CSV)",
                           st.session_state["forecast_table"].to_csv(index=False),
                           file_name="forecast.csv", mime="text/csv", key="forecast_csv")


def _chart_png(st: Any, key: tuple, makers: dict, title: str) -> bytes:  # pragma: no cover
    """A chart as PNG, drawn once per set of runs (not on every rerun)."""
    from sim.reporting import charts

    cache: dict = st.session_state.setdefault("chart_pngs", {})
    if (key, title) not in cache:
        while len(cache) >= 30:
            cache.pop(next(iter(cache)))
        cache[key, title] = charts.to_png(makers[title]())
    return cache[key, title]


def _show_kept(st: Any, baseline: engine.ScenarioRun, kept: dict,
               base_key: tuple) -> None:  # pragma: no cover
    """The kept what-ifs side by side, their charts, and the HTML report of them."""
    from sim.reporting.html import report_html

    st.divider()
    st.header("Kept what-ifs, side by side")
    compared = {BASELINE: baseline, **{f"kept_{i}": run for i, run in enumerate(kept.values())}}
    table = engine.compare(compared)
    plain = plain_table(table, {name: run.label for name, run in compared.items()})
    st.dataframe(plain, hide_index=True, width="stretch", height=table_height(plain))
    makers = chart_makers(compared, table, BASELINE)
    key = ("kept", baseline.run_id, *(run.run_id for run in kept.values()))
    for title in ("Change from baseline", "Where the delay comes from",
                  "Medically fit over time", "Acute beds"):
        st.image(_chart_png(st, key, makers, title), width="stretch")
    report_key = (base_key, tuple(kept))
    if st.session_state.get("report_key") != report_key:
        if st.button("Prepare an HTML report of this comparison", key="prepare"):
            with st.spinner("Drawing the report's charts"):
                st.session_state["report_html"] = report_html(compared, table).encode("utf-8")
            st.session_state["report_key"] = report_key
    if st.session_state.get("report_key") == report_key:
        st.download_button("Download the HTML report", st.session_state["report_html"],
                           file_name="what-if-report.html", mime="text/html",
                           key="download_report")
    if st.button("Clear kept what-ifs", key="clear"):
        st.session_state["kept"] = {}
        st.rerun()


if __name__ == "__main__":
    main()
