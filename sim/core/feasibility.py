"""Systems that cannot work, and runs that cannot fit: refused before any replication runs.

Two kinds of settings give no answer however long they run:

- a system that jams by construction: patients on a pathway that needs the discharge team
  while it has no staff, or a community service with no capacity, or one whose clients can
  need more of it than it has in all (a homecare package larger than every carer-hour). Such a
  patient keeps the acute bed for ever, and so does everyone behind them in the queue;
- a run too big for the machine: the model keeps every patient's log for the metrics, so its
  memory grows with the number of patients. The number is estimated from the settings, and a run
  that would not fit in the memory available is refused with the estimate and what to change.

:func:`check_feasible` raises :class:`~sim.core.params.ParameterError` (one line, naming the
setting); the runner calls it before the first replication.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from sim.core.market import provider_sizes
from sim.core.params import Distribution, ParameterError, Params, Service

# Memory of one replication, from the peak RSS of one process running the default system
# (Python 3.11, 2026-11: 154 MiB for 24k patients, 229 MiB for 75k, 487 MiB for 250k patients
# and 157k requests, 591 MiB for 239k patients most of whom waited for a bed): about 150 MiB for
# the interpreter, the libraries and the model, up to 2 KiB per hospital patient (the Patient
# record, its process while in hospital, its row of the patient table built at the end) and
# 0.5 KiB per request for a community service; the midnight counts take about 150 bytes a day.
BASE_BYTES = 150 * 2**20
PATIENT_BYTES = 2048
REQUEST_BYTES = 512
DAY_BYTES = 150
TABLE_BYTES_PER_PATIENT = 256
"""A finished replication's patient table, held by the parent process when no store keeps it."""

JAM_TOLERANCE = 0.01
"""A run is refused when it would meet, on average, this many requests that can never be
granted (larger than all of a service's capacity): about one run in a hundred would jam."""

MARKET_JAM_TOLERANCE = 0.1
"""The same for a market's client too big for every provider of its segment: such a client
holds only its own bed (the others are placed around it), so a run is refused when it would
meet this many on average: about one run in ten would hold one such patient."""


@dataclass(frozen=True)
class RunEstimate:
    """What one replication is expected to hold: hospital patients, requests for community
    services, and the memory of a process that runs it."""

    patients: float
    requests: float
    bytes_per_replication: float
    available_bytes: float | None


def check_feasible(params: Params, workers: int = 1, replications_held: int = 0) -> RunEstimate:
    """Refuse (:class:`ParameterError`) a system that cannot work by construction, or a run
    that would not fit in memory with ``workers`` replications at once (and, in the parent
    process, the patient tables of ``replications_held`` replications); else the estimate."""
    _check_staffed(params)
    requests = _service_requests(params)
    for name, service in params.services.items():
        if _needed_by_hospital(params, name):
            _check_capacity(name, service, requests[name])
            _check_market(name, service, requests[name])
    return _check_memory(params, requests, max(1, workers), replications_held)


def expected_patients(params: Params) -> float:
    """The expected number of hospital admissions over the whole run (warm-up included)."""
    a = params.admissions
    winter = max(0, a.winter_end - a.winter_start) / 365.0
    return a.per_day * params.run.days * (1.0 + (a.winter_multiplier - 1.0) * winter)


def _share_needing(params: Params, service: str) -> float:
    return sum(p.share for p in params.pathways.values() if p.service == service)


def _check_staffed(params: Params) -> None:
    """The discharge team must exist if patients wait in hospital for its assessment."""
    assessment = params.assessment
    if assessment.staff > 0 or not assessment.in_hospital:
        return
    waiting = [k for k, p in params.pathways.items() if p.needs_assessment and p.share > 0]
    if waiting:
        raise ParameterError(
            "assessment.staff", assessment.staff,
            f"at least 1 while patients of {', '.join('pathways.' + k for k in waiting)} wait in "
            "hospital for an assessment (nobody would ever be assessed, so none of them would "
            "leave); or set assessment.in_hospital=false, or those pathways' shares to 0")


