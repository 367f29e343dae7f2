"""Parameter validation: a bad value is refused with the field, the value and what is allowed."""

import pytest

from sim import ParameterError, Params, override
from sim.core.params import Distribution, Run, Window


def test_defaults_are_valid_and_shares_sum_to_one():
    p = Params()
    assert sum(pathway.share for pathway in p.pathways.values()) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("path, value, field", [
    ("services.homecare.staff.count", -1, "services.homecare.staff.count"),
    ("acute.beds", 0, "acute.beds"),
    ("pathways.p0.share", 0.7,
     "pathways.p0.share + pathways.p1.share + pathways.p2.share + pathways.p3.share"),
    ("pathways.p1.service", "nowhere", "pathways.p1.service"),
    ("services.care_home.initial_utilisation", 1.5, "services.care_home.initial_utilisation"),
    ("services.step_down.then", {"home": 0.5, "homecare": 0.6}, "services.step_down.then"),
    ("services.step_down.then", {"home": 0.5, "step_down": 0.5}, "services.step_down.then"),
    ("services.care_home.capacity", None, "services.care_home.capacity"),
    ("run.warmup_days", 500.0, "run.warmup_days"),
    ("admissions.day_of_week", [1.0] * 6, "admissions.day_of_week"),
])
def test_out_of_range_values_are_refused(path, value, field):
    with pytest.raises(ParameterError) as error:
        override(Params(), {path: value})
    assert error.value.field_name == field
    assert "not allowed" in str(error.value)


@pytest.mark.parametrize("kwargs, field", [
    (dict(kind="weibull", mean=1.0), "kind"),
    (dict(kind="lognormal", mean=5.0, sd=0.0), "sd"),
    (dict(kind="gamma", mean=-1.0, sd=1.0), "mean"),
    (dict(kind="exponential", mean=2.0, sd=1.0), "sd"),
    (dict(kind="empirical"), "values"),
    (dict(kind="fixed", mean=1.0, values=[1.0]), "values"),
])
def test_impossible_distributions_are_refused(kwargs, field):
    with pytest.raises(ParameterError) as error:
        Distribution(**kwargs)
    assert error.value.field_name == field


def test_window_refuses_unknown_weekday_and_reversed_hours():
    with pytest.raises(ParameterError):
        Window(True, [7], 9, 17)
    with pytest.raises(ParameterError):
        Window(True, [0], 17, 9)


def test_override_refuses_unknown_names():
    with pytest.raises(ParameterError):
        override(Params(), {"services.homecare.carerz": 3})


def test_run_refuses_zero_replications():
    with pytest.raises(ParameterError):
        Run(replications=0)
