"""The identity matrix asked of the embedded broker over MQTT: the answers every auth-backend contract gives are
the embedded broker's own (CONNACK for logins, SUBACK for subscriptions)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.auth.mqttclient import connect
from tests.integration.authbackend.world import LOGINS, TOPICS, auth_backend_world

_REFUSED = 5  # CONNACK return code "not authorized" [MQTT-3.2.2]


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
                    if case.identity != name or case.action != "subscribe":
                        continue
                    codes = await client.subscribe(case.written(world), qos=1)
                    assert codes == ([1] if case.allowed else [0x80]), case
            finally:
                client.close()
