"""The patient: attributes drawn on arrival, and the times at which the patient moved on.

Every random attribute (pathway, lengths of stay, the service needed and how much of it, where
the patient goes after a step-down stay) is drawn when the patient arrives, each from its own
stream, so that a change of capacity does not shift the random numbers a later patient gets:
scenarios compare on common random numbers.

The times after ``fit`` split the delay into its causes, in the order they happen:
``fit -> assessed`` (assessment), ``assessed -> ready`` (waiting for the pathway's community
service: a homecare package, a step-down bed, a care-home place), ``ready -> transferred``
(transfer: medicines, transport, paperwork), ``transferred -> left`` (the weekend / hours rule).
"""

from __future__ import annotations

from dataclasses import dataclass

NAN = float("nan")

PHASES = ("fit", "assessed", "ready", "transferred", "left")
"""The times that bound the delay phases, in order."""


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
    bed: float = NAN
    fit: float = NAN
    assessed: float = NAN
    ready: float = NAN
    transferred: float = NAN
    left: float = NAN
    diverted: bool = False
    # The harm of waiting (sim.core.params.Harm); NaN / "" / -1 when it did not happen.
    died: float = NAN
    """When the patient died in hospital (``left`` stays NaN: a death is not a discharge)."""
    escalated: float = NAN
    """When the patient's need escalated; the pathway and service columns are then the new
    ones, ``escalated_from`` and ``first_service`` the old, and ``first_assessed``,
    ``first_ready``, ``first_transferred`` the phase ends reached on the old pathway."""
    escalated_from: str = ""
    first_service: str = ""
    first_assessed: float = NAN
    first_ready: float = NAN
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


@dataclass(slots=True)
class Request:
    """One request for a community service: who asked (``source``: hospital, a service's name
    for an onward move, community, initial), how much, and when it was requested, granted and
    released (NaN: not yet); ``stay`` is the planned use once granted (days)."""

    service: str
    source: str
    amount: float
    requested: float
    granted: float = NAN
    released: float = NAN
    stay: float = NAN
    cancelled: float = NAN
    """When the request was withdrawn before it was granted (the patient died or escalated)."""
