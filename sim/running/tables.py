"""Tables for people: Markdown with numbers formatted to be read, written beside their CSV.

A table with a ``ci_at_bound`` column (the analyses' levels, :mod:`sim.running.stats`) shows
it as the run summary does: a † after an interval cut at a bound of its quantity, and a note
under the table saying why; the CSV keeps the column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sim.running.files import write_atomic, write_csv

AT_BOUND = "†"
"""Marks an interval cut at a bound of its quantity (as in the run summary)."""

BOUND_NOTE = (f"{AT_BOUND} The 95% interval would reach past the smallest or largest value the "
              "quantity can take (0, or 100% for a share), so it is cut there: too few "
              "replications for a useful interval of this quantity; run more "
              "(`run.replications`).")


def markdown(table: pd.DataFrame) -> str:
    """A table as Markdown: three significant figures below 100 (1.38, 0.924), one decimal
    with thousands separators above (2,071.1), '-' for a missing value; an interval cut at
    its bound (``ci_at_bound``) marked after its ``ci_high``."""
    cut = _cut_rows(table)
    shown = table.drop(columns=["ci_at_bound"], errors="ignore")
    header = "| " + " | ".join(map(str, shown.columns)) + " |"
    rule = "|" + "---|" * len(shown.columns)
    marked = list(shown.columns).index("ci_high") if "ci_high" in shown.columns else None
    body = ["| " + " | ".join(_text(v) + (AT_BOUND if at_bound and i == marked else "")
                              for i, v in enumerate(row)) + " |"
            for row, at_bound in zip(shown.itertuples(index=False), cut)]
    return "\n".join([header, rule, *body]) + "\n"


def _cut_rows(table: pd.DataFrame) -> list[bool]:
    if "ci_at_bound" not in table.columns:
        return [False] * len(table)
    return [bool(v) for v in table["ci_at_bound"].fillna(False)]


def _text(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return "-" if np.isnan(value) else f"{value:.3g}" if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


def write_table(table: pd.DataFrame, folder: Path, name: str, note: str,
                data: pd.DataFrame | None = None) -> None:
    """``name.csv`` and ``name.md`` (the note, then the table in Markdown, then the note on
    intervals cut at a bound if any was) in ``folder``; ``data``: the CSV's numbers, when the
    table shown is them in words."""
    write_csv(table if data is None else data, Path(folder) / f"{name}.csv")
    text = note + "\n\n" + markdown(table)
    if any(_cut_rows(table)):
        text += "\n" + BOUND_NOTE + "\n"
    write_atomic(Path(folder) / f"{name}.md", lambda p: p.write_text(text))
