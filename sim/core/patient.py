"""The patient: attributes drawn on arrival, and the times at which the patient moved on.

Every random attribute (pathway, lengths of stay, the service needed and how much of it, where
the patient goes after a step-down stay) is drawn when the patient arrives, each from its own
stream, so that a change of capacity does not shift the random numbers a later patient gets:
scenarios compare on common random numbers.

The times after ``fit`` split the delay into its causes, in the order they happen (see
:data:`CAUSE_OF_PHASE`): the discharge team's assessment, the council's funding decision, the
patient's and family's choice, the wait for the pathway's community service (a homecare
package, a step-down bed, a care-home place), equipment and home adaptations, the medical
decision and discharge summary, the transfer (transport and hand-over), and the receiving
service's days and hours (the rule). A step with nothing to do ends when the one before it does.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

NAN = float("nan")

PHASES = ("fit", "assessed", "funded", "chosen", "ready", "equipped", "summarised",
          "transferred", "left")
"""The times that bound the delay phases, in order."""

SERVICE = "service"
"""In :data:`CAUSE_OF_PHASE`: the wait for the community service the pathway needs (the cause
is then named after that service)."""

CAUSE_OF_PHASE = {"assessed": "assessment", "funded": "funding", "chosen": "choice",
                  "ready": SERVICE, "equipped": "equipment", "summarised": "summary",
                  "transferred": "transfer", "left": "rule"}
"""The cause of the days that end at each phase time (from the phase time before it)."""


@dataclass(slots=True)
class Patient:
    id: int
    arrival: float
    pathway: str
    acute_stay: float
    transfer: float
    assessment: float = 0.0
    service: str = ""
    """The community service the pathway needs ("" for none), how much of it (``amount``, in
    the service's unit) and for how long (``stay``, days)."""
    amount: float = 0.0
    stay: float = 0.0
    onward: str = ""
    """Where the patient goes when the service's stay ends: another service ("" for home)."""
    onward_amount: float = 0.0
    onward_stay: float = 0.0
    summary: float = 0.0
    """Work on the medical decision and discharge summary (days of the ward's hours)."""
    funding: float = NAN
    """Preparation of a council funding decision (days of social workers' hours; NaN: none)."""
    choice: float = 0.0
    """Days the patient and family take to choose (a care home)."""
    equipment: float = NAN
    """Days from the assessment until equipment is delivered (NaN: none needed)."""
    segment: str = ""
    """The part of the service's market the patient needs (a kind of place, a locality)."""
    complex: bool = False
    """Complex needs (for homecare: a package that needs two carers at once)."""
    placement: Any = None
    onward_placement: Any = None
    """What the patient brings to the service's market, and the onward one's (not logged)."""
    bed: float = NAN
    fit: float = NAN
    assessed: float = NAN
    funded: float = NAN
    chosen: float = NAN
    ready: float = NAN
    equipped: float = NAN
    summarised: float = NAN
    transferred: float = NAN
    left: float = NAN
    rounds: int = 0
    """Rounds of offers to providers until the service was placed (0: no market)."""
    diverted: bool = False
    # The harm of waiting (sim.core.params.Harm); NaN / "" / -1 when it did not happen.
    died: float = NAN
    """When the patient died in hospital (``left`` stays NaN: a death is not a discharge)."""
    escalated: float = NAN
    """When the patient's need escalated; the pathway and service columns are then the new
    ones, ``escalated_from`` and ``first_service`` the old, and ``first_assessed`` ...
    ``first_transferred`` the phase ends reached on the old pathway."""
    escalated_from: str = ""
    first_service: str = ""
    first_assessed: float = NAN
    first_funded: float = NAN
    first_chosen: float = NAN
    first_ready: float = NAN
    first_equipped: float = NAN
    first_summarised: float = NAN
    first_transferred: float = NAN
    unfit_again: float = NAN
    """When the patient became medically unfit again, until ``unfit_again_end``."""
    unfit_again_end: float = NAN
    readmission_of: int = -1
    """The id of the patient whose discharge this admission is a readmission of."""
    incomplete_discharge: bool = False
    """Discharged without medicines or a discharge summary (drawn when readmission is on)."""


@dataclass(slots=True)
class Needs:
    """What a patient on ``pathway`` needs once medically fit: drawn on arrival, for the
    pathway and, when escalation is on, for the pathway the need may escalate to."""

    pathway: str
    transfer: float
    assessment: float = 0.0
    service: str = ""
    amount: float = 0.0
    stay: float = 0.0
    onward: str = ""
    onward_amount: float = 0.0
    onward_stay: float = 0.0
    summary: float = 0.0
    funding: float = NAN
    choice: float = 0.0
    equipment: float = NAN
    segment: str = ""
    complex: bool = False
    placement: Any = None
    onward_placement: Any = None


@dataclass(slots=True)
class HarmDraws:
    """A patient's harm clocks, drawn on arrival (infinite: the mechanism is off). ``death``,
    ``escalation`` and ``unwell`` are unit exponentials (the cumulative hazard at which the event
    happens); ``readmission`` three uniforms (incomplete discharge, readmitted, when)."""

    death: float = float("inf")
    escalation: float = float("inf")
    escalated: Needs | None = None
    unwell: float = float("inf")
    unwell_days: float = 0.0
    readmission: tuple[float, float, float] = (1.0, 1.0, 0.0)


@dataclass(slots=True, eq=False)  # hashed by identity: markets keep sets of requests
class Request:
    """One request for a community service: who asked (``source``: hospital, a service's name
    for an onward move, community, initial), how much, and when it was requested, granted and
    released (NaN: not yet); ``stay`` is the planned use once granted (days)."""

    service: str
    source: str
    amount: float
    requested: float
    patient: int = -1
    """The patient's id (-1: a client referred from the community or in service at the start)."""
    granted: float = NAN
    released: float = NAN
    stay: float = NAN
    cancelled: float = NAN
    """When the request was withdrawn before it was granted (the patient died or escalated)."""
    segment: str = ""
    provider: int = -1
    """Where a market placed it: the segment and the provider's index in it (-1: no market)."""
    rounds: int = 0
    """Rounds of offers to providers made for it (0: no market)."""
    placement: Any = None
    """What the client brings to the service's market (not logged)."""
    ends: float = NAN
    """When its use is due to end, once it has begun (not logged)."""
    moved_to: Any = None
    """The request that replaced it when its provider handed it back or closed (not logged)."""


NOT_LOGGED = ("placement", "onward_placement", "ends", "moved_to")
"""Fields of the records that hold objects, not values: left out of the tables."""


def logged(record: type) -> list[str]:
    """The fields of a record class that its table has as columns."""
    return [f.name for f in fields(record) if f.name not in NOT_LOGGED]
