"""Tables for people: Markdown with numbers formatted to be read, written beside their CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sim.running.files import write_atomic, write_csv


def markdown(table: pd.DataFrame) -> str:
    """A table as Markdown: three significant figures below 100 (1.38, 0.924), one decimal
    with thousands separators above (2,071.1), '-' for a missing value."""
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "---|" * len(table.columns)
    body = ["| " + " | ".join(_text(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def _text(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return "-" if np.isnan(value) else f"{value:.3g}" if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


def write_table(table: pd.DataFrame, folder: Path, name: str, note: str) -> None:
    """``name.csv`` and ``name.md`` (the note, then the table in Markdown) in ``folder``."""
    write_csv(table, Path(folder) / f"{name}.csv")
    write_atomic(Path(folder) / f"{name}.md", lambda p: p.write_text(note + "\n\n" + markdown(table)))
