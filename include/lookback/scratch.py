"""Scratch folders that a killed run does not leave behind for good.

A run writes into folders of its own before anything is final: the side databases of the
ingest workers, publish's staging folder, the county parts of the published files. A run
killed with SIGKILL (or by the out-of-memory killer) removes none of them, and they hold
copies of the delivered rows. So each is *held* while in use: its process keeps it open
under an exclusive ``flock``, which the kernel lets go when the process ends, however it
ends. The next run that makes a folder of the same kind beside it removes every one that
nobody holds (:func:`remove_abandoned`); a folder in use by another live run is left alone.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

# Folders held by this process: path → the open descriptor that holds the lock.
_HELD: dict[Path, int] = {}


def hold(folder: Path) -> None:
    """Hold ``folder`` (just made by this process) until :func:`release`. On a file system
    without ``flock`` it is not held, and no run takes it for abandoned either."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(descriptor)
        log.debug("cannot hold %s (%s): it stays until removed by this run", folder, error.strerror)
        return
    _HELD[folder] = descriptor


def release(folder: Path) -> None:
    """Let ``folder`` go (it may have been renamed or removed since)."""
    descriptor = _HELD.pop(folder, None)
    if descriptor is not None:
        os.close(descriptor)


def remove_abandoned(parent: Path, prefix: str) -> None:
    """Remove the folders in ``parent`` whose names begin with ``prefix`` and that no live
    process holds: what killed runs left."""
    try:
        candidates = [path for path in parent.iterdir() if path.name.startswith(prefix)]
    except FileNotFoundError:
        return
    for path in candidates:
        if path.is_symlink() or not path.is_dir() or path in _HELD:
            continue
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue  # gone meanwhile, or not ours
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # held by a live run (or no flock here: left alone)
        else:
            shutil.rmtree(path, ignore_errors=True)
            log.info("removed %s, left by a run that did not finish", path)
        finally:
            os.close(descriptor)


@contextmanager
def scratch_folder(parent: Path, prefix: str) -> Iterator[Path]:
    """A new folder ``<parent>/<prefix><random>``, held while in use and removed after;
    the abandoned ones of the same prefix are removed first."""
    parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(parent, prefix)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    hold(folder)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        release(folder)
