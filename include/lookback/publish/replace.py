"""Which existing folder publishing may replace.

Publishing a run or a sample replaces its folder as a whole, and removes what the folder
held (see ``lookback.publish.files.swap_into_place``). A folder given as ``out`` may only
be replaced when it is missing, empty, or one that lookback published before: one holding
the file every publication of its kind writes (a run's ``manifest.json``, a sample's
``sample.csv``). Anything else (a home folder, the landing zone, the data folder itself)
is refused before any work is done.
"""

from __future__ import annotations

import os
from pathlib import Path

from lookback.errors import LookbackError

# The file that marks a folder as a published run, or a published sample.
RUN_MARKER = "manifest.json"
SAMPLE_MARKER = "sample.csv"


class NotReplaceable(LookbackError):
    """An output folder that holds something lookback did not publish."""


def check_replaceable(target: Path, marker: str) -> None:
    """Raise :class:`NotReplaceable` unless publishing may replace ``target``: it does not
    exist, is an empty folder, or holds ``marker`` as a plain file (a symbolic link is
    never replaced, nor followed)."""
    if not os.path.lexists(target):
        return
    if target.is_symlink() or not target.is_dir():
        raise NotReplaceable(f"{target}: exists and is not a folder (or is a symbolic link): not publishing into it")
    with os.scandir(target) as entries:
        empty = next(entries, None) is None
    if empty:
        return
    mark = target / marker
    if mark.is_symlink() or not mark.is_file():
        raise NotReplaceable(
            f"{target}: not empty and not a folder lookback published (no {marker}): publishing would replace "
            "it and remove what it holds; choose another output folder"
        )
