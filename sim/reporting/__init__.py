"""Reporting: statistics across replications, analyses that return tables, the run summary,
and every chart (:mod:`sim.reporting.charts`, the only module that draws)."""
