"""The hub's files are for the account that runs it alone: mode 0600, in a data directory of mode 0700.

``mqtthub serve`` sets the process's umask to 0077, so every file the hub creates (the database
and its WAL and shared-memory files, the broker's state, the secret key, the CA) is born private.
Files left from an earlier version with wider modes are narrowed at start by :func:`make_private`.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
"""The umask of a serving hub: nothing it creates is readable by group or others."""

SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")
"""Suffixes of the files SQLite keeps beside a database file."""


def make_private(data_dir: Path, files: Iterable[Path]) -> None:
    """Create ``data_dir`` with mode 0700 (narrow it if it is not the working directory), narrow ``files`` to 0600.

    Missing files are skipped; the working directory, the default data directory, is not changed, since
    it is the user's, not the hub's.
    """
    if not data_dir.exists():
        data_dir.mkdir(mode=0o700, parents=True)
    elif data_dir.resolve() != Path.cwd().resolve():
        _narrow(data_dir, 0o700)
    for path in files:
        if path.exists():
            _narrow(path, 0o600)


def _narrow(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & ~mode:
        os.chmod(path, current & mode)
        logger.info("narrowed the mode of %s from %o to %o", path, current, current & mode)
