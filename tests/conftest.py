"""Shared helpers: a small, fast version of the default system for tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim import Params, override


def small_params(**overrides: Any) -> Params:
    """The default system scaled to a fifth (admissions, beds and community capacity), run for
    200 days after a 28-day warm-up. Keyword names use ``__`` for dots:
    ``small_params(services__homecare__staff__count=10)``."""
    p = Params()
    scaled = {
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


def max_concurrent(start: np.ndarray, end: np.ndarray) -> int:
    """The largest number of intervals [start, end) open at once (NaN end = still open)."""
    keep = ~np.isnan(start)
    start, end = start[keep], end[keep]
    end = np.where(np.isnan(end), np.inf, end)
    times = np.concatenate([start, end])
    steps = np.concatenate([np.ones(start.size), -np.ones(end.size)])
    order = np.lexsort((steps, times))  # at equal times, departures (-1) before arrivals
    return int(np.cumsum(steps[order]).max(initial=0))


@pytest.fixture(scope="session")
def small_run():
    """One replication of the small system (shared by tests that only read it)."""
    from sim import simulate
    return simulate(small_params())
