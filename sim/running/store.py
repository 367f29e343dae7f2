"""The replication store: a folder of finished replications, written as each one finishes.

A later run with the same folder loads them instead of running them again, so an interrupted
run or sweep loses nothing that had finished, and a run started again into a finished folder
rebuilds every output (``patients.csv`` too) from what the folder holds. The folder's
``params.json`` fingerprints what determines a replication's numbers (the parameters and the
model core's source), so a folder is never resumed by another configuration or a changed model.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.core.model import REQUEST_COLUMNS, RunResult
from sim.core.params import Params, Run
from sim.running.files import write_atomic, write_csv


class ReplicationStore:
    """A folder of finished replications: ``rep-0003.patients.parquet`` (the patient log, if
    ``patients``), ``rep-0003.daily.csv`` and ``rep-0003.metrics.csv``. The metrics file is
    written last, so it marks a replication as done; with ``patients``, a replication whose
    patient log is missing (stored by a run that did not keep them) counts as not done and is
    simulated again, to the same numbers.

    The constructor refuses (:class:`StoreMismatch`) a folder that holds another
    configuration's replications before it writes anything; a new folder gets ``params.json``.
    """

    def __init__(self, folder: Path, params: Params, patients: bool = True) -> None:
        self.folder = Path(folder)
        self.keeps_patients = patients
        self._check_same_system(params)

    def _check_same_system(self, params: Params) -> None:
        """Refuse to mix replications of different systems in one folder."""
        fingerprint = _fingerprint(params)
        path = self.folder / "params.json"
        if path.is_file():
            if not _same(path.read_text(), fingerprint):
                raise StoreMismatch(
                    f"{self.folder} holds replications of a different configuration or model "
                    "version: choose another output folder (hydra.run.dir / hydra.sweep.dir) "
                    "or delete it")
        else:
            write_atomic(path, lambda p: p.write_text(fingerprint))

    def _path(self, k: int, table: str) -> Path:
        return self.folder / f"rep-{k:04d}.{table}.csv"

    def patients_path(self, k: int) -> Path:
        return self.folder / f"rep-{k:04d}.patients.parquet"

    def has(self, k: int) -> bool:
        return self._path(k, "metrics").is_file() and (
            not self.keeps_patients or self.patients_path(k).is_file())

    def finished(self) -> list[int]:
        """The replications the folder holds, done."""
        numbers = (int(p.name.split(".")[0].split("-")[1])
                   for p in self.folder.glob("rep-*.metrics.csv"))
        return sorted(k for k in numbers if self.has(k))

    def save(self, result: RunResult) -> None:
        k = result.replication
        if self.keeps_patients:
            table = pa.Table.from_pandas(result.patients, preserve_index=False)
            write_atomic(self.patients_path(k), lambda p: pq.write_table(table, str(p)))
        write_csv(result.daily, self._path(k, "daily"))
        write_csv(result.metrics, self._path(k, "metrics"))  # last: marks the replication done

    def load(self, k: int) -> RunResult:
        """A finished replication's daily counts and metrics; its patient log stays on disk
        (:meth:`load_patients`)."""
        return RunResult(k, pd.DataFrame(), pd.read_csv(self._path(k, "daily")),
                         pd.DataFrame(columns=REQUEST_COLUMNS),
                         pd.read_csv(self._path(k, "metrics")))

    def load_patients(self, k: int) -> pd.DataFrame:
        return pd.read_parquet(self.patients_path(k))


class StoreMismatch(ValueError):
    """A replication folder already holds results of another configuration."""


def _fingerprint(params: Params) -> str:
    """What determines a replication's result: the parameters (not how many replications are
    run) and the model code, so that a folder is not resumed by a changed model. Tables keep
    their order: it decides which entry a random draw picks (a patient's pathway)."""
    values = asdict(params)
    for key in Run.HOW_MANY:
        values["run"].pop(key)
    values["model_code"] = model_code_digest()
    return json.dumps(values, indent=1)


def _same(stored: str, fingerprint: str) -> bool:
    """Whether two fingerprints are equal, the order of every table's entries included."""
    def read(text: str) -> object:
        return json.loads(text, object_pairs_hook=list)
    return read(stored) == read(fingerprint)


MODEL_CORE = Path(__file__).resolve().parent.parent / "core"
"""The model-core package: every source file in it determines a replication's result."""


@functools.cache
def model_code_digest() -> str:
    """SHA-256 of every source file of the model core (names and contents): any change to how
    a replication is computed changes it."""
    digest = hashlib.sha256()
    for path in sorted(MODEL_CORE.rglob("*.py")):
        digest.update(path.relative_to(MODEL_CORE).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
