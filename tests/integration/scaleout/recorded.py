"""Helpers of the recorded-filter tests: the history read from the database, and the vhost's recorded-filters queue."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import quote

import asyncpg

from tests.integration.scaleout.conftest import Scaled, scaled_system
from tests.support.rabbitmq import RabbitCluster

RECORDED_QUEUE = "mqtthub.recorded"
HISTORY_SIZE = 10_000
"""``MQTTHUB_MAX_HISTORY_SIZE`` of these tests' hubs: nothing they record is pruned."""


def recorded_system(rabbit: RabbitCluster, database: tuple[str, str], workdir: Path) -> Iterator[Scaled]:
    """The two hubs, keeping every message these tests record."""
    with scaled_system(rabbit, database, workdir, max_history_size=HISTORY_SIZE) as scaled:
        yield scaled


async def history(scaled: Scaled, topic_like: str) -> list[tuple[str, str]]:
    """The ``(topic, payload)`` of every history row of the organization whose topic is ``LIKE topic_like``."""
    connection = await asyncpg.connect(scaled.dsn)
    try:
        rows = await connection.fetch(
            "SELECT topic, payload FROM message_history WHERE organization_id = $1 AND topic LIKE $2",
            scaled.organization_id,
            topic_like,
        )
    finally:
        await connection.close()
    return [(str(row["topic"]), bytes(row["payload"]).decode()) for row in rows]


async def recorded_queue(scaled: Scaled) -> dict[str, Any] | None:
    """The management API's view of the organization's recorded-filters queue (None before it exists)."""
    path = f"/queues/{quote(scaled.short_id, safe='')}/{RECORDED_QUEUE}"
    try:
        queue: dict[str, Any] = await asyncio.to_thread(scaled.rabbit.api, "GET", path)
    except HTTPError:
        return None
    return queue


async def consumed_by_both_hubs(scaled: Scaled) -> bool:
    queue = await recorded_queue(scaled)
    return queue is not None and queue.get("consumers") == 2


async def binding_keys(scaled: Scaled) -> list[str]:
    """The routing keys binding ``amq.topic`` to the recorded-filters queue."""
    path = f"/queues/{quote(scaled.short_id, safe='')}/{RECORDED_QUEUE}/bindings"
    bindings = await asyncio.to_thread(scaled.rabbit.api, "GET", path)
    return sorted(str(binding["routing_key"]) for binding in bindings if binding["source"] == "amq.topic")
