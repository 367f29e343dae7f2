"""Performance benchmark: how fast the model runs, against peers, and what the user waits for.

    .venv/bin/python experiments/benchmark.py            # full run, about 10 minutes on 2 cores
    .venv/bin/python experiments/benchmark.py --quick    # smoke test: fewer repetitions, shorter runs
    .venv/bin/python experiments/benchmark.py --sections 1 2 5 6   # some sections only

What it measures (every figure in one run, so ratios compare like with like on one machine):

1. **Default system**: patients simulated per CPU-second, one replication on one core, one year
   after the warm-up (``time.process_time``, median of the repetitions; patients counted as
   ``len(result.patients)``, warm-up patients included); the same for ``scenario=one_pool``
   and for the default run of the code before issue 11 (commit ``BEFORE_ISSUE_11``, checked out
   in a temporary git worktree and run in a fresh process), alternating; and the SimPy events
   per patient of each system (events scheduled in the run / patients). Target: the default no
   more than 1.3x the CPU per patient of ``one_pool``, the same system with its mechanisms off.
2. **Tandem network vs peers**: the model reduced to the tandem network of :mod:`sim.checks.peers`
   (:func:`sim.checks.validation.tandem_params`) against ``ciw_tandem`` and the hand-written
   ``heapq_tandem`` on the same network and run length. Repetitions are interleaved (ours, ciw,
   heapq, then the next seed) so that load drift hits all three alike. Patients are counted as
   the peers count them (arrived after warm-up, left the acute bed before the end) and each
   simulator's mean blocked days (mean over the repetitions) is printed next to its speed, so
   the speeds are for the same answer. Ratios are the median of the per-repetition ratios.
   Targets: ours >= 3x ciw; heapq/ours <= 5.
3. **Scenario comparison**: every scenario in configs/scenario x N replications of one year,
   as one ``ProcessPoolExecutor(os.cpu_count())`` over all (scenario, replication) pairs whose
   workers return only ``result.metrics``; run from a fresh process so that its peak memory (max
   of ``ru_maxrss`` of RUSAGE_SELF and RUSAGE_CHILDREN there, i.e. the largest single process)
   is its own. The real command ``discharge-sim -m +experiment=scenario_comparison`` (Hydra's
   joblib launcher) is timed the same way. Targets: under 90 s wall, under 1 GiB.
4. **Scaling**: patients per CPU-second at 1, 5, 20 simulated years and at 100, 500, 2,000
   acute beds (admissions, assessors, community capacities and referral rates scaled with the
   beds from the default 520), and the peak RSS of a single run at 1 and 20 years, each in a
   fresh process (the "import only" figure is that process before it simulates). Targets:
   roughly flat (fastest / slowest <= 1.5); memory flat in run length (the 20-year run's peak
   RSS within 1.5x the 1-year run's).
5. **Command line**: wall time of ``discharge-sim`` with its defaults (5 replications on all
   cores, CSVs and charts), of the same without ``patients.csv`` and charts, and of
   ``discharge-sim run.replications=1`` (its CSVs and charts); each in a fresh output folder.
   Targets: defaults under 5 s, one replication under 2 s.
6. **Workshop app**: wall time of a what-if as the app runs it (compose, run its default
   replications on the app's warmed-up pool of workers, compare with the cached baseline),
   median of 3. Target: under 5 s.

How to read the outputs (results/benchmark/): ``benchmark.csv`` has one row per figure (section,
measure, value, unit, target, met, and the range of the repetitions behind a median or the
95% CI of a mean); ``benchmark.md`` is the same as a table with the date, processor, core
count, Python version, commit and load average (other work on the machine slows everything);
``profile.txt`` is cProfile of one default run (top 15 functions by own time, and own time
grouped by package) and of the default command line's parent process. CPU figures are
single-core process time; wall figures include process start-up and pool start-up.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

import pandas as pd

from sim import Params, override, simulate
from sim.core.model import Model
from sim.config.schema import CONFIG_DIR, load_config
from sim.running.files import write_atomic
from sim.checks.peers import ciw_tandem, heapq_tandem
from sim.running.stats import estimate
from sim.checks.validation import tandem_measures, tandem_params

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = ROOT / "results" / "benchmark"
DEFAULT_BEDS = 520
GIB_KIB = 1024 * 1024
TANDEM = (1.0, 5.0, 9, 20.0, 23)
"""arrival rate per day, acute mean stay, acute beds, care-home mean stay, care-home places."""


@dataclass(frozen=True)
class Plan:
    """Repetitions and run lengths; ``quick`` is a smoke test, not a measurement."""

    name: str
    default_repetitions: int
    tandem_days: float
    tandem_warmup: float
    tandem_repetitions: int
    scenario_replications: int
    years: tuple[int, ...]
    year_repetitions: tuple[int, ...]
    beds: tuple[int, ...]
    bed_repetitions: int
    cli_repetitions: int
    cli_extra_repetitions: int
    profile_cli: bool


FULL = Plan("full", 5, 20_000.0, 500.0, 5, 30, (1, 5, 20), (3, 2, 1), (100, 500, 2000), 3, 3, 2,
            True)
QUICK = Plan("quick", 2, 3_000.0, 500.0, 2, 2, (1, 2), (1, 1), (100, 1000), 1, 1, 1, False)


@dataclass(frozen=True)
class Row:
    """One reported figure."""

    section: str
    measure: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    spread: str = ""
    """Range of the repetitions behind a median, or a 95% confidence interval of a mean."""


# ----------------------------------------------------------------------------- helpers
def timed(fn: Callable[[], T], clock: Callable[[], float]) -> tuple[float, T]:
    """Seconds ``fn`` took on ``clock``, and its result."""
    start = clock()
    result = fn()
    return clock() - start, result


def in_fresh_process(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in a new Python process with its own memory high-water mark.

    Linux carries ``ru_maxrss`` over ``fork`` + ``exec`` from the forking process's resident
    set, so a process spawned from this (large) one would start with this one's size. A
    forkserver with nothing preloaded forks each child from a bare interpreter instead.
    """
    context = get_context("forkserver")
    context.set_forkserver_preload([])
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(fn, *args).result()


