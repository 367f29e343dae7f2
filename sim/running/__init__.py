"""Running the model: replications in parallel processes, the on-disk replication store that
keeps every finished replication, sweeps collected into one table, safe file writing and the
provenance record. Knows nothing of Hydra."""
