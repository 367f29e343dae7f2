"""Shared helpers: a small, fast version of the default system for tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim import Params, override


def small_params(**overrides: Any) -> Params:
    """The default system scaled to a fifth (admissions, beds and community capacity), run for
    200 days after a 28-day warm-up. Keyword names use ``__`` for dots:
    ``small_params(homecare__carers=10)``."""
    p = Params()
    scaled = {
        "run.days": 228.0, "run.warmup_days": 28.0,
        "admissions.per_day": p.admissions.per_day / 5,
        "acute.beds": p.acute.beds // 5,
        "assessment.staff": max(1, p.assessment.staff // 5),
        "homecare.carers": p.homecare.carers // 5,
        "homecare.community_referrals_per_day": p.homecare.community_referrals_per_day / 5,
        "step_down.beds": p.step_down.beds // 5,
        "step_down.community_referrals_per_day": p.step_down.community_referrals_per_day / 5,
        "care_home.beds": p.care_home.beds // 5,
        "care_home.community_referrals_per_day": p.care_home.community_referrals_per_day / 5,
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
