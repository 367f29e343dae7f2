"""Mutation testing of the model core: how many small faults in sim/core do the fast tests catch?

    .venv/bin/pip install "mutmut==3.8.1"          # once: the tool (not a dependency of the model)
    .venv/bin/python experiments/mutation.py       # about 30 minutes on 2 cores
    .venv/bin/python experiments/mutation.py --files calendar.py --sample 0 --minutes 10

mutmut (https://mutmut.readthedocs.io) makes many small changes ("mutants") to the code - a ``<``
for a ``<=``, a ``+ 1`` for a ``- 1``, a dropped argument - and runs the tests against each; a
mutant the tests do not fail on "survives". The score is the share of mutants killed.

The repository is first copied to ``--workdir`` (default /tmp/mutation; it is emptied first), and
mutmut mutates only that copy, never the working tree. It mutates the files of sim/core named by
``--files`` and runs the fast model tests of ``--tests`` (``-m "not slow"``; not the CLI,
notebook, sweep or regression tests) against each mutant, the tests that reach the mutated
function only, stopping at the first failure. ``--sample N`` draws N mutants at random
(``--seed``) from all of them so that the run stays within ``--minutes``; ``--sample 0`` runs
every mutant. ``--exclude`` leaves out mutants by name pattern (by default those of the
harm-of-waiting functions, which have tests of their own in tests/test_harm.py). A run that reaches ``--minutes`` is stopped and scored on the mutants it finished.

Writes ``<workdir>/mutation-report.md`` (the score, and every survivor with its diff) and
``<workdir>/mutation-results.json``, and prints the score. The results of the last full run, with
each survivor killed by a test or explained, are in docs/mutation-testing.md.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT_VERSION = "3.8.1"
INSTALL = f'{Path(sys.executable).parent / "pip"} install "mutmut=={MUTMUT_VERSION}"'
FILES = ["model.py", "metrics.py", "resources.py", "streams.py", "calendar.py", "market.py",
         "workforce.py"]
TESTS = ["tests/test_correctness.py", "tests/test_model.py", "tests/test_edge_cases.py",
         "tests/test_calendar.py", "tests/test_properties.py", "tests/test_harm.py",
         "tests/test_market.py", "tests/test_workforce.py"]
EXCLUDE = ["*ǁ_discharge_with_harm__mutmut_*", "*ǁ_unfit_again__mutmut_*",
           "*ǁ_fit_again__mutmut_*", "*ǁ_let_go__mutmut_*", "*ǁ_die__mutmut_*",
           "*ǁ_escalate__mutmut_*", "*ǁ_maybe_readmit__mutmut_*", "*ǁ_Holdǁ*",
           "*.x__rate__mutmut_*", "*.x__harm_metrics__mutmut_*"]
"""Mutants left out by default: the functions of the harm of waiting (deaths, escalation,
readmission), a feature that arrived while issue 14 was measured and has its own tests."""
MARKER = ".mutation-workdir"
NOT_COPIED = (".venv", ".git", ".hypothesis", ".pytest_cache", "__pycache__", "*.egg-info",
              "outputs", "multirun", "results", "mutants", "notebooks", "docs")
KILLED = ("killed", "timeout")
"""mutmut statuses that count as caught: a test failed, or the run hung (e.g. an endless loop)."""
NOT_CAUGHT = ("survived", "no tests", "suspicious", "segfault")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mutation"))
    parser.add_argument("--files", nargs="+", default=FILES, help="files of sim/core to mutate")
    parser.add_argument("--tests", nargs="+", default=TESTS, help="test files to run")
    parser.add_argument("--sample", type=int, default=200,
                        help="mutants drawn at random (0: all of them)")
    parser.add_argument("--exclude", nargs="*", default=EXCLUDE,
                        help="mutant name patterns left out (default: the harm-of-waiting "
                             "functions; give none to keep every mutant)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--minutes", type=float, default=32.0, help="stop the run after this")
    parser.add_argument("--resume", action="store_true",
                        help="reuse --workdir: copy the current tests into it and test again the "
                             "chosen mutants not yet checked or not caught (a run stopped at "
                             "--minutes, or survivors after new tests)")
    parser.add_argument("--only", nargs="*", default=[],
                        help="with --resume: test again only the mutants matching these patterns")
    args = parser.parse_args()

    mutmut = Path(sys.executable).parent / "mutmut"
    if not mutmut.exists():
        print(f"mutmut is not installed: {INSTALL}", file=sys.stderr)
        return 2
    started = time.monotonic()
    if args.resume:
        work = args.workdir.resolve()
        if not (work / MARKER).exists() or not (work / "mutants").is_dir():
            raise SystemExit(f"--resume: {work} holds no run of this script")
        for target in (work / "tests", work / "mutants" / "tests"):
            shutil.copytree(ROOT / "tests", target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        previous = work / "mutation-results.json"
        if previous.exists():
            shutil.copy2(previous, work / "mutation-results.previous.json")
    else:
        work = prepare_copy(args.workdir, args.files, args.tests)
        # 1. Generate every mutant and record which tests reach which function: a run
        #    restricted to a name that matches no mutant does exactly that, and then stops.
        print(f"[mutation] generating mutants of {', '.join(args.files)} in {work}", flush=True)
        subprocess.run([str(mutmut), "run", "--max-children", str(args.jobs), "no-such-mutant"],
                       cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    names = [n for n in all_mutant_names(work)
             if not any(fnmatch.fnmatchcase(n, pattern) for pattern in args.exclude)]
    if not names:
        print("[mutation] mutmut generated no mutants: see `mutmut run` in " + str(work),
              file=sys.stderr)
        return 1
    chosen = sorted(random.Random(args.seed).sample(names, args.sample)
                    if 0 < args.sample < len(names) else names)
    todo = chosen
    if args.resume:
        before = statuses(mutmut, work)
        todo = [n for n in chosen if before.get(n, "not checked") not in KILLED
                and (not args.only or any(fnmatch.fnmatchcase(n, o) for o in args.only))]
    print(f"[mutation] {len(names)} mutants; {len(chosen)} chosen; testing {len(todo)}",
          flush=True)

    # 2. Test them, within the time left.
    left = args.minutes * 60.0 - (time.monotonic() - started)
    if todo:
        run_with_deadline([str(mutmut), "run", "--max-children", str(args.jobs), *todo], work,
                          left, work / "mutmut-run.log")

    # 3. Score them and write the report.
    status = statuses(mutmut, work)
    status = {name: status.get(name, "not checked") for name in chosen}
    report = write_report(mutmut, work, status, len(names), args, time.monotonic() - started)
    print(report.split("\n## ")[0])
    print(f"[mutation] report: {work / 'mutation-report.md'}")
    return 0


def prepare_copy(workdir: Path, files: list[str], tests: list[str]) -> Path:
    """A fresh copy of the repository in ``workdir``, with mutmut's settings."""
    workdir = workdir.resolve()
    if workdir == ROOT or ROOT in workdir.parents:
        raise SystemExit(f"--workdir {workdir} is inside the repository: choose one outside it")
    if workdir.exists():
        if not (workdir / MARKER).exists():
            raise SystemExit(f"--workdir {workdir} exists and was not made by this script")
        shutil.rmtree(workdir)
    shutil.copytree(ROOT, workdir, ignore=shutil.ignore_patterns(*NOT_COPIED))
    (workdir / MARKER).write_text("made by experiments/mutation.py; deleted by its next run\n")
    for f in files:
        if not (workdir / "sim" / "core" / f).is_file():
            raise SystemExit(f"--files: sim/core/{f} does not exist")
    lines = ["[mutmut]", "source_paths = sim",
             "also_copy =", "    configs",  # the tests that compose configs with Hydra
             "only_mutate =", *[f"    sim/core/{f}" for f in files],
             "pytest_add_cli_args_test_selection =", *[f"    {t}" for t in tests],
             "pytest_add_cli_args =", "    -m", "    not slow", "    -n", "    0",  # no xdist
             "    -p", "    no:cacheprovider",
             "use_git_change_detection = false", ""]
    (workdir / "setup.cfg").write_text("\n".join(lines))
    return workdir


