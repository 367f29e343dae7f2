"""Parameter validation: a bad value is refused with the field, the value and what is allowed."""

import pytest

from sim import ParameterError, Params, override
from sim.core.params import Distribution, Run, Window


def test_defaults_are_valid_and_shares_sum_to_one():
    p = Params()
    assert sum(p.pathways.shares) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("path, value, field", [
    ("homecare.carers", -1, "carers"),
    ("acute.beds", 0, "beds"),
    ("pathways.p0.share", 0.7, "p0.share+p1.share+p2.share+p3.share"),
    ("care_home.initial_utilisation", 1.5, "initial_utilisation"),
    ("step_down.onward", [0.5, 0.5, 0.5], "onward"),
    ("run.warmup_days", 500.0, "warmup_days"),
    ("admissions.day_of_week", [1.0] * 6, "day_of_week"),
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
        override(Params(), {"homecare.carerz": 3})


def test_run_refuses_zero_replications():
    with pytest.raises(ParameterError):
        Run(replications=0)
