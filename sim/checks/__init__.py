"""Checks of the model against known answers: queueing formulas, Little's law and a peer
simulator (ciw)."""
