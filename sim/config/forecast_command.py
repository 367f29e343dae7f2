"""``discharge-sim forecast``: what happens over the next weeks from today's snapshot.

    discharge-sim forecast snapshot=configs/snapshots/example.yaml weeks=8
    discharge-sim forecast snapshot=FILE weeks=8 change=14:services.step_down.capacity=+20
    discharge-sim forecast snapshot=FILE scenario=extra_homecare replications=100 out=DIR

Starts the configured system (any ``setting=value`` of ``discharge-sim`` too) from the
snapshot with no warm-up and forecasts ``weeks`` weeks, day 0 being the snapshot's date: the
daily medically-fit-in-hospital count, occupied beds and delayed bed-days, each with its mean
and 80% and 95% prediction bands across replications. With ``change=DAY:SETTING=VALUE``
(repeatable: a capacity set on that day; ``+N``/``-N``: relative to the configured value) or
``scenario=NAME``, the same is forecast for that scenario too, on common random numbers, and
overlaid. Writes ``forecast.csv`` (the bands), ``replications.csv`` and ``forecast.png`` to
``results/forecast/<snapshot date>/`` (or ``out=``) and prints the outlook. A fault in the
command line or the snapshot is one line and exit status 2.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from sim.config.schema import ConfigError, load_config
from sim.core.levers import get_setting
from sim.core.params import ParameterError, Params
from sim.core.start import Change, check_change
from sim.reporting import charts
from sim.running.files import write_csv
from sim.running.forecast import bands, run_forecast
from sim.running.runner import default_workers
from sim.running.snapshot import SnapshotError, read_snapshot

KEYS = ("snapshot", "weeks", "replications", "change", "scenario", "out", "today", "workers")
"""The command's own arguments; any other ``key=value`` is a setting of the system."""


class UsageError(ValueError):
    """A fault in the forecast command line: one line."""


def parse_change(text: str, params: Params) -> Change:
    """``DAY:SETTING=VALUE`` (``+N``/``-N``: relative to the setting's configured value)."""
    day, sep, rest = text.partition(":")
    setting, eq, value = rest.partition("=")
    if not sep or not eq:
        raise UsageError(f"change={text}: not DAY:SETTING=VALUE, e.g. "
                         "change=14:services.step_down.capacity=+20")
    try:
        when, amount = float(day), float(value)
    except ValueError:
        raise UsageError(f"change={text}: the day and the value must be numbers") from None
    try:
        change = Change(when, setting.strip(), 0.0)
        check_change(change, params.services)
        if value.strip()[:1] in "+-":
            amount += float(get_setting(params, change.setting))
        return Change(when, change.setting, amount)
    except ValueError as error:
        raise UsageError(str(error)) from None


