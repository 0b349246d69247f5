"""Where configuration and data live.

Configuration (source YAML, SQL, the division table) sits beside the package under
``include/``; an installation may point elsewhere with ``LOOKBACK_INCLUDE_DIR``. Data
(the default SQLite warehouse, landing batches, run outputs) goes under ``./data`` of the
working directory unless ``LOOKBACK_DATA_DIR`` says otherwise.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lookback.errors import ConfigError

WAREHOUSE_URL_ENV = "LOOKBACK_WAREHOUSE_URL"


def include_dir() -> Path:
    """The ``include/`` folder holding sources/, sql/ and divisions/."""
    configured = os.environ.get("LOOKBACK_INCLUDE_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent


def sources_dir() -> Path:
    return include_dir() / "sources"


def sql_dir() -> Path:
    return include_dir() / "sql"


def divisions_dir() -> Path:
    return include_dir() / "divisions"


def official_divisions_dir() -> Path:
    """The official division lists the division table is built from (``divisions/official/``)."""
    return divisions_dir() / "official"


def data_dir() -> Path:
    """Root for the default warehouse file and generated batches."""
    return Path(os.environ.get("LOOKBACK_DATA_DIR", "data")).resolve()


def default_warehouse_url() -> str:
    """``LOOKBACK_WAREHOUSE_URL`` if set, else a SQLite file under the data folder."""
    configured = os.environ.get(WAREHOUSE_URL_ENV)
    if configured:
        return configured
    return f"sqlite:///{data_dir() / 'warehouse.sqlite'}"


# A name that becomes a folder or a key (batch id, run id, sample id): letters, digits and
# ``._-``, starting with a letter or digit; never ``..``, a separator, NUL or a line break.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# What a delivered or returned file's name must not hold: a separator, a control character
# (NUL, a line break) or a parent-folder step.
_UNSAFE_IN_FILE_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


def is_safe_name(value: str) -> bool:
    """Whether ``value`` is usable as a batch, run or sample id (the whole of it: ``b1\\n`` is not)."""
    return bool(_SAFE_NAME.fullmatch(value)) and ".." not in value


def check_file_name(name: str, where: str) -> str:
    """A file's name, refused when it holds a separator, a control character (NUL, a line
    break) or ``..``: such a name is made to be read as something else."""
    if _UNSAFE_IN_FILE_NAME.search(name) or ".." in name or not name.strip():
        raise ConfigError(f"{where}: file name {name!r} holds a path separator, '..' or a control character: refused")
    return name


def inside_data_dir(value: str | Path, what: str) -> Path:
    """A path given from outside (a DAG run's params) as an absolute path, refused unless it
    lies inside ``LOOKBACK_DATA_DIR`` once symbolic links are followed. A relative path is
    taken from ``LOOKBACK_DATA_DIR``."""
    text = str(value)
    if not text.strip() or any(character in text for character in "\x00\n\r"):
        raise ConfigError(f"{what} {text!r}: not a usable path (empty, or holding NUL or a line break)")
    root = data_dir()
    path = Path(text).expanduser()
    resolved = (path if path.is_absolute() else root / path).resolve()
    if resolved == root or not resolved.is_relative_to(root):
        raise ConfigError(
            f"{what} {text!r} resolves to {resolved}, outside the data folder {root} (LOOKBACK_DATA_DIR): refused"
        )
    return resolved
