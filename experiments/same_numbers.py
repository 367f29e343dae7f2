"""Check that a change to the model's code leaves its numbers alone, to the last bit.

    .venv/bin/python experiments/same_numbers.py --save results/same_numbers.json   # before
    .venv/bin/python experiments/same_numbers.py --check results/same_numbers.json  # after

Runs one replication of each of seven systems (the default; the harm of waiting all on;
``one_pool``; seven-day discharge; discharge to assess; a provider that fails; 450 acute beds
with diversion after a day) on a shortened run, and hashes each output table (the patient log,
the request log, the daily counts, the metrics) from its bytes. ``--check`` compares with hashes
saved before the change and names each table that differs. A refactoring or a speed-up must
pass it; a change that alters the numbers on purpose must say so and rerun the validation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import pandas as pd

from sim.config.schema import load_config
from sim.core.model import simulate

SYSTEMS: dict[str, list[str]] = {
    "default": [],
    "harm": ["scenario=harm"],
    "one_pool": ["scenario=one_pool"],
    "seven_day": ["scenario=seven_day_discharge"],
    "discharge_to_assess": ["scenario=discharge_to_assess"],
    "provider_failure": ["scenario=provider_failure"],
    "diversion": ["acute.beds=450", "acute.max_wait_for_bed=1.0"],
}
"""The systems checked, as command-line overrides."""

RUN = ["run.days=300", "run.warmup_days=60"]
"""A shortened run: long enough for every mechanism to act (a closure on day 150)."""


def _digest(table: pd.DataFrame) -> str:
    """A hash of a table's column names, types and values (NaN-safe, row order kept)."""
    hashed = pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes()
    header = "|".join(f"{c}:{t}" for c, t in table.dtypes.items()).encode()
    return hashlib.sha256(header + hashed).hexdigest()[:16]


def fingerprints(replication: int = 0) -> dict[str, dict[str, str]]:
    """Each system's tables, hashed."""
    out = {}
    for name, overrides in SYSTEMS.items():
        params = load_config(overrides + RUN).params
        result = simulate(params, replication)
        out[name] = {"patients": _digest(result.patients),
                     "requests": _digest(result.service_waits),
                     "daily": _digest(result.daily), "metrics": _digest(result.metrics)}
        print(f"{name}: {len(result.patients)} patients", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--save", type=Path, help="write the hashes to this file")
    action.add_argument("--check", type=Path, help="compare with hashes saved in this file")
    args = parser.parse_args(argv)
    now = fingerprints()
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(now, indent=1))
        print(f"saved {args.save}")
        return 0
    before = json.loads(args.check.read_text())
    differ = [f"{system}.{table}" for system, tables in before.items()
              for table, digest in tables.items() if now.get(system, {}).get(table) != digest]
    if differ:
        print("different numbers: " + ", ".join(differ))
        return 1
    print(f"same numbers, bit for bit, on {len(before)} systems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
