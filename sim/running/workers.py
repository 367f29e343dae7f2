"""Worker processes that end with their parent.

A process pool's workers outlive a parent killed with ``kill -9``: they block on the pool's
queue, or finish the replication or sweep job they hold, for minutes, holding memory. Each
worker therefore calls :func:`die_with_parent` as its pool initializer:

- on Linux it asks the kernel for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``),
  if the pool was started from the parent's main thread (the kernel sends the signal when the
  *thread* that started the worker ends, so a pool started from another thread relies on the
  watchdog alone);
- on any system a daemon thread checks every quarter second that the parent is still the
  same process, and ends the worker at once when it is not.

Both the replication pool (:mod:`sim.running.runner`) and the joblib (loky) workers of a Hydra
sweep (:func:`use_in_joblib_workers`) use it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
_CHECK_EVERY = 0.25  # seconds
_watching = False


def die_with_parent(parent_pid: int, kernel_signal: bool = True) -> None:
    """Make this process end when ``parent_pid`` (its parent) ends; a pool initializer."""
    global _watching
    if kernel_signal and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the watchdog below still ends the worker
    if os.getppid() != parent_pid:  # the parent died before the signal was asked for
        os._exit(1)
    if not _watching:
        _watching = True
        threading.Thread(target=_watch, args=(parent_pid,), name="die-with-parent",
                         daemon=True).start()


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_CHECK_EVERY)
    os.kill(os.getpid(), signal.SIGKILL)


def pool_arguments() -> dict:
    """``initializer`` and ``initargs`` for a process pool started from this process."""
    main_thread = threading.current_thread() is threading.main_thread()
    return {"initializer": die_with_parent, "initargs": (os.getpid(), main_thread)}


def use_in_joblib_workers() -> None:
    """Make joblib's ``loky`` backend (which Hydra's joblib launcher asks for by name) start
    its workers with :func:`die_with_parent`. Loky may start a worker from its own manager
    thread, so the workers rely on the watchdog, not on the kernel signal."""
    from joblib import register_parallel_backend
    from joblib._parallel_backends import LokyBackend

    parent = os.getpid()

    class LokyEndingWithParent(LokyBackend):
        def configure(self, n_jobs=1, parallel=None, prefer=None, require=None,
                      idle_worker_timeout=None, **kwargs):
            kwargs.update(initializer=die_with_parent, initargs=(parent, False))
            return super().configure(n_jobs, parallel, prefer, require, idle_worker_timeout,
                                     **kwargs)

    register_parallel_backend("loky", LokyEndingWithParent)
