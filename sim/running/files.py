"""Writing files so that nothing a user ran is lost or half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.csv


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write a file through a temporary file and a rename: complete or absent, never partial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """A table as CSV, atomically. Arrow's writer: about ten times faster than pandas', and
    floats are written in full (shortest round-trip form), so reading them back is exact."""
    write_atomic(path, lambda p: pyarrow.csv.write_csv(
        pa.Table.from_pandas(table, preserve_index=False), str(p)))


def write_csv_tables(tables: Iterable[pd.DataFrame], path: Path) -> None:
    """Tables with the same columns as one CSV, atomically, holding one table in memory at a
    time (e.g. each replication's patient log in turn)."""
    def write(temporary: Path) -> None:
        writer, schema = None, None
        try:
            for table in tables:
                batch = pa.Table.from_pandas(table, preserve_index=False)
                if writer is None:
                    schema = batch.schema.remove_metadata()
                    writer = pyarrow.csv.CSVWriter(str(temporary), schema)
                batch = batch.select(schema.names).cast(schema)
                writer.write_table(batch)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            temporary.write_text("")
    write_atomic(path, write)
