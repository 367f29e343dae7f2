"""The Hydra layer: the config schema, the ``discharge-sim`` command, experiments and the sweep
callback. The only package that imports Hydra."""
