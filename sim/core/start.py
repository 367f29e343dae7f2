"""Starting a run from today: a snapshot of who is in the hospital and the community services,
and dated changes of capacity during a run.

The core reads no files: :class:`Snapshot` is what a run needs, built by the running layer from
a trust's patient list or its discharge situation report (:mod:`sim.running.snapshot`), or from
a model's own state part-way through a run (a back-test). A run from a snapshot has no warm-up:
its clock starts at the snapshot's weekday (time 0 is a Monday 00:00), the patients are put in
their beds, the services hold their clients, and everything else begins as in any run. Every
draw a snapshot needs comes from streams of its own (named ``snapshot.*``), so a run without
one keeps its numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WAITING_FOR = ("", "assessment", "funding", "choice", "service", "equipment", "summary",
               "transfer")
"""What a medically fit patient may be waiting for ("": not known, the discharge starts from
its first step). From ``service`` on, the assessment, funding and choice are done; from
``equipment`` on, the service is arranged (its place is outside the model)."""

CHANGEABLE = ("acute.beds", "services.<name>.capacity", "services.<name>.staff.count")
"""The settings a dated change may set: capacities only."""


@dataclass(frozen=True)
class StartPatient:
    """A patient in an acute bed at the snapshot.

    ``days_in``: days since admission (NaN: not known, drawn from the stays of patients found
    in a bed at a random moment), or with ``days_in_to`` a band, drawn uniformly from
    ``days_in`` to ``days_in_to`` (infinite: an open band ``N+``, drawn as N plus an
    exponential of mean max(N/2, 3.5) days); ``fit_days``: days since medically fit (None: not
    fit yet; NaN: fit, not known since when: the days in less an acute stay shorter than them);
    ``pathway``: None if not known (drawn); ``waiting_for``: one of :data:`WAITING_FOR`."""

    days_in: float
    fit_days: float | None = None
    pathway: str | None = None
    waiting_for: str = ""
    days_in_to: float = math.nan
    complex: bool | None = None
    """Complex needs (homecare: a package needing two carers), if known (None: drawn)."""

    @property
    def fit(self) -> bool:
        return self.fit_days is not None


@dataclass(frozen=True)
class StartService:
    """A community service at the snapshot: clients in service (their remaining stays are
    drawn) and clients in the community waiting for it (hospital patients waiting are in the
    patient list)."""

    in_service: int = 0
    waiting: int = 0
    by_segment: dict[str, int] = field(default_factory=dict)
    """Of ``in_service``, how many with each segment of the service's market (care-home type,
    locality), if known: they are placed with that segment's providers (the rest anywhere)."""


@dataclass(frozen=True)
class Snapshot:
    """Who is where on the day a forecast starts. ``weekday``: 0 Monday .. 6 Sunday (the run's
    clock starts there); ``waiting_for_bed``: patients admitted and waiting for an acute bed
    (in the emergency department; drawn as new admissions); ``services`` not named start as
    in any run (``initial_utilisation``)."""

    weekday: int = 0
    patients: tuple[StartPatient, ...] = ()
    services: dict[str, StartService] = field(default_factory=dict)
    waiting_for_bed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"snapshot weekday: {self.weekday} is not allowed: 0 (Monday) to 6")


@dataclass(frozen=True)
class Change:
    """A capacity set on a day of the run: ``setting`` (one of :data:`CHANGEABLE`) becomes
    ``value`` at ``day`` days after the run's start (the forecast's day 0)."""

    day: float
    setting: str
    value: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.day) and self.day >= 0):
            raise ValueError(f"change day: {self.day} is not allowed: a number of days >= 0")
        if not (math.isfinite(self.value) and self.value >= 0):
            raise ValueError(f"change {self.setting}: {self.value} is not allowed: a number >= 0")


def check_change(change: Change, services: dict) -> None:
    """Refuse (one line) a change of anything but a capacity the model can change."""
    parts = change.setting.split(".")
    allowed = ("allowed: " + ", ".join(CHANGEABLE) + " with <name> one of "
               + ", ".join(services))
    if change.setting == "acute.beds":
        return
    if len(parts) in (3, 4) and parts[0] == "services" and parts[1] in services:
        service = services[parts[1]]
        if parts[2:] == ["capacity"] and service.staff is None:
            return
        if parts[2:] == ["staff", "count"] and service.staff is not None:
            return
    raise ValueError(f"change {change.setting}: cannot be changed during a run; {allowed} "
                     "(capacity for a service sized in places, staff.count for one sized in "
                     "staff)")
