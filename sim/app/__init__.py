"""The workshop app (:mod:`sim.app.workshop`, Streamlit) and the what-if engine it runs
(:mod:`sim.app.engine`, no user interface). Start it with ``python -m sim.app``."""
