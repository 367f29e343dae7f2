"""What a run was made with, so that any figure can be reproduced: written next to results."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

PACKAGES = ("discharge-sim", "simpy", "numpy", "pandas", "scipy", "matplotlib", "hydra-core",
            "omegaconf", "pyarrow")
REPOSITORY = Path(__file__).resolve().parents[2]


def git_revision() -> str:
    """The repository's commit, with ``-dirty`` if it has uncommitted changes; or ``unknown``."""
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=REPOSITORY, capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        revision = git("rev-parse", "HEAD")
        return revision + ("-dirty" if git("status", "--porcelain", "--untracked-files=no")
                           else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


SLURM_VARIABLES = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_NODELIST")
"""What SLURM tells a job about itself: recorded when a run is a SLURM job."""


def executed_by() -> dict:
    """Where this run executed: the host and process, and the SLURM job (array task) if any,
    so that a sweep's record shows which engine ran each of its jobs."""
    where: dict = {"host": socket.gethostname(), "pid": os.getpid()}
    where.update({name.lower(): os.environ[name] for name in SLURM_VARIABLES
                  if name in os.environ})
    return where


def provenance(seed: int, replications: int) -> dict:
    """Seed, replications, package versions, Python, platform, git revision, command, time,
    and where it executed (:func:`executed_by`)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "seed": seed,
        "replications": replications,
        "git_revision": git_revision(),
        "packages": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "command": sys.argv,
        "executed_by": executed_by(),
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
