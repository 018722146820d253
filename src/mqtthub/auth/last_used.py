"""Recording when MQTT credentials were last used, in batches and off the CONNECT path.

A CONNECT only notes that its token was used; :class:`LastUsedWriter` collects the notes for
``delay`` seconds and then writes them in the background, one ``UPDATE … WHERE id IN (…)``
per table and batch, each committing by itself, with at most one batch in flight, so a
connection storm costs a handful of writes and no CONNACK waits for one. A token's
``last_used_at`` is written at most every ``precision`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import update

from mqtthub.db import Database
from mqtthub.models import DeviceToken, MqttApiToken

logger = logging.getLogger(__name__)

TokenModel = type[MqttApiToken] | type[DeviceToken]
_CHUNK = 500


class LastUsedWriter:
    """Writes ``last_used_at`` of device and API tokens in batches (see the module docstring).

    Args:
        database: Where the tokens live.
        precision: Seconds within which a newer use is not written again.
        delay: Seconds uses are collected before they are written (:meth:`settle` writes at once).
    """

    def __init__(self, database: Database, *, precision: float = 30.0, delay: float = 0.5) -> None:
        self._database = database
        self.precision = timedelta(seconds=precision)
        self._delay = delay
        self._pending: dict[TokenModel, dict[str, datetime]] = {}
        self._task: asyncio.Task[None] | None = None
        self._now = asyncio.Event()
        self.failures = 0
        """Batches that could not be written (logged; the next use writes again)."""

    def due(self, last_used: datetime | None, now: datetime) -> bool:
        """Whether a use at ``now`` is worth writing after one recorded at ``last_used``."""
        return last_used is None or now - last_used >= self.precision

    def record(self, model: TokenModel, token_id: str, now: datetime) -> None:
        """Note a use of a token; written soon, in the background."""
        self._pending.setdefault(model, {})[token_id] = now
        if self._task is None:
            self._now.clear()
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="mqtt-auth-last-used")

    async def settle(self) -> None:
        """Write every use noted so far without waiting out the delay; return when written (or failed)."""
        self._now.set()
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        try:
            while self._pending:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._now.wait(), self._delay)
                pending, self._pending = self._pending, {}
                try:
                    async with self._database.autocommit() as connection:
                        for model, uses in pending.items():
                            ids = sorted(uses)
                            when = max(uses.values())
                            for start in range(0, len(ids), _CHUNK):
                                chunk = ids[start : start + _CHUNK]
                                await connection.execute(
                                    update(model).where(model.id.in_(chunk)).values(last_used_at=when)
                                )
                except Exception:
                    self.failures += 1
                    logger.warning(
                        "could not record the last use of %d token(s)", sum(map(len, pending.values())), exc_info=True
                    )
        finally:
            self._task = None
