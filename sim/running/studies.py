"""Optuna studies that resume: the calibration's and the budget search's.

A study lives in a folder (``optuna.db``, SQLite) and is fingerprinted with everything that
determines its trials (the system, the model's code, the targets or budget, the replications,
the seed, the batch), so that a rerun with the same folder carries on, and a folder holding a
study of anything else is refused in one line rather than mixed in. Trials are asked in
batches; each batch's sampler is seeded from the seed and the number of trials finished before
it, so the trials do not depend on how many processes run them or on an interruption.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


class StudyError(ValueError):
    """A study folder that cannot be used; the message is one line."""


def open_study(folder: Path | None, name: str, fingerprint: str, what: str,
               directions: Sequence[str] = ("minimize",)):
    """The study ``name`` in ``folder/optuna.db`` (in memory without a folder), created or
    resumed; refused (:class:`StudyError`) if the folder holds a study of another
    ``fingerprint`` (``what`` says what it would be: "a calibration")."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{(folder / 'optuna.db').resolve()}"
    study = optuna.create_study(storage=storage, study_name=name, directions=list(directions),
                                load_if_exists=True)
    stored = study.user_attrs.get("fingerprint")
    if stored is None:
        if study.trials:
            raise StudyError(f"{folder}/optuna.db holds a study of unknown origin: choose "
                             "another folder or delete it")
        study.set_user_attr("fingerprint", fingerprint)
    elif stored != fingerprint:
        raise StudyError(f"{folder}/optuna.db holds {what} of another system, model version or "
                         "setup (replications, seed, batch): choose another folder or delete it")
    return study


def evaluated(trial) -> bool:
    """Whether a trial has finished and been evaluated (not merely asked)."""
    return trial.state.is_finished() and bool(trial.user_attrs.get("evaluated"))


def batch_sampler(seed: int, done: int):
    """The TPE sampler of the batch after ``done`` finished trials (multi-objective too)."""
    import optuna

    state = int(np.random.SeedSequence([seed, done]).generate_state(1)[0])
    return optuna.samplers.TPESampler(seed=state)
