"""A report to hand on: run scenarios against the baseline and write one self-contained HTML
file (charts embedded, a table in plain words, assumptions, settings that differ).

    .venv/bin/discharge-report                          # every lever, 5 replications
    .venv/bin/discharge-report extra_homecare seven_day_discharge run.replications=10
    .venv/bin/discharge-report extra_homecare --out handout.html

Names without ``=`` are scenarios (``configs/scenario/NAME.yaml``); ``key=value`` arguments are
Hydra overrides applied to the baseline and every scenario alike. Every scenario runs the same
replications on the same random numbers as the baseline, two at a time. The report goes to
``results/report/report.html`` unless ``--out`` says otherwise. Bad input is one line and exit
status 2, as on the command line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from sim.config.schema import CONFIG_DIR

PROGRAM = "discharge-report"
NOT_LEVERS = ("baseline", "one_pool", "harm")
"""Scenarios left out when none is named: the baseline itself, the model without its
mechanisms (``one_pool``) and the harm of waiting switched on (``harm``), which change the
model, not the system."""


def scenario_names() -> list[str]:
    """The scenarios in ``configs/scenario/``."""
    return sorted(p.stem for p in (CONFIG_DIR / "scenario").glob("*.yaml"))


def main(argv: Sequence[str] | None = None) -> None:
    """The ``discharge-report`` command (exit status 0 when the report is written, 2 for bad
    input)."""
    report(argv)


def report(argv: Sequence[str] | None = None) -> Path:
    """Run the scenarios of ``argv`` (the command's arguments) and write the report; its path."""
    from sim.app import engine
    from sim.reporting.html import write_report

    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0])
    parser.add_argument("items", nargs="*", metavar="SCENARIO|key=value",
                        help="scenarios to compare with the baseline, and overrides for all")
    parser.add_argument("--out", type=Path, default=Path("results/report/report.html"),
                        help="the HTML file to write (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=engine.WORKERS,
                        help="processes to run replications on (default: %(default)s)")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    overrides = [item for item in args.items if "=" in item]
    known = scenario_names()
    names = [item for item in args.items if "=" not in item] or [n for n in known
                                                                  if n not in NOT_LEVERS]
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"{PROGRAM}: error: scenario {unknown[0]!r} is not allowed: one of "
              + ", ".join(known), file=sys.stderr)
        sys.exit(2)
    try:
        configs = {"baseline": engine.compose([*overrides, "scenario=baseline"])}
        for name in names:
            if name != "baseline":
                configs[name] = engine.compose([*overrides, f"scenario={name}"])
    except engine.InputError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        sys.exit(2)
    runs = {}
    for name, config in configs.items():
        started = time.perf_counter()
        label = engine.scenario_title(name, config, configs["baseline"])
        runs[name] = engine.run_scenario(config, name=name, label=label, workers=args.workers)
        print(f"{label}: {runs[name].replications} replications in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    comparison = engine.compare(runs)
    path = write_report(runs, comparison, args.out)
    print(f"Report: {path}")
    return path


if __name__ == "__main__":
    main()