def peak_rss_kib() -> int:
    """Largest resident set of this process and of its finished children (KiB on Linux)."""
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def one_year(params: Params, years: float = 1) -> Params:
    """``params`` run for ``years`` simulated years after its warm-up."""
    return override(params, {"run.days": params.run.warmup_days + 365 * years})


def scaled_system(beds: int) -> Params:
    """The default system scaled to ``beds`` acute beds: admissions, assessors and every
    community capacity and referral rate in proportion (one year after warm-up)."""
    base, f = Params(), beds / DEFAULT_BEDS
    return one_year(override(base, {
        "acute.beds": beds,
        "admissions.per_day": base.admissions.per_day * f,
        "assessment.staff": max(1, round(base.assessment.staff * f)),
        "services.homecare.staff.count": max(1, round(base.services["homecare"].staff.count * f)),
        **{f"services.{name}.capacity": max(1, round(s.capacity * f))
           for name, s in base.services.items() if s.capacity is not None},
        **{f"services.{name}.community_referrals_per_day": s.community_referrals_per_day * f
           for name, s in base.services.items()},
    }))


def patient_rates(params: Params, repetitions: int) -> tuple[list[float], int]:
    """Patients per CPU-second of each repetition of replication 0 of ``params``, and the
    number of patients."""
    rates, count = [], 0
    for _ in range(repetitions):
        seconds, result = timed(lambda: simulate(params, 0), time.process_time)
        count = len(result.patients)
        rates.append(count / seconds)
    return rates, count


def events_per_patient(params: Params) -> float:
    """SimPy events scheduled per patient in replication 0 of ``params`` (warm-up included)."""
    model = Model(params, 0)
    result = model.run()
    assert result is not None
    return next(model.env._eid) / len(result.patients)  # simpy numbers each scheduled event


def span(values: Sequence[float]) -> str:
    """The range of repeated measurements (their noise), when there are several."""
    return f"{fmt(min(values))} to {fmt(max(values))}" if len(values) > 1 else ""


