"""Output folders: one run at a time in each, and plain words for what the file system refuses.

Two runs into one folder would both do the same replications and overwrite each other's
tables, so a run holds an exclusive lock on its folder (``flock`` on the folder itself, so no
lock file is left behind, and the kernel releases it when the process ends, however it ends;
on NFS, where a folder cannot be locked, on a ``.lock`` file in it, which locks it for every
machine that mounts it, as jobs of a SLURM or Dask sweep on several machines need).
A folder that cannot be written (read-only, a file in its place, a full disk) is an error in
what the user asked for, told in one line with the setting to change; any other ``OSError`` is
a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class FolderBusy(RuntimeError):
    """Another run is writing to the same output folder."""


class OutputFolderError(RuntimeError):
    """The output folder cannot be written; the message is one line for the user."""


@contextmanager
def exclusive(folder: Path, setting: str, wait: bool = False) -> Iterator[None]:
    """Hold ``folder`` for this run: another run into it is refused (:class:`FolderBusy`),
    or, with ``wait``, waits until this one ends. On a network file system (NFS), where a lock
    on a folder cannot be had (an exclusive ``flock`` there needs a file open for writing),
    the lock is taken on a file in it, ``.lock``, which NFS locks for every machine."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        try:
            _lock(descriptor, folder, setting, wait)
        except OSError:  # this file system cannot lock a folder (NFS): lock a file in it
            os.close(descriptor)
            descriptor = -1
            descriptor = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _lock(descriptor, folder, setting, wait)
            except OSError as error:
                print(f"discharge-sim: warning: the file system of {folder} has no locks "
                      f"({os.strerror(error.errno or 0)}): do not run two runs into it at once",
                      file=sys.stderr)
        yield
    finally:
        if descriptor >= 0:
            os.close(descriptor)


LOCK_FILE = ".lock"
"""The lock file of a folder on a file system that cannot lock the folder itself (NFS)."""


def _lock(descriptor: int, folder: Path, setting: str, wait: bool) -> None:
    """An exclusive ``flock`` on ``descriptor``: refused (:class:`FolderBusy`), or waited for,
    if another run holds it."""
    import fcntl
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if not wait:
            raise FolderBusy(
                f"{folder} is in use by another discharge-sim run: wait for it to end, or "
                f"choose another folder ({setting}=...)") from None
        print(f"discharge-sim: waiting for another run to finish with {folder}",
              file=sys.stderr)
        fcntl.flock(descriptor, fcntl.LOCK_EX)


NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
NOT_A_FOLDER = (errno.EEXIST, errno.ENOTDIR, errno.EISDIR)


def _errno(error: BaseException) -> int | None:
    """The errno of an OSError, also when a library (Arrow) gives it only in the message."""
    if isinstance(error, OSError) and error.errno is not None:
        return error.errno
    text = str(error)
    for number in (*NO_SPACE, *NOT_WRITABLE):
        if os.strerror(number) in text:
            return number
    return None


def file_system_error(error: BaseException) -> OSError | None:
    """The OSError behind ``error`` (itself, or its explicit cause, as when Python's logging
    cannot open its file) if it is one the user can fix: no space, not writable, not a folder.
    (An error merely raised while another was handled is not followed: that is a bug.)"""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and _errno(seen) in (*NO_SPACE, *NOT_WRITABLE, *NOT_A_FOLDER):
            return seen
        seen = seen.__cause__
    return None


def describe(error: OSError, folder: Path | None, setting: str, kept: str = "") -> str:
    """One line: what the file system refused, where, and what to do."""
    number = _errno(error)
    where = Path(error.filename) if error.filename else folder
    if number in NO_SPACE:
        return (f"no space left on the disk to write {where}{kept}; free some space (or choose "
                f"another folder, {setting}=...) and run the same command again: it carries on "
                "where this one stopped")
    if number in NOT_WRITABLE:
        return (f"cannot write to {where}: {os.strerror(number).lower()}; choose a folder you "
                f"can write to ({setting}=...)")
    blocking = _file_in_the_way(where)
    return (f"cannot make the output folder {folder or where}: {blocking} is a file, not a "
            f"folder; choose another folder ({setting}=...)")


def _file_in_the_way(path: Path | None) -> Path | None:
    """The file that stands where ``path`` or one of its parent folders should be."""
    if path is None:
        return None
    for candidate in (path, *path.parents):
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return path
