"""Where a sweep's jobs run: the launchers a multirun (``discharge-sim -m ...``) can use.

- ``hydra/launcher=joblib`` (the default): every local core (hydra-joblib-launcher, loky).
- ``hydra/launcher=submitit_local`` / ``submitit_slurm``: hydra-submitit-launcher, in the
  ``cluster`` extra; on SLURM each job is a task of one job array (``hydra.launcher.partition``,
  ``timeout_min``, ``cpus_per_task``, ``array_parallelism``, ...).
- ``hydra/launcher=dask``: :class:`DaskLauncher`, each job a task on a Dask cluster, the one at
  ``hydra.launcher.address=tcp://HOST:8786`` or, with no address, a local cluster of
  ``hydra.launcher.n_workers`` processes. There is no Hydra launcher for Dask (the joblib
  launcher's ``backend=dask`` is ignored: it always runs loky), so this is one.

Whatever the launcher, a job runs through Hydra's own ``run_job`` into its folder
(``hydra.sweep.subdir``, named from its overrides), keeps each finished replication in its
store, and the sweep is collected when it ends (:class:`sim.config.callbacks.CollectSweep`, in
the launching process). Hydra instantiates only plugin classes under the ``hydra_plugins``
namespace that its plugin scan found (``hydra/core/plugins.py``), then builds the class by its
own name: :func:`register_launchers` maps ``hydra_plugins.discharge_sim.DaskLauncher`` to
:class:`DaskLauncher` (an importable class, so any process can unpickle it), with its config in
the ConfigStore group ``hydra/launcher``.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from sim.config.schema import ConfigError

log = logging.getLogger(__name__)

LAUNCHERS = ("joblib", "submitit_local", "submitit_slurm", "dask", "basic")
"""The launchers a sweep can use (``hydra/launcher=NAME``); submitit and dask need the
``cluster`` extra."""

CLUSTER_EXTRA = "pip install -e \".[cluster]\""

DASK_PLUGIN_NAME = "hydra_plugins.discharge_sim.DaskLauncher"
"""The Dask launcher's name for Hydra, which instantiates plugins from ``hydra_plugins`` only."""


class LauncherError(ConfigError):
    """A launcher that cannot run the sweep as configured; one line for the user."""


@dataclass
class DaskLauncherConf:
    """``hydra/launcher=dask``: run each job of the sweep as a task on a Dask cluster.

    ``address``: a running scheduler (``tcp://HOST:8786``; start it with ``dask scheduler``
    and its workers with ``dask worker ADDRESS --nthreads 1``); null starts a local cluster of
    ``n_workers`` worker processes (0 = one per core) for this sweep alone.
    ``connect_timeout_s``: how long to wait for the scheduler, and for its first worker."""

    _target_: str = DASK_PLUGIN_NAME
    address: Optional[str] = None
    n_workers: int = 0
    connect_timeout_s: float = 20.0