def median_row(section: str, measure: str, values: Sequence[float], unit: str,
               target: str = "", test: Callable[[float], bool] | None = None) -> Row:
    """A row for the median of repeated measurements, with their range."""
    value = statistics.median(values)
    return Row(section, measure, value, unit, target, None if test is None else test(value),
               span(values))


def discharge_sim() -> str:
    """The ``discharge-sim`` entry point of this environment."""
    return str(Path(sys.executable).parent / "discharge-sim")


def run_command(args: Sequence[str]) -> tuple[float, int]:
    """Wall seconds of a command run in a temporary folder, and the peak RSS (KiB) of its
    largest process; raises if it fails. Call in a fresh process for a clean RSS figure."""
    with tempfile.TemporaryDirectory(prefix="benchmark-") as folder:
        command = [a.replace("{tmp}", folder) for a in args]
        seconds, done = timed(lambda: subprocess.run(command, cwd=folder, capture_output=True,
                                                     text=True), time.perf_counter)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def verdict(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "NOT met")


def fmt(value: float) -> str:
    if value != value:  # NaN
        return "nan"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def show(rows: Iterable[Row]) -> list[Row]:
    """Print rows as they are measured (progress), and pass them on."""
    rows = list(rows)
    for r in rows:
        target = f"  [{r.target}: {verdict(r.met)}]" if r.target else ""
        spread = f"  ({r.spread})" if r.spread else ""
        print(f"  {r.measure:<58} {fmt(r.value):>12} {r.unit}{target}{spread}", flush=True)
    return rows


# ----------------------------------------------------------------------------- 1. default system
BEFORE_ISSUE_11 = "3c899f3"
"""The last commit before the mechanisms of why patients wait (care markets, the workforce,
the named steps in hospital; issue 11): its default run is the "before" of the speed target."""

_COMMIT_RATE = """
import sys, time
sys.path.insert(0, sys.argv[1])
from sim import Params, override, simulate
from sim.core.model import Model
params = override(Params(), {"run.days": Params().run.warmup_days + 365})
start = time.process_time()
result = simulate(params, 0)
print(len(result.patients) / (time.process_time() - start), len(result.patients))
"""


def commit_checkout(commit: str, folder: Path) -> bool:
    """Check ``commit`` out into ``folder`` (a detached git worktree); False if this is not a
    git clone that holds it."""
    done = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force",
                           str(folder), commit], capture_output=True, text=True)
    return done.returncode == 0


def commit_rate(folder: Path) -> tuple[float, int]:
    """Patients per CPU-second of replication 0 of the default system (1 year) as the code in
    ``folder`` has it, in a fresh process (its CPU time around ``simulate`` only)."""
    done = subprocess.run([sys.executable, "-c", _COMMIT_RATE, str(folder)], cwd=folder,
                          capture_output=True, text=True, check=True)
    rate, patients = done.stdout.split()
    return float(rate), int(patients)


def bench_default(plan: Plan) -> list[Row]:
    """The default system; the system before the mechanisms of why patients wait as it runs
    in today's code (``scenario=one_pool``), and the default run of the code before them
    (commit :data:`BEFORE_ISSUE_11`, in a git worktree), repetitions alternating so that the
    machine's load falls on all three; the ratios of the medians are what the mechanisms
    cost."""
    default, before = one_year(Params()), one_year(load_config(["scenario=one_pool"]).params)
    rates: list[float] = []
    before_rates: list[float] = []
    commit_rates: list[float] = []
    commit_patients = 0
    with tempfile.TemporaryDirectory(prefix="benchmark-commit-") as tmp:
        folder = Path(tmp) / "before"
        checked_out = commit_checkout(BEFORE_ISSUE_11, folder)
        if not checked_out:
            print(f"  (commit {BEFORE_ISSUE_11} not in this clone: its row is left out)")
        try:
            for _ in range(plan.default_repetitions):
                now, patients = patient_rates(default, 1)
                then, before_patients = patient_rates(before, 1)
                rates += now
                before_rates += then
                if checked_out:
                    rate, commit_patients = commit_rate(folder)
                    commit_rates.append(rate)
        finally:
            if checked_out:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(folder)], capture_output=True)
    slower = statistics.median(before_rates) / statistics.median(rates)
    rows = [median_row("1 default", "patients per CPU-second (1 year, 1 core)", rates,
                       "patients/CPU-s"),
            Row("1 default", "patients in the run (warm-up included)", patients, "patients"),
            median_row("1 default", "one_pool (before markets and workforce): patients per "
                       "CPU-second", before_rates, "patients/CPU-s"),
            Row("1 default", f"one_pool ({before_patients:,} patients) / default: CPU per "
                "patient", slower, "x", "<= 1.3", slower <= 1.3),
            Row("1 default", "SimPy events per patient, default", events_per_patient(default),
                "events/patient"),
            Row("1 default", "SimPy events per patient, one_pool", events_per_patient(before),
                "events/patient")]
    if commit_rates:
        then_slower = statistics.median(commit_rates) / statistics.median(rates)
        rows += [median_row("1 default", f"default run of commit {BEFORE_ISSUE_11} (before "
                            "issue 11): patients per CPU-second", commit_rates, "patients/CPU-s"),
                 Row("1 default", f"commit {BEFORE_ISSUE_11} ({commit_patients:,} patients) / "
                     "default: CPU per patient", then_slower, "x")]
    return rows


