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
