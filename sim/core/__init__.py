"""The model core: parameters, the patient-flow model, capacity pools, timetables, random
streams and the metrics of one run.

It imports neither Hydra nor matplotlib and writes no files: it takes a
:class:`~sim.core.params.Params` and a replication number and returns a
:class:`~sim.core.model.RunResult`. Everything in this package determines a replication's
numbers, so the replication store fingerprints its whole source (:mod:`sim.running.store`).
"""