# ----------------------------------------------------------------------------- 2. tandem vs peers
def _ours(days: float, warmup: float, k: int) -> tuple[int, float]:
    patients = simulate(tandem_params(*TANDEM, days, warmup), k).patients
    counted = int(((patients["arrival"] >= warmup) & patients["left"].notna()).sum())
    return counted, tandem_measures(patients, days, warmup)["mean_blocked"]


def _ciw(days: float, warmup: float, k: int) -> tuple[int, float]:
    r = ciw_tandem(*TANDEM, days, warmup, 1000 + k)
    return r.patients, r.mean_blocked


def _heapq(days: float, warmup: float, k: int) -> tuple[int, float]:
    r = heapq_tandem(*TANDEM, days, warmup, 1000 + k)
    return r.patients, r.mean_blocked


def bench_tandem(plan: Plan) -> list[Row]:
    simulators = {"ours (SimPy model)": _ours, "ciw": _ciw, "heapq": _heapq}
    rates: dict[str, list[float]] = defaultdict(list)
    blocked: dict[str, list[float]] = defaultdict(list)
    for k in range(plan.tandem_repetitions):  # interleaved, so drift affects all alike
        for name, run in simulators.items():
            seconds, (patients, mean_blocked) = timed(
                lambda: run(plan.tandem_days, plan.tandem_warmup, k), time.process_time)
            rates[name].append(patients / seconds)
            blocked[name].append(mean_blocked)
    ours, ciw, heap = rates["ours (SimPy model)"], rates["ciw"], rates["heapq"]
    rows = []
    for name in simulators:
        rows.append(median_row("2 tandem", f"{name}: patients per CPU-second", rates[name],
                               "patients/CPU-s"))
        e = estimate(blocked[name])
        interval = f"95% CI {e.low:.3f} to {e.high:.3f}" if e.n > 1 else ""
        rows.append(Row("2 tandem", f"{name}: mean blocked days (mean of runs)", e.mean, "days",
                        spread=interval))
    # Ratios within each interleaved repetition, then their median.
    rows.append(median_row("2 tandem", "speed-up ours / ciw", [a / b for a, b in zip(ours, ciw)],
                           "x", ">= 3", lambda v: v >= 3))
    rows.append(median_row("2 tandem", "heapq / ours", [a / b for a, b in zip(heap, ours)], "x",
                           "<= 5", lambda v: v <= 5))
    rows.append(Row("2 tandem", "ours: SimPy events per patient", events_per_patient(
        tandem_params(*TANDEM, plan.tandem_days, plan.tandem_warmup)), "events/patient"))
    return rows


# ----------------------------------------------------------------------------- 3. scenarios
def scenario_params() -> dict[str, Params]:
    """Every scenario in configs/scenario, one year after warm-up."""
    names = sorted(p.stem for p in (CONFIG_DIR / "scenario").glob("*.yaml"))
    return {name: one_year(load_config([f"scenario={name}"]).params) for name in names}


