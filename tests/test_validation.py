"""Validation in CI: the model configured down to textbook queues (Erlang B and C), Little's law
in the full model, and the ciw simulator on a tandem network with blocking after service.

A case passes when the reference value lies inside the simulation's confidence interval (each
at the Bonferroni level that makes all cases hold together with 99% confidence); the interval
must also be narrow (half-width within 20% of the reference), so that a pass means
something.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import pytest

from sim.checks.validation import erlang_b, erlang_c, mmc_mean_wait, run_all

pytestmark = pytest.mark.slow
RELATIVE_HALF_WIDTH = 0.20


@pytest.fixture(scope="module")
def report():
    with ProcessPoolExecutor(2) as pool:
        return run_all(replications=20, workers=pool.map)


def test_erlang_formulas_match_published_values():
    # Monks et al. 2016: offered load 8.36, 10 beds -> about 1 in 7 delayed; 14 beds -> 1 in 45-50.
    assert 1 / erlang_b(10, 8.36) == pytest.approx(7.2, abs=0.3)
    assert 44 <= 1 / erlang_b(14, 8.36) <= 50  # 1 / 0.0224 = 44.6
    # M/M/1: P(wait) = rho and Wq = rho / (mu - lambda).
    assert erlang_c(1, 0.5) == pytest.approx(0.5)
    assert mmc_mean_wait(0.5, 1.0, 1) == pytest.approx(1.0)


def test_report_covers_every_kind_of_case(report):
    kinds = set(report["reference_kind"])
    assert {"analytic (Erlang C)", "analytic (Erlang B)", "lambda x W", "peer (ciw)"} <= kinds
    assert len(report) >= 19


def test_every_case_passes_with_a_narrow_interval(report):
    failures = report[~report["pass"]]
    assert failures.empty, "\n" + failures.to_string()
    wide = report[report["half_width"] > RELATIVE_HALF_WIDTH * report["reference"].abs()]
    assert wide.empty, "intervals too wide to mean anything:\n" + wide.to_string()


def test_report_chart_is_drawn_with_every_case(report, tmp_path):
    from sim.reporting.charts import validation
    path = tmp_path / "validation.png"
    validation(report, path)
    assert path.stat().st_size > 10_000
