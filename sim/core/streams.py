"""Random streams and samplers: one generator per random process, drawn in batches.

Replication ``k`` of a run with root seed ``s`` uses ``SeedSequence(s).spawn(k + 1)[k]``, and
inside it one child stream per purpose, in the fixed order of :data:`STREAMS`. So replication
``k`` of every scenario draws the same arrivals, the same lengths of stay and the same pathway
choices for the same purpose (common random numbers), whatever the capacities; and a
replication does not depend on how many others run or in which process.
"""

from __future__ import annotations

import math
import zlib
from typing import Callable

import numpy as np

from sim.core.params import Distribution

STREAMS: tuple[str, ...] = (
    "admissions",
    "pathway",
    "acute_stay_p0", "acute_stay_p1", "acute_stay_p2", "acute_stay_p3",
    "transfer_p0", "transfer_p1", "transfer_p2", "transfer_p3",
    "assessment",
    "homecare_amount", "homecare_stay",
    "step_down_stay", "step_down_then",
    "care_home_stay",
    "homecare_referrals", "homecare_referral_amount", "homecare_referral_stay",
    "step_down_referrals", "step_down_referral_stay",
    "care_home_referrals", "care_home_referral_stay",
    "initial_homecare", "initial_step_down", "initial_care_home",
    # The harm of waiting (drawn only when its mechanism is on): each patient's clocks.
    "harm_death", "harm_escalation", "harm_unwell", "harm_unwell_duration", "harm_readmission",
)
"""Stream names, in spawn order. Append new names at the end so old streams keep their seeds.
A name not in this list (a service or pathway added in config) gets a stream of its own too,
derived from the name (:class:`Streams`)."""

BATCH = 512


class Streams(dict):
    """The named generators of one replication: those of :data:`STREAMS` by spawn order, and
    any other name's own generator, derived from a checksum of the name (stable across runs and
    machines, and never one of the spawned children)."""

    def __init__(self, root: np.random.SeedSequence) -> None:
        super().__init__((name, np.random.Generator(np.random.PCG64(child)))
                         for name, child in zip(STREAMS, root.spawn(len(STREAMS))))
        self._root = root

    def __missing__(self, name: str) -> np.random.Generator:
        key = self._root.spawn_key + (1 << 32 | zlib.crc32(name.encode()),)
        generator = np.random.Generator(np.random.PCG64(
            np.random.SeedSequence(self._root.entropy, spawn_key=key)))
        self[name] = generator
        return generator


def replication_streams(seed: int, replication: int) -> Streams:
    """The named generators of one replication."""
    return Streams(np.random.SeedSequence(seed).spawn(replication + 1)[replication])


def draw_one(dist: Distribution, rng: np.random.Generator) -> float:
    """One draw of ``dist`` from ``rng`` (for draws too few to batch); a fixed value takes no
    random number."""
    return float(dist.mean) if dist.kind == "fixed" else float(batch_draw(dist, rng, 1)[0])


def batch_draw(dist: Distribution, rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` draws of ``dist`` from ``rng``."""
    if dist.kind == "fixed":
        return np.full(size, dist.mean)
    if dist.kind == "exponential":
        return rng.exponential(dist.mean, size)
    if dist.kind == "lognormal":
        sigma2 = math.log1p((dist.sd / dist.mean) ** 2)
        return rng.lognormal(math.log(dist.mean) - sigma2 / 2.0, math.sqrt(sigma2), size)
    if dist.kind == "gamma":
        shape = (dist.mean / dist.sd) ** 2
        return rng.gamma(shape, dist.sd ** 2 / dist.mean, size)
    if dist.kind == "empirical":
        return rng.choice(np.asarray(dist.values, dtype=float), size)
    raise ValueError(f"unknown distribution kind {dist.kind!r}")


def length_biased_draw(dist: Distribution, rng: np.random.Generator) -> float:
    """One draw of ``dist`` weighted by its own size: the stay of someone found in service at a
    random moment (exact for every kind: a lognormal's mu rises by sigma^2, a gamma's shape by
    one, an exponential becomes a gamma of shape 2, an empirical list is weighted by value)."""
    if dist.kind == "fixed":
        return float(dist.mean)
    if dist.kind == "exponential":
        return float(rng.gamma(2.0, dist.mean))
    if dist.kind == "lognormal":
        sigma2 = math.log1p((dist.sd / dist.mean) ** 2)
        mu = math.log(dist.mean) - sigma2 / 2.0
        return float(rng.lognormal(mu + sigma2, math.sqrt(sigma2)))
    if dist.kind == "gamma":
        shape = (dist.mean / dist.sd) ** 2
        return float(rng.gamma(shape + 1.0, dist.sd ** 2 / dist.mean))
    values = np.asarray(dist.values, dtype=float)
    if values.sum() <= 0:
        return 0.0
    return float(rng.choice(values, p=values / values.sum()))


def sampler(dist: Distribution, rng: np.random.Generator) -> Callable[[], float]:
    """A function returning one draw of ``dist`` per call, drawn from ``rng`` in batches."""
    if dist.kind == "fixed":
        value = float(dist.mean)
        return lambda: value
    buffer: list[float] = []

    def draw() -> float:
        if not buffer:
            buffer.extend(batch_draw(dist, rng, BATCH)[::-1].tolist())
        return buffer.pop()

    return draw


def choice_sampler(shares: list[float], rng: np.random.Generator) -> Callable[[], int]:
    """A function returning an index drawn with probabilities ``shares``, in batches."""
    cumulative = np.cumsum(shares)
    cumulative[-1] = 1.0
    buffer: list[int] = []

    def draw() -> int:
        if not buffer:
            u = rng.random(BATCH)
            idx = np.searchsorted(cumulative, u, side="right")
            buffer.extend(np.minimum(idx, len(shares) - 1)[::-1].tolist())
        return buffer.pop()

    return draw


def uniform_sampler(rng: np.random.Generator) -> Callable[[], float]:
    """A function returning one uniform draw in [0, 1) per call, drawn in batches."""
    buffer: list[float] = []

    def draw() -> float:
        if not buffer:
            buffer.extend(rng.random(BATCH)[::-1].tolist())
        return buffer.pop()

    return draw