def _metrics_only(params: Params, replication: int) -> pd.DataFrame:
    """A worker's task: one replication, returning only its metrics (small to send back)."""
    return simulate(params, replication).metrics


def scenario_pool(scenarios: dict[str, Params], replications: int) -> dict[str, float]:
    """One process pool over all (scenario, replication) pairs. Call in a fresh process."""
    start = time.perf_counter()
    # "fork", Linux's default, named because a child inherits its launcher's start method
    # (forkserver here), whose workers would not be this process's children.
    with ProcessPoolExecutor(os.cpu_count(), mp_context=get_context("fork")) as pool:
        futures = [pool.submit(_metrics_only, params, k)
                   for params in scenarios.values() for k in range(replications)]
        tables = [f.result() for f in futures]
    wall = time.perf_counter() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "peak_kib": peak_rss_kib(), "runs": len(tables),
            "cpu": children.ru_utime + children.ru_stime}


def bench_scenarios(plan: Plan) -> list[Row]:
    scenarios = scenario_params()
    pool = in_fresh_process(scenario_pool, scenarios, plan.scenario_replications)
    command = [discharge_sim(), "-m", "+experiment=scenario_comparison",
               "hydra.sweep.dir={tmp}/sweep"]
    if plan.scenario_replications != 30:
        command.append(f"run.replications={plan.scenario_replications}")
    cli_wall, cli_kib = in_fresh_process(run_command, command)
    section = "3 scenarios"
    runs = f"{len(scenarios)} scenarios x {plan.scenario_replications}"
    return [
        Row(section, f"process pool, {runs}: wall time", pool["wall"], "s", "< 90 s",
            pool["wall"] < 90),
        Row(section, "process pool: peak RSS (largest process)", pool["peak_kib"] / 1024, "MiB",
            "< 1 GiB", pool["peak_kib"] < GIB_KIB),
        Row(section, "process pool: CPU time of the workers", pool["cpu"], "CPU-s"),
        Row(section, "process pool: parallel efficiency (CPU / (wall x cores))",
            pool["cpu"] / (pool["wall"] * (os.cpu_count() or 1)), "fraction"),
        Row(section, "discharge-sim -m +experiment=scenario_comparison: wall", cli_wall, "s",
            "< 90 s", cli_wall < 90),
        Row(section, "discharge-sim -m ...: peak RSS (largest process)", cli_kib / 1024, "MiB",
            "< 1 GiB", cli_kib < GIB_KIB),
    ]


