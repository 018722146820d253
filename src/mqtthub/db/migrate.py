"""Alembic migrations run programmatically: no ``alembic.ini`` needed at run time."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic configuration pointing at the packaged migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade_sync(url: str, revision: str = "heads") -> None:
    """Apply migrations up to ``revision`` (all branch heads by default). Blocking."""
    command.upgrade(alembic_config(url), revision)


async def upgrade(url: str, revision: str = "heads") -> None:
    """Apply migrations from async code (Alembic's async env runs its own loop in a thread)."""
    await asyncio.to_thread(upgrade_sync, url, revision)
