"""The patient: attributes drawn on arrival, and the times at which the patient moved on.

Every random attribute (pathway, lengths of stay, package size, onward destination) is drawn
when the patient arrives, each from its own stream, so that a change of capacity does not shift
the random numbers a later patient gets: scenarios compare on common random numbers.

The times after ``fit`` split the delay into its causes, in the order they happen:
``fit -> assessed`` (assessment), ``assessed -> ready`` (waiting for a homecare package or a
step-down / care-home bed), ``ready -> transferred`` (transfer: medicines, transport,
paperwork), ``transferred -> left`` (the weekend / hours rule).
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
    pathway: int
    acute_stay: float
    transfer: float
    assessment: float = 0.0
    package_hours: float = 0.0
    package_days: float = 0.0
    step_down_stay: float = 0.0
    onward: int = 0  # after step-down: 0 home, 1 homecare, 2 care home
    care_home_stay: float = 0.0
    bed: float = NAN
    fit: float = NAN
    assessed: float = NAN
    ready: float = NAN
    transferred: float = NAN
    left: float = NAN
    diverted: bool = False