# ----------------------------------------------------------------------------- 4. scaling
def single_run_rss(params: Params) -> tuple[int, int]:
    """(RSS after imports, peak RSS after one run), KiB. Call in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    simulate(params, 0)
    return before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def bench_scaling(plan: Plan) -> list[Row]:
    section = "4 scaling"
    rows, rates = [], []
    for years, repetitions in zip(plan.years, plan.year_repetitions):
        values, patients = patient_rates(one_year(Params(), years), repetitions)
        rows.append(median_row(section, f"{years} year(s), 520 beds ({patients:,} patients)",
                               values, "patients/CPU-s"))
    for beds in plan.beds:
        values, patients = patient_rates(scaled_system(beds), plan.bed_repetitions)
        rows.append(median_row(section, f"{beds} beds, 1 year ({patients:,} patients)", values,
                               "patients/CPU-s"))
    rates = [r.value for r in rows]
    spread = max(rates) / min(rates)
    rows.append(Row(section, "fastest / slowest of the above", spread, "x", "<= 1.5",
                    spread <= 1.5))
    peaks = []
    for years in (plan.years[0], plan.years[-1]):
        before, peak = in_fresh_process(single_run_rss, one_year(Params(), years))
        if years == plan.years[0]:
            rows.append(Row(section, "fresh process, import only: RSS", before / 1024, "MiB"))
        rows.append(Row(section, f"single run, {years} year(s): peak RSS", peak / 1024, "MiB"))
        peaks.append(peak)
    growth = peaks[-1] / peaks[0]
    rows.append(Row(section, f"peak RSS, {plan.years[-1]} years / {plan.years[0]} year", growth,
                    "x", "<= 1.5", growth <= 1.5))
    return rows


# ----------------------------------------------------------------------------- 5. command line
def cli_walls(args: Sequence[str], repetitions: int) -> list[float]:
    """Wall seconds of ``discharge-sim ARGS``, into a fresh output folder each time."""
    command = [discharge_sim(), *args, "hydra.run.dir={tmp}/run"]
    return [run_command(command)[0] for _ in range(repetitions)]


def bench_cli(plan: Plan) -> list[Row]:
    section = "5 command line"
    default = cli_walls([], plan.cli_repetitions)
    lean = cli_walls(["output.charts=false", "output.patients_csv=false"],
                     plan.cli_extra_repetitions)
    single = cli_walls(["run.replications=1"], plan.cli_extra_repetitions)
    return [median_row(section, "discharge-sim (defaults: 5 replications, CSVs, charts)",
                       default, "s", "< 5 s", lambda v: v < 5),
            median_row(section, "discharge-sim output.charts=false output.patients_csv=false",
                       lean, "s"),
            median_row(section, "discharge-sim run.replications=1 (CSVs, charts)", single, "s",
                       "< 2 s", lambda v: v < 2)]


def bench_app(plan: Plan) -> list[Row]:
    """The workshop app's what-if as the app runs it: on the app's pool of worker processes
    (started once, warmed up), the baseline run once (cached), then what-ifs of +20 carers,
    each its default replications, timed from the click (compose the config, run, compare
    with the baseline)."""
    from sim.app import engine

    section = "6 workshop app"
    base = engine.compose([])
    pool = engine.make_pool(engine.WORKERS)
    try:
        baseline = engine.run_scenario(base, name="baseline", label="Baseline", pool=pool)
        carers = base.params.services["homecare"].staff.count
        walls = []
        for k in range(plan.cli_repetitions):
            started = time.perf_counter()
            config = engine.compose([f"services.homecare.staff.count={carers + 20 + k}"])
            what_if = engine.run_scenario(config, name="what_if", label="What if", pool=pool)
            engine.compare({"baseline": baseline, "what_if": what_if})
            walls.append(time.perf_counter() - started)
    finally:
        pool.shutdown()
    return [median_row(section, f"what-if, {base.params.run.replications} replications, "
                       f"{engine.WORKERS} workers (baseline cached)", walls, "s", "< 5 s",
                       lambda v: v < 5)]


# ----------------------------------------------------------------------------- profile
def area(filename: str) -> str:
    """Which package a profiled function belongs to."""
    if filename.startswith("~") or filename.startswith("<"):
        return "built-ins (C)"
    for package in ("simpy", "pandas", "numpy", "hydra", "omegaconf", "matplotlib", "ciw"):
        if f"/{package}/" in filename:
            return package
    if "/sim/" in filename:
        return "sim/" + Path(filename).name
    return "other Python"


def by_area(stats: pstats.Stats) -> list[tuple[str, float]]:
    totals: dict[str, float] = defaultdict(float)
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        totals[area(filename)] += tottime
    return sorted(totals.items(), key=lambda item: -item[1])


def cumtime(stats: pstats.Stats, path_part: str, function: str) -> float | None:
    """Cumulative time of the functions named ``function`` in files containing ``path_part``
    (None if there is none: the code may have been renamed since this was written)."""
    times = [ct for (f, _, name), (_, _, _, ct, _) in stats.stats.items()  # type: ignore[attr-defined]
             if name == function and path_part in f]
    return sum(times) if times else None


TOP_MARK = "Top"


def profile_summary(text: str) -> str:
    """The profile text without its per-function listings (for the console)."""
    kept, skipping = [], False
    for line in text.splitlines():
        if line.startswith("## "):
            skipping = False
        elif line.startswith(TOP_MARK + " "):
            skipping = True
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def profile_report(stats: pstats.Stats, title: str, whole: float | None,
                   highlights: dict[str, float | None], top: int = 15) -> str:
    """Highlights (cumulative seconds, as a share of ``whole``, the top call's cumulative
    time: cProfile's total own time undercounts generators), own time by package, top functions."""
    total = stats.total_tt  # type: ignore[attr-defined]
    whole = max(total, whole or 0.0)
    out = io.StringIO()
    out.write(f"## {title}\n\n{whole:.2f} s under cProfile (its overhead included).\n\n")
    for label, seconds in highlights.items():
        figure = "n/a" if seconds is None else f"{seconds:7.2f} s  {100 * seconds / whole:5.1f}%"
        out.write(f"  {label:<55} {figure}\n")
    out.write(f"\nOwn time (tottime) by package, of {total:.2f} s:\n")
    for name, seconds in by_area(stats)[:10]:
        out.write(f"  {name:<55} {seconds:7.2f} s  {100 * seconds / total:5.1f}%\n")
    out.write(f"\n{TOP_MARK} {top} functions by own time:\n")
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def profile_model() -> str:
    profiler = cProfile.Profile()
    profiler.runcall(simulate, one_year(Params()), 0)
    stats = pstats.Stats(profiler)
    return profile_report(stats, "simulate(default params, 1 year), one replication",
                          cumtime(stats, "sim/core/model.py", "simulate"), {
        "simulation (simpy Environment.run)": cumtime(stats, "/simpy/", "run"),
        "building the result tables and metrics (Model._result)":
            cumtime(stats, "sim/core/model.py", "_result"),
        "  of which compute_metrics": cumtime(stats, "sim/core/metrics.py", "compute_metrics"),
        "  of which compute_daily": cumtime(stats, "sim/core/metrics.py", "compute_daily"),
        "  of which patient_table": cumtime(stats, "sim/core/model.py", "patient_table"),
    })


def profile_cli() -> str:
    """cProfile of the parent process of ``discharge-sim`` with defaults (workers not seen)."""
    with tempfile.TemporaryDirectory(prefix="benchmark-") as folder:
        out = Path(folder) / "cli.prof"
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "sim.config.cli",
                        f"hydra.run.dir={folder}/run"], cwd=folder, capture_output=True,
                       check=True)
        stats = pstats.Stats(str(out))
    runs, store = (cumtime(stats, "sim/running/runner.py", "run_replications"),
                   cumtime(stats, "sim/running/store.py", "save"))
    charts = [cumtime(stats, "sim/reporting/charts.py", f)
              for f in ("delayed_days_by_pathway", "fit_in_hospital_over_time")]
    return profile_report(stats, "discharge-sim with defaults (parent process only)",
                          cumtime(stats, "sim/config/cli.py", "main"), {
        "writing files (sim.running.files.write_atomic)": cumtime(stats, "sim/running/files.py", "write_atomic"),
        "  of which the replication store (ReplicationStore.save)": store,
        "  of which the output tables (report.write_tables)":
            cumtime(stats, "sim/reporting/report.py", "write_tables"),
        "charts (sim.reporting.charts)": sum(c for c in charts if c is not None),
        "replications, less the store (run_replications - save)":
            None if runs is None else runs - (store or 0.0),
    })


