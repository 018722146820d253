"""The identity matrix asked of the embedded broker over MQTT: the answers every auth-backend contract gives are
the embedded broker's own (CONNACK for logins, SUBACK for subscriptions, an MQTT 5 PUBACK for publishes)."""

from __future__ import annotations

import asyncio
import queue
from pathlib import Path
from typing import Any

from paho.mqtt.enums import MQTTProtocolVersion

from mqtthub.mqtt.reason_codes import ReasonCode
from tests.integration.auth.mqttclient import PahoClient, connect
from tests.integration.authbackend.world import LOGINS, TOPICS, World, auth_backend_world

_REFUSED = 5  # CONNACK return code "not authorized" [MQTT-3.2.2]


async def _puback(client: PahoClient, topic: str) -> int:
    """Publish at QoS 1 and return the PUBACK's reason code [MQTT-3.4.2.1]."""
    codes: queue.Queue[int] = queue.Queue()

    def on_publish(_c: Any, _u: Any, _mid: int, reason: Any, _p: Any) -> None:
        codes.put(int(getattr(reason, "value", reason)))

    client.client.on_publish = on_publish
    client.client.publish(topic, b"{}", qos=1)
    return await asyncio.to_thread(codes.get, True, 10)


async def _publishes(world: World, port: int, name: str) -> None:
    identity = world.identity(name)
    code, client = await connect(
        port, identity.username, identity.password, client_id=f"v5-{name}", protocol=MQTTProtocolVersion.MQTTv5
    )
    assert code == 0, name
    try:
        for case in TOPICS:
            if case.identity == name and case.action == "publish":
                refused = await _puback(client, case.written(world)) == ReasonCode.NOT_AUTHORIZED
                assert refused is not case.allowed, case
    finally:
        client.close()


async def test_the_embedded_broker_gives_the_matrix_answers(database_url: str, tmp_path: Path) -> None:
    async with auth_backend_world(database_url, tmp_path, mqtt_auth_free_failures=100) as world:
        port = int(world.running.hub.mqtt_urls["MQTT"].rsplit(":", 1)[1])
        for name, expected in LOGINS.items():
            identity = world.identity(name)
            code, client = await connect(port, identity.username, identity.password, client_id=f"c-{name}")
            assert code == (0 if expected else _REFUSED), name
            if not expected:
                continue
            try:
                for case in TOPICS:
                    if case.identity == name and case.action == "subscribe":
                        codes = await client.subscribe(case.written(world), qos=1)
                        assert codes == ([1] if case.allowed else [0x80]), case
            finally:
                client.close()
            await _publishes(world, port, name)
