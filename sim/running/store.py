"""The replication store: a folder of finished replications, written as each one finishes.

A later run with the same folder loads them instead of running them again, so an interrupted
run or sweep loses nothing that had finished. The folder's ``params.json`` fingerprints what
determines a replication's numbers (the parameters and the model core's source), so a folder is
never resumed by another configuration or a changed model.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from sim.core.model import REQUEST_COLUMNS, RunResult
from sim.core.params import Params, Run
from sim.running.files import write_atomic, write_csv


class ReplicationStore:
    """A folder of finished replications: ``rep-0003.metrics.csv`` and ``rep-0003.daily.csv``.
    The metrics file is written last, so it marks a replication as done. (Patient logs are not
    kept here: they are large, and every figure is in the metrics.)"""

    def __init__(self, folder: Path, params: Params) -> None:
        self.folder = Path(folder)
        self._check_same_system(params)

    def _check_same_system(self, params: Params) -> None:
        """Refuse to mix replications of different systems in one folder."""
        fingerprint = _fingerprint(params)
        path = self.folder / "params.json"
        if path.is_file():
            if json.loads(path.read_text()) != json.loads(fingerprint):
                raise StoreMismatch(
                    f"{self.folder} holds replications of a different configuration or model "
                    "version: choose another output folder (hydra.run.dir / hydra.sweep.dir) "
                    "or delete it")
        else:
            write_atomic(path, lambda p: p.write_text(fingerprint))

    def _path(self, k: int, table: str) -> Path:
        return self.folder / f"rep-{k:04d}.{table}.csv"

    def has(self, k: int) -> bool:
        return self._path(k, "metrics").is_file()

    def save(self, result: RunResult) -> None:
        write_csv(result.daily, self._path(result.replication, "daily"))
        write_csv(result.metrics, self._path(result.replication, "metrics"))

    def load(self, k: int) -> RunResult:
        return RunResult(k, pd.DataFrame(), pd.read_csv(self._path(k, "daily")),
                         pd.DataFrame(columns=REQUEST_COLUMNS),
                         pd.read_csv(self._path(k, "metrics")))


class StoreMismatch(ValueError):
    """A replication folder already holds results of another configuration."""


def _fingerprint(params: Params) -> str:
    """What determines a replication's result: the parameters (not how many replications are
    run) and the model code, so that a folder is not resumed by a changed model."""
    values = asdict(params)
    for key in Run.HOW_MANY:
        values["run"].pop(key)
    values["model_code"] = model_code_digest()
    return json.dumps(values, sort_keys=True, indent=1)


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
