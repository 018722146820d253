"""Which database a command works on, said in one line.

``serve`` creates its SQLite file on first start (the quick start depends on it); the CLI's other commands work on
an existing hub's database and refuse to create a new one by accident (run from another directory, a relative
SQLite path would otherwise give a fresh, empty database). Errors name the database with its password masked.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from mqtthub.errors import ConfigurationError, UnavailableError

DATABASE_ERRORS: tuple[type[BaseException], ...] = (OSError, SQLAlchemyError)
"""What opening or migrating a database raises when it is unreachable, missing or refuses the credentials."""


def describe(url: str) -> str:
    """The URL as it may be shown: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, or ``None`` for PostgreSQL and in-memory SQLite."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database)


def disk_free(url: str) -> int | None:
    """Bytes free for the SQLite file's writes on its file system; ``None`` for PostgreSQL (its server's business)."""
    path = sqlite_file(url)
    if path is None:
        return None
    try:
        return shutil.disk_usage(path.resolve().parent).free
    except OSError:
        return None


def check_location(url: str, *, create: bool) -> None:
    """Refuse a SQLite file whose directory is missing, or which is missing while ``create`` is false.

    Raises:
        ConfigurationError: one line naming the path and what to do.
    """
    path = sqlite_file(url)
    if path is None:
        return
    if not path.parent.is_dir():
        raise ConfigurationError(f"database {describe(url)}: directory {path.parent} does not exist")
    if not create and not path.exists():
        raise ConfigurationError(
            f"database {describe(url)}: no such file ({path.resolve()}); point MQTTHUB_DATABASE_URL at the hub's "
            "database, or create a new one with `mqtthub db upgrade --create`"
        )


def unavailable(url: str, exc: BaseException) -> UnavailableError:
    """One line for a database that cannot be opened, naming it and the driver's first line of explanation."""
    cause = getattr(exc, "orig", None) or exc
    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return UnavailableError(f"database {describe(url)} cannot be opened: {reason}")
