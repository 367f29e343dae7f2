"""Delayed hospital discharge: a discrete-event simulation of older patients' flow from acute
beds to home, homecare, step-down beds and care homes.

    from sim import Params, simulate
    result = simulate(Params())
    print(result.metrics)
"""

from sim.core.model import RunResult, simulate
from sim.core.params import ParameterError, Params, override

__all__ = ["Params", "ParameterError", "RunResult", "override", "simulate"]
