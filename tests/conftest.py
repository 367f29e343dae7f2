"""Shared helpers: a small, fast version of the default system for tests, and the command
line run as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim import Params, override

EXE = Path(sys.executable).parent / "discharge-sim"
"""This environment's ``discharge-sim`` command."""


def discharge_sim(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``discharge-sim ARGS`` run in ``cwd``, its output captured."""
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def small_params(**overrides: Any) -> Params:
    """The default system scaled to a fifth (admissions, beds and community capacity, and a
    third of the providers of each market, so that each keeps some size), run for 200 days
    after a 28-day warm-up. Keyword names use ``__`` for dots:
    ``small_params(services__homecare__staff__count=10)``."""
    p = Params()
    markets = {f"services.{name}.market.segments": [
        replace(g, providers=max(1, g.providers // 3)) for g in s.market.segments]
        for name, s in p.services.items() if s.market.enabled}
    scaled = {**markets,
        "run.days": 228.0, "run.warmup_days": 28.0,
        "admissions.per_day": p.admissions.per_day / 5,
        "acute.beds": p.acute.beds // 5,
        "assessment.staff": max(1, p.assessment.staff // 5),
        "services.homecare.staff.count": p.services["homecare"].staff.count // 5,
        "services.step_down.capacity": p.services["step_down"].capacity // 5,
        "services.care_home.capacity": p.services["care_home"].capacity // 5,
        **{f"services.{name}.community_referrals_per_day": s.community_referrals_per_day / 5
           for name, s in p.services.items()},
    }
    scaled.update({k.replace("__", "."): v for k, v in overrides.items()})
    return override(p, scaled)


def max_concurrent(start: np.ndarray, end: np.ndarray,
                   amount: np.ndarray | None = None) -> float:
    """The largest number of intervals [start, end) open at once (NaN end = still open), or,
    with ``amount``, the largest sum of their amounts."""
    keep = ~np.isnan(start)
    amount = np.ones(start.size) if amount is None else np.asarray(amount, dtype=float)
    start, end, amount = start[keep], end[keep], amount[keep]
    end = np.where(np.isnan(end), np.inf, end)
    times = np.concatenate([start, end])
    steps = np.concatenate([amount, -amount])
    order = np.lexsort((steps, times))  # at equal times, departures (-) before arrivals
    peak = float(np.cumsum(steps[order]).max(initial=0))
    return int(round(peak)) if np.all(amount == 1) else peak


def provider_peaks(waits) -> dict[tuple[str, str, int], float]:
    """From the request log alone: the most each provider of each market held at once, by
    (service, segment, provider)."""
    held = waits[waits["granted"].notna() & (waits["provider"] >= 0)]
    return {key: max_concurrent(g["granted"].to_numpy(float), g["released"].to_numpy(float),
                                g["amount"].to_numpy(float))
            for key, g in held.groupby(["service", "segment", "provider"])}


@pytest.fixture(scope="session")
def small_run():
    """One replication of the small system (shared by tests that only read it)."""
    from sim import simulate
    return simulate(small_params())
