"""What a run was made with, so that any figure can be reproduced: written next to results."""

from __future__ import annotations

import platform
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


def provenance(seed: int, replications: int) -> dict:
    """Seed, replications, package versions, Python, platform, git revision, command, time."""
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
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
