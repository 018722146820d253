"""Connector life cycle, without a broker (connections to a closed port fail fast)."""

from __future__ import annotations

import asyncio

import pytest

from mqtthub.client.connection import ConnectionOptions
from mqtthub.errors import StateError, UnavailableError
from mqtthub.integrations.connector import Connector, InboundMessage
from mqtthub.integrations.status import ConnectionStatus


async def _ignore(message: InboundMessage) -> None:
    raise AssertionError("no message expected")


async def test_errors_are_recorded_and_misuse_is_refused() -> None:
    status = ConnectionStatus(product_id="p", client_id="c")
    connector = Connector(
        ConnectionOptions("127.0.0.1", 1, client_id="c"),
        topics={"a/b": 0},
        handler=_ignore,
        status=status,
        reconnect_min=0.05,
        reconnect_max=0.1,
    )
    async with connector:
        with pytest.raises(StateError, match="only once"):
            await connector.__aenter__()
        for _ in range(400):
            if sum(event.kind == "error" for event in status.history) >= 2:
                break
            await asyncio.sleep(0.025)
        assert status.connection_error is not None
        assert status.connection_error.startswith("Connection failed: ")
        assert sum(event.kind == "error" for event in status.history) >= 2
        with pytest.raises(UnavailableError):
            connector.publish("a/b", b"x")
        connector.reconnect()
    with pytest.raises(StateError, match="closed"):
        connector.set_topics({})
    assert not status.connected