def forecast_command(argv: Sequence[str]) -> Path:
    """Run the forecast command line ``argv`` (without ``forecast``); returns the folder."""
    ours: dict[str, list[str]] = {}
    settings = []
    for item in argv:
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"{item!r}: not key=value; arguments: " + ", ".join(KEYS)
                             + " and any setting")
        if key in KEYS:
            ours.setdefault(key, []).append(value)
        else:
            settings.append(item)
    for key, values in ours.items():
        if len(values) > 1 and key != "change":
            raise UsageError(f"{key}: given {len(values)} times")
    if "snapshot" not in ours:
        raise UsageError("snapshot=FILE is required (see configs/snapshots/example.yaml)")
    weeks = _whole(ours.get("weeks", ["8"])[0], "weeks", 1)
    replications = _whole(ours.get("replications", ["40"])[0], "replications", 2)
    today = None
    if "today" in ours:
        try:
            today = dt.date.fromisoformat(ours["today"][0])
        except ValueError:
            raise UsageError(f"today={ours['today'][0]}: not a date (YYYY-MM-DD)") from None
    base = load_config(settings)
    params = base.params
    dated = read_snapshot(ours["snapshot"][0], params, today)
    changes = [parse_change(text, params) for text in ours.get("change", [])]
    scenario = ours.get("scenario", [None])[0]
    workers = _whole(ours["workers"][0], "workers", 1) if "workers" in ours else (
        default_workers(replications))

    runs: dict[str, tuple[Params, list[Change]]] = {"as things are": (params, [])}
    if scenario is not None or changes:
        other = load_config([*settings, f"scenario={scenario}"]) if scenario else base
        label = ", ".join([*([other.name] if scenario else []),
                           *(_describe(c, t) for c, t in zip(changes, ours.get("change", [])))])
        runs[label] = (other.params, changes)
    tables, tidies = [], []
    for name, (system, dated_changes) in runs.items():
        tidy = run_forecast(system, dated.snapshot, weeks, replications, dated_changes, workers)
        table = bands(tidy, dated.date)
        table.insert(0, "scenario", name)
        tidy.insert(0, "scenario", name)
        tables.append(table)
        tidies.append(tidy)
    table, tidy = pd.concat(tables, ignore_index=True), pd.concat(tidies, ignore_index=True)
    out = Path(ours.get("out", [f"results/forecast/{dated.date.isoformat()}"])[0])
    out.mkdir(parents=True, exist_ok=True)
    write_csv(table, out / "forecast.csv")
    write_csv(tidy, out / "replications.csv")
    change_days = {name: [c.day for c in ch] for name, (_, ch) in runs.items()}
    charts.forecast(table, out / "forecast.png",
                    title=f"The next {weeks} weeks from {dated.date:%A %d %B %Y}",
                    change_days=change_days, beds=params.acute.beds)
    print(outlook(table, tidy, weeks, dated.date))
    print(f"\nwritten to {out}/: forecast.csv, replications.csv, forecast.png")
    return out


def _describe(change: Change, text: str) -> str:
    """A dated change in the user's words: ``services.step_down.capacity +20 from day 14``."""
    value = text.rpartition("=")[2].strip()
    return f"{change.setting} {value if value[:1] in '+-' else '= ' + value} from day {change.day:g}"


def outlook(table: pd.DataFrame, tidy: pd.DataFrame, weeks: int, date: dt.date) -> str:
    """The forecast in words, for each scenario: each week's mean midnight count of medically
    fit patients in hospital, and the delayed bed-days of the whole period (mean over
    replications and 80% band across them)."""
    lines = [f"Forecast from the snapshot of {date:%A %d %B %Y}, {weeks} weeks, "
             f"{int(table['replications'].max())} replications: mean [80% band]"]
    for name, rows in tidy.groupby("scenario", sort=False):
        lines.append(f"\n{name}:")
        for week in range(weeks):
            days = rows[(rows["day"] >= 7 * week) & (rows["day"] < 7 * week + 7)]
            means = days.groupby("replication")["fit_in_hospital"].mean()
            first = date + dt.timedelta(days=7 * week)
            lines.append(f"  week {week + 1} (from {first:%d %b}): {means.mean():5.1f} medically "
                         f"fit in hospital [{means.quantile(0.1):.0f}-{means.quantile(0.9):.0f}]")
        totals = rows.groupby("replication")["delayed_bed_days"].sum()
        lines.append(f"  delayed bed-days over the {weeks} weeks: {totals.mean():,.0f} "
                     f"[{totals.quantile(0.1):,.0f}-{totals.quantile(0.9):,.0f}]")
    return "\n".join(lines)


def _whole(text: str, key: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{key}={text}: not allowed: a whole number >= {low}") from None
    if value < low:
        raise UsageError(f"{key}={text}: not allowed: a whole number >= {low}")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    """``discharge-sim forecast ...``: a user's error is one line and exit status 2."""
    from sim.config.cli import user_error_line
    try:
        forecast_command(sys.argv[2:] if argv is None else argv)
    except Exception as error:
        if isinstance(error, (UsageError, SnapshotError, ConfigError, ParameterError)):
            message: str | None = str(error).splitlines()[0]
        else:
            message = user_error_line(error)
        if message is None:
            raise
        print(f"discharge-sim forecast: error: {message}", file=sys.stderr)
        sys.exit(2)