def _service_requests(params: Params) -> dict[str, float]:
    """The expected number of requests for each community service over the run: from hospital
    patients, from another service's clients moving on, from the community, and the clients
    it starts with."""
    patients = expected_patients(params)
    days = params.run.days
    direct = {name: patients * _share_needing(params, name) for name in params.services}
    requests = dict(direct)
    for name, service in params.services.items():
        for onward, share in service.then.items():
            if onward in requests:
                requests[onward] += direct[name] * share
    for name, service in params.services.items():
        requests[name] += service.community_referrals_per_day * days
        amount = _mean(service.amount)
        if amount > 0:
            requests[name] += service.size * service.initial_utilisation / amount
    return requests


def _needed_by_hospital(params: Params, name: str) -> bool:
    """Whether hospital patients (directly, or through another service's ``then``) wait for
    ``name`` in an acute or step-down bed."""
    if _share_needing(params, name) > 0:
        return True
    return any(share > 0 and _share_needing(params, other) > 0
               for other, s in params.services.items() for onward, share in s.then.items()
               if onward == name)


def _capacity_setting(name: str, service: Service) -> tuple[str, float]:
    """The setting that sizes a service, and its value."""
    if service.staff is None:
        return f"services.{name}.capacity", float(service.capacity or 0.0)
    if service.staff.hours_each == 0 and service.staff.count > 0:
        return f"services.{name}.staff.hours_each", service.staff.hours_each
    return f"services.{name}.staff.count", service.staff.count


def _check_capacity(name: str, service: Service, requests: float) -> None:
    """A service patients wait for in a bed must have room for every request it can get."""
    params_name = f"services.{name}"
    setting, value = _capacity_setting(name, service)
    size = service.size
    if size <= 0:
        raise ParameterError(
            setting, value,
            f"more than 0 while patients need {params_name} (about {requests:,.0f} requests in "
            "the run): with no capacity none of them would ever leave hospital; give it "
            "capacity, or set the shares of the pathways that need it to 0")
    too_big = _share_above(service.amount, size) * requests
    if size > 0 and too_big >= JAM_TOLERANCE:
        raise ParameterError(
            f"{params_name}.amount", _describe(service.amount),
            f"amounts that fit in the service's whole capacity ({size:g} {service.unit}, "
            f"{setting}): about {too_big:,.2g} of the run's {requests:,.0f} requests would be "
            "larger, and each would wait for ever, with everyone queueing behind it; give the "
            "service more capacity or its clients smaller amounts")


def _check_market(name: str, service: Service, requests: float) -> None:
    """In a market a client waits for one provider of its segment with room: a segment some
    clients need must have capacity, and its largest provider must fit their amounts (twice
    the hours, say, for complex needs)."""
    settings = service.market
    if not settings.enabled:
        return
    capacities, _ = provider_sizes(service)
    complex_share, amount = settings.complex_share, service.amount
    for g, (segment, sizes) in enumerate(zip(settings.segments, capacities)):
        if segment.demand <= 0:
            continue
        field = f"services.{name}.market.segments[{g}]"
        largest = max(sizes)
        clients = requests * segment.demand
        if largest <= 0:
            raise ParameterError(
                f"{field}.capacity", segment.capacity,
                f"more than 0 while {segment.demand:.0%} of the clients of services.{name} "
                f"need segment '{segment.name}' (about {clients:,.0f} requests in the run): none "
                "of them would ever be placed; give it a share of the capacity, or its demand 0")
        plain = (1.0 - complex_share) * _share_above(amount, largest) * clients
        complex_ = (complex_share * _share_above(amount, largest / settings.complex_amount)
                    * clients)
        if plain + complex_ < MARKET_JAM_TOLERANCE:
            continue
        setting, value = ((f"{field}.providers", segment.providers)
                          if plain >= MARKET_JAM_TOLERANCE
                          else (f"services.{name}.market.complex_amount", settings.complex_amount))
        raise ParameterError(
            setting, value,
            f"providers that can take a client's amount: the largest provider of segment "
            f"'{segment.name}' has {largest:g} {service.unit}, and about {plain + complex_:,.2g} "
            f"of the run's {requests:,.0f} requests (complex needs taking "
            f"{settings.complex_amount:g} x services.{name}.amount) would need more and wait for "
            "ever; give the segment fewer, larger providers or more capacity, or its clients "
            "smaller amounts")