# ----------------------------------------------------------------------------- outputs
def load_average() -> str:
    """The 1-minute load average: other work on the machine slows every figure here."""
    return f"{os.getloadavg()[0]:.2f}"


def source_version() -> str:
    """The commit measured, ``-dirty`` if the working tree has uncommitted changes."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, cwd=Path(__file__).resolve().parent, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def machine() -> dict[str, str]:
    return {"date": datetime.now().strftime("%Y-%m-%d %H:%M"),
            "processor": platform.processor() or "(not reported)",
            "machine": platform.machine(), "cpu_count": str(os.cpu_count()),
            "python": platform.python_version(), "source": source_version(),
            "load_at_start": load_average()}


def plan_text(plan: Plan) -> str:
    return (f"{plan.name} plan: default run x{plan.default_repetitions}; tandem "
            f"{plan.tandem_days:g} days ({plan.tandem_warmup:g} warm-up) x"
            f"{plan.tandem_repetitions} per simulator; scenarios x{plan.scenario_replications} "
            f"replications; years {list(plan.years)} x{list(plan.year_repetitions)}; beds "
            f"{list(plan.beds)} x{plan.bed_repetitions}; command lines x{plan.cli_repetitions} "
            f"(defaults), x{plan.cli_extra_repetitions} (others)")


def markdown(rows: Sequence[Row], info: dict[str, str], plan: Plan, total: float) -> str:
    lines = ["# Benchmark", "",
             f"{info['date']}; processor `{info['processor']}` ({info['machine']}), "
             f"{info['cpu_count']} cores (`os.cpu_count()`), Python {info['python']}. "
             f"Source `{info['source']}`. {plan_text(plan)}. Sections run: "
             f"{info['sections']}. Whole benchmark: {total:.0f} s "
             f"wall; 1-minute load average {info['load_at_start']} at the start, "
             f"{info['load_at_end']} at the end (above 0 means other work shared the cores).",
             "",
             "CPU figures: `time.process_time`, one core, median of the repetitions. Wall "
             "figures: `time.perf_counter`, including process and pool start-up. RSS: "
             "`ru_maxrss` of the largest single process. Ratios are within this run.", "",
             "| section | measure | value | unit | target | met | range of repetitions / CI |",
             "|---|---|---:|---|---|---|---|"]
    lines += [f"| {r.section} | {r.measure} | {fmt(r.value)} | {r.unit} | {r.target} | "
              f"{verdict(r.met)} | {r.spread} |" for r in rows]
    return "\n".join(lines) + "\n"


def write_outputs(rows: Sequence[Row], info: dict[str, str], plan: Plan, total: float,
                  profile: str, folder: Path) -> None:
    table = pd.DataFrame([r.__dict__ for r in rows]).assign(**info, plan=plan.name)
    write_atomic(folder / "benchmark.csv", lambda p: table.to_csv(p, index=False))
    text = markdown(rows, info, plan, total)
    write_atomic(folder / "benchmark.md", lambda p: p.write_text(text))
    write_atomic(folder / "profile.txt", lambda p: p.write_text(profile))


# ----------------------------------------------------------------------------- main
SECTIONS: tuple[tuple[str, Callable[[Plan], list[Row]]], ...] = (
    ("1. Default system, one core", bench_default),
    ("2. Tandem network: the model vs ciw vs heapq", bench_tandem),
    ("3. Scenario comparison on all cores", bench_scenarios),
    ("4. How cost grows", bench_scaling),
    ("5. Command line", bench_cli),
    ("6. Workshop app", bench_app),
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: fewer repetitions and shorter runs (not a measurement)")
    parser.add_argument("--output", type=Path, default=OUTPUT_DIR,
                        help=f"folder for the outputs (default {OUTPUT_DIR})")
    parser.add_argument("--sections", type=int, nargs="+", metavar="N",
                        choices=range(1, len(SECTIONS) + 1),
                        default=list(range(1, len(SECTIONS) + 1)),
                        help="the sections to run (default: all; 3 and 4 take longest)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    info = machine()
    info["sections"] = ", ".join(str(n) for n in sorted(set(args.sections)))
    print(f"Benchmark, {info['date']}: {info['processor']} ({info['machine']}), "
          f"{info['cpu_count']} cores, Python {info['python']}, source {info['source']}, "
          f"load average {info['load_at_start']}")
    print(plan_text(plan), flush=True)
    start = time.perf_counter()
    rows: list[Row] = []
    for number, (title, bench) in enumerate(SECTIONS, start=1):
        if number not in args.sections:
            continue
        print(f"\n{title}", flush=True)
        rows += show(bench(plan))
    print("\nProfiling one default run" + (" and the default command line" if plan.profile_cli
                                           else ""), flush=True)
    # In a fresh process: this one's heap, grown by the runs above, would slow the collector.
    profile = in_fresh_process(profile_model) + ("\n\n" + profile_cli() if plan.profile_cli
                                                 else "")
    total = time.perf_counter() - start
    info["load_at_end"] = load_average()
    write_outputs(rows, info, plan, total, profile, args.output)
    print("\n" + markdown(rows, info, plan, total))
    print(profile_summary(profile))
    print(f"Wrote {args.output / 'benchmark.csv'}, benchmark.md and profile.txt "
          f"({total:.0f} s in all)")


if __name__ == "__main__":
    main()