def all_mutant_names(work: Path) -> list[str]:
    """Every mutant's name, from mutmut's per-file records."""
    names: list[str] = []
    for meta in sorted((work / "mutants").rglob("*.py.meta")):
        names += list(json.loads(meta.read_text()).get("exit_code_by_key", {}))
    return sorted(set(names))


def run_with_deadline(command: list[str], cwd: Path, seconds: float, log: Path) -> None:
    """Run ``command``; at the deadline interrupt it as Ctrl-C would (mutmut then keeps every
    result it has), and kill it if it does not stop."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            process.wait(timeout=max(seconds, 1.0))
        except subprocess.TimeoutExpired:
            print("[mutation] time is up: stopping mutmut", flush=True)
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def statuses(mutmut: Path, work: Path) -> dict[str, str]:
    """Each tested mutant's status, from ``mutmut results --all true``."""
    text = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=work,
                          capture_output=True, text=True).stdout
    return {m.group(1): m.group(2) for m in re.finditer(r"^\s*(\S+): (.+?)\s*$", text, re.M)}


def write_report(mutmut: Path, work: Path, status: dict[str, str], generated: int,
                 args: argparse.Namespace, seconds: float) -> str:
    counts: dict[str, int] = {}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    caught = sum(counts.get(s, 0) for s in KILLED)
    judged = caught + sum(counts.get(s, 0) for s in NOT_CAUGHT)
    score = caught / judged if judged else float("nan")
    survivors = sorted(n for n, s in status.items() if s in NOT_CAUGHT)
    lines = [
        "# Mutation testing of sim/core",
        "",
        f"mutmut {MUTMUT_VERSION}; files: {', '.join(args.files)}; tests: "
        f"{' '.join(args.tests)} (-m 'not slow'); {generated} mutants generated outside "
        f"the excluded patterns ({' '.join(args.exclude) or 'none'}), "
        f"{len(status)} chosen (sample {args.sample}, seed {args.seed}); "
        f"{seconds / 60:.1f} minutes.",
        "",
        f"**Score: {caught} of {judged} mutants caught = {100 * score:.1f}%**",
        "",
        "| status | mutants |", "|---|---:|",
        *[f"| {s} | {n} |" for s, n in sorted(counts.items())],
        "",
        "## Survivors",
        "",
    ]
    for name in survivors:
        diff = subprocess.run([str(mutmut), "show", name], cwd=work, capture_output=True,
                              text=True).stdout.strip()
        lines += [f"### {name} ({status[name]})", "", "```diff", diff, "```", ""]
    report = "\n".join(lines)
    (work / "mutation-report.md").write_text(report)
    (work / "mutation-results.json").write_text(json.dumps(
        {"generated": generated, "chosen": len(status), "caught": caught, "judged": judged,
         "score": score, "counts": counts, "status": status}, indent=1))
    return report


if __name__ == "__main__":
    sys.exit(main())
