"""``python -m sim.app``: start the workshop app (Streamlit) and open it in the browser.

    python -m sim.app                              # the calibrated baseline
    python -m sim.app run.replications=10 acute.beds=540   # another baseline (Hydra overrides)
    python -m sim.app --server.port 8502 --server.headless true   # options of streamlit run

Arguments with ``=`` that do not start with ``--`` are overrides of the app's baseline; the
others go to ``streamlit run``.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    try:
        from streamlit.web import cli
    except ImportError:
        sys.exit("python -m sim.app: error: Streamlit is not installed: "
                 "run .venv/bin/pip install -e \".[app]\" first")
    import os
    import shlex

    from sim.app.workshop import OVERRIDES_VARIABLE

    args = sys.argv[1:]
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    options = [a for a in args if a not in overrides]
    if overrides:  # else the baseline set in the environment, if any, stays
        os.environ[OVERRIDES_VARIABLE] = shlex.join(overrides)
    app = Path(__file__).with_name("workshop.py")
    sys.argv = ["streamlit", "run", str(app), "--browser.gatherUsageStats", "false",
                "--client.toolbarMode", "minimal",
                *options]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