def _describe(dist: Distribution) -> str:
    if dist.kind == "empirical":
        return f"empirical {list(dist.values)}"
    spread = f", sd {dist.sd:g}" if dist.kind in ("lognormal", "gamma") else ""
    return f"{dist.kind} mean {dist.mean:g}{spread}"


def _mean(dist: Distribution) -> float:
    if dist.kind == "empirical":
        return sum(dist.values) / len(dist.values)
    return dist.mean


def _share_above(dist: Distribution, limit: float) -> float:
    """P(a draw of ``dist`` > ``limit``)."""
    if dist.kind == "fixed":
        return float(dist.mean > limit + 1e-9)
    if dist.kind == "empirical":
        return sum(v > limit + 1e-9 for v in dist.values) / len(dist.values)
    if limit <= 0:
        return 1.0
    if dist.kind == "exponential":
        return math.exp(-limit / dist.mean)
    if dist.kind == "lognormal":
        sigma2 = math.log1p((dist.sd / dist.mean) ** 2)
        mu = math.log(dist.mean) - sigma2 / 2.0
        return 0.5 * math.erfc((math.log(limit) - mu) / math.sqrt(2.0 * sigma2))
    if dist.kind == "gamma":
        from scipy.special import gammaincc
        shape = (dist.mean / dist.sd) ** 2
        return float(gammaincc(shape, limit * dist.mean / dist.sd ** 2))
    raise ValueError(f"unknown distribution kind {dist.kind!r}")


def _check_memory(params: Params, requests: dict[str, float], workers: int,
                  replications_held: int) -> RunEstimate:
    patients = expected_patients(params)
    total_requests = sum(requests.values())
    per_replication = (BASE_BYTES + patients * PATIENT_BYTES + total_requests * REQUEST_BYTES
                       + params.run.days * DAY_BYTES)
    available = available_memory()
    estimate = RunEstimate(patients, total_requests, per_replication, available)
    needed = (workers * per_replication + (BASE_BYTES if workers > 1 else 0)  # the parent
              + replications_held * patients * TABLE_BYTES_PER_PATIENT)
    if available is None or needed <= available:
        return estimate
    # Name the setting that makes the run big: a long run, or the busiest source of patients.
    sources = {"admissions.per_day": (params.admissions.per_day, patients)}
    for name, service in params.services.items():
        sources[f"services.{name}.community_referrals_per_day"] = (
            service.community_referrals_per_day, service.community_referrals_per_day
            * params.run.days)
    biggest = max(sources, key=lambda key: sources[key][1])
    if params.run.days > type(params.run)().days:
        setting, value = "run.days", params.run.days
    else:
        setting, value = biggest, sources[biggest][0]
    at_once = f" for each of {workers} replications run at once" if workers > 1 else ""
    fewer = "; or run fewer replications at once (output.workers=1)" if workers > 1 else ""
    if math.isfinite(needed):
        # Memory grows about in proportion to the setting: what would fit.
        fits = f"at most about {value * available / needed:,.3g}"
    else:
        fits = "far smaller"
    raise ParameterError(
        setting, value,
        f"a run that fits in memory: one replication would hold about {_count(patients)} "
        f"patients and {_count(total_requests)} requests for community services, about "
        f"{_size(per_replication)}{at_once}, more than the {_size(available)} of memory "
        f"available; make {setting} {fits}{fewer}")


def _count(n: float) -> str:
    return f"{n:,.3g}" if math.isfinite(n) else "countless"


def _size(n: float) -> str:
    if not math.isfinite(n):
        return "unbounded memory"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.1f} {unit}" if unit != "bytes" else f"{n:,.0f} bytes"
        n /= 1024
    raise AssertionError


def available_memory() -> float | None:
    """Memory this process can use (bytes): the system's available memory, or the container's
    (cgroup) limit if lower; None where neither can be read."""
    found: list[float] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(float(line.split()[1]) * 1024)
    except OSError:
        pass
    for limit, usage in (("memory.max", "memory.current"),  # cgroup v2, then v1
                         ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            text = Path("/sys/fs/cgroup", limit).read_text().strip()
            used = Path("/sys/fs/cgroup", usage).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and float(text) < 2**60 and used.isdigit():
            found.append(max(0.0, float(text) - float(used)))
    if not found:
        try:
            found.append(float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")))
        except (OSError, ValueError, AttributeError):
            return None
    return min(found)