class DaskLauncher(Launcher):
    """Runs a sweep's jobs on a Dask cluster, one job at a time in each worker process, each
    through Hydra's ``run_job`` as Hydra's joblib launcher does."""

    def __init__(self, address: Optional[str] = None, n_workers: int = 0,
                 connect_timeout_s: float = 20.0) -> None:
        self.address = address or None
        self.n_workers = n_workers
        self.connect_timeout_s = connect_timeout_s
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        """Submit every job, wait for them all, and return their results in order."""
        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        client, cluster = self._connect()
        try:
            log.info(f"Dask ({client.scheduler.address}) is launching {len(job_overrides)} "
                     f"jobs; sweep output dir: {sweep_dir}")
            singleton_state = Singleton.get_state()
            futures = []
            for offset, overrides in enumerate(job_overrides):
                number = initial_job_idx + offset
                log.info(f"\t#{number} : {' '.join(filter_overrides(overrides))}")
                futures.append(client.submit(
                    run_job_on_worker, number, list(overrides), self.hydra_context,
                    self.config, self.task_function, singleton_state, os.getcwd(),
                    pure=False, key=f"discharge-sim-job-{number}-{os.getpid()}-{id(self)}"))
            results = client.gather(futures)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        assert all(isinstance(result, JobReturn) for result in results)
        return list(results)

    def _connect(self) -> tuple[Any, Any]:
        """A client of the scheduler at ``address`` (which must have a worker), or of a new
        local cluster; a :class:`LauncherError` if there is none."""
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise LauncherError(f"hydra/launcher=dask needs Dask: {CLUSTER_EXTRA}") from None
        logging.getLogger("distributed").setLevel(logging.WARNING)  # not every connection
        if self.address is None:
            workers = self.n_workers or os.cpu_count() or 1
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.WARNING)
            return Client(cluster), cluster
        setting = f"hydra.launcher.address={self.address}"
        try:
            client = Client(self.address, timeout=self.connect_timeout_s)
        except (OSError, ValueError, TypeError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise LauncherError(
                f"{setting}: no Dask scheduler answers there ({reason}); give the address "
                "`dask scheduler` prints (tcp://HOST:8786), or leave hydra.launcher.address "
                "out for a local cluster") from None
        try:
            client.wait_for_workers(1, timeout=self.connect_timeout_s)
        except (TimeoutError, OSError):
            client.close()
            raise LauncherError(
                f"{setting}: the scheduler has no workers after {self.connect_timeout_s:g} s; "
                f"start some (dask worker {self.address} --nthreads 1)") from None
        return client, None


_one_job_at_a_time = threading.Lock()
"""Hydra's config and the working folder are per process: a worker with several threads runs
its jobs one after another."""


def run_job_on_worker(number: int, overrides: list[str], hydra_context: HydraContext,
                      config: DictConfig, task_function: TaskFunction,
                      singleton_state: dict, cwd: str) -> JobReturn:
    """One job of the sweep, on a Dask worker: in the launching process's folder (so that
    relative paths mean the same; on another machine it must be the same shared path)."""
    with _one_job_at_a_time:
        before = os.getcwd()
        try:
            os.chdir(cwd)
        except OSError:
            import socket
            raise LauncherError(
                f"the Dask worker on {socket.gethostname()} cannot enter {cwd}, the folder the "
                "sweep was launched from: launch it from a folder every worker sees at the same "
                "path (a shared file system)") from None
        try:
            setup_globals()
            Singleton.set_state(singleton_state)
            sweep_config = hydra_context.config_loader.load_sweep_config(config, overrides)
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{number}"
                sweep_config.hydra.job.num = number
            HydraConfig.instance().set_config(sweep_config)
            return run_job(hydra_context=hydra_context, config=sweep_config,
                           task_function=task_function, job_dir_key="hydra.sweep.dir",
                           job_subdir_key="hydra.sweep.subdir")
        finally:
            os.chdir(before)


def register_launchers() -> None:
    """Make ``hydra/launcher=dask`` available (idempotent)."""
    ConfigStore.instance().store(group="hydra/launcher", name="dask", node=DaskLauncherConf,
                                 provider="discharge-sim")
    plugins = Plugins.instance()
    plugins.register(DaskLauncher)  # as a launcher (named sim.config.launchers.DaskLauncher)
    # Hydra accepts a plugin name under hydra_plugins only, then instantiates the class it
    # maps to by that class's own (importable) name, so every process can unpickle it.
    plugins.class_name_to_class[DASK_PLUGIN_NAME] = DaskLauncher


def launcher_error_line(error: BaseException) -> str | None:
    """One line for a launcher that cannot be used as asked (an unknown name, SLURM missing
    or refusing the job array); None for any other error."""
    from hydra.errors import MissingConfigException
    text = str(error)
    if isinstance(error, MissingConfigException) and "'hydra/launcher/" in text:
        name = text.split("'hydra/launcher/", 1)[1].split("'", 1)[0]
        return (f"hydra/launcher={name} is not a launcher: one of {', '.join(LAUNCHERS)} "
                f"(submitit_local, submitit_slurm and dask need the cluster extra: "
                f"{CLUSTER_EXTRA})")
    no_slurm = (isinstance(error, FileNotFoundError)
                and Path(str(error.filename)).name in ("sbatch", "srun", "sinfo"))
    if no_slurm or (isinstance(error, RuntimeError) and 'Could not detect "srun"' in text):
        return ("hydra/launcher=submitit_slurm needs SLURM (sbatch, srun) on this machine's PATH "
                "(run the sweep from a SLURM login node), or choose another launcher: one of "
                + ", ".join(LAUNCHERS))
    if type(error).__name__ in ("UncompletedJobError", "KilledWorker"):
        first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
        return (f"a job of the sweep did not finish ({first}); every finished replication is "
                "kept: run the same command again (the same hydra.sweep.dir) and it carries "
                "on where this one stopped")
    if type(error).__name__ == "FailedJobError" and "sbatch" in text:
        refusal = "; ".join(line.strip() for line in text.splitlines() if line.strip())
        partitions = _slurm_partitions()
        known = f" (this cluster's partitions: {', '.join(partitions)})" if partitions else ""
        return (f"SLURM refused the sweep's job array: {refusal}; check "
                f"hydra.launcher.partition{known}, and timeout_min, cpus_per_task, mem_gb")
    return None


def _slurm_partitions() -> list[str]:
    """The partitions ``sinfo`` lists (the default one marked ``*``), or none."""
    import subprocess
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({name.rstrip("*") for name in done.stdout.split()}) if done.returncode == 0 else []
