"""The operator rules file applied by a running hub to anonymous and global-namespace clients, reloaded live."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.conftest import require
from tests.integration.auth.mqttclient import PahoClient, connect
from tests.support.access import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.hubproc import serve_process
from tests.support.served import hub_settings, serve_in_process

V5 = MQTTProtocolVersion.MQTTv5
DENIED = 0x87

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_rules() -> str:
    """The rules file shown in the README's "Operator rules" section: the test runs exactly that example."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Operator rules") :]
    start = section.index("```text\n") + len("```text\n")
    return section[start : section.index("```", start)]


FIRST = readme_rules()

SECOND = """\
anonymous deny  subscribe sensors/#
"""


def write_rules(path: Path, text: str, stamp: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(stamp, stamp))  # a new modification time whatever the file system's resolution


async def anonymous(port: int, client_id: str) -> PahoClient:
    code, client = await connect(port, protocol=V5, client_id=client_id)
    assert code == 0
    return client


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_rules_file_narrows_anonymous_and_global_clients_and_reloads(tmp_path: Path) -> None:
    rules = tmp_path / "mqtt-rules.txt"
    write_rules(rules, FIRST, 1_000_000_000)
    settings = hub_settings(
        tmp_path,
        allow_anonymous=True,
        mqtt_rules_file=rules,
        mqtt_rules_reload_interval=0.1,
    )
    async with serve_in_process(settings) as running:
        port = running.mqtt_port
        broker = running.hub.broker
        reader = await anonymous(port, "reader")
        assert await reader.subscribe("sensors/#") == [1]
        assert await reader.subscribe("#") == [DENIED]  # overlaps the deny
        assert await reader.subscribe("config/#") == [DENIED]

        writer = await anonymous(port, "writer")
        await writer.publish("sensors/public/t", b"21.5", retain=True)
        await writer.publish("sensors/private/t", b"secret", retain=True)
        assert (await reader.next_message()).topic == "sensors/public/t"
        assert (await reader.next_message()).topic == "sensors/private/t"  # live: the subscription allows it
        denied_before = broker.stats().publish_denied
        await writer.publish("config/x", b"no")
        assert broker.stats().publish_denied == denied_before + 1

        late = await anonymous(port, "late")
        assert await late.subscribe("sensors/#") == [1]
        retained = await late.next_message()
        assert (retained.topic, retained.retain) == ("sensors/public/t", True)  # the private one is not read

        code, admin = await connect(port, ADMIN_EMAIL, ADMIN_PASSWORD, protocol=V5, client_id="root")
        assert code == 0
        assert await admin.subscribe("org/+/secrets/#") == [DENIED]
        assert await admin.subscribe("org/+/sensors/#") == [1]

        # Live reload: the new file drops every rule but one, which ends the readers' subscriptions.
        write_rules(rules, SECOND, 2_000_000_000)
        await wait_for(lambda: broker.stats().subscriptions_revoked >= 2)
        assert await reader.subscribe("config/#") == [1]  # no rule says otherwise any more
        await writer.publish("config/x", b"now allowed")
        assert (await reader.next_message()).topic == "config/x"
        assert await admin.subscribe("org/+/secrets/#") == [1]
        assert await reader.subscribe("sensors/#") == [DENIED]

        # A file that does not parse leaves the last rules in force.
        write_rules(rules, "anonymous deny everything\n", 3_000_000_000)
        await asyncio.sleep(0.5)
        assert await late.subscribe("sensors/a") == [DENIED]
        for client in (reader, writer, late, admin):
            client.close()


def test_served_hub_applies_the_rules_file_and_the_keep_alive_maximum(tmp_path: Path) -> None:
    """`mqtthub serve` configured from the environment, used by mosquitto_sub, mosquitto_pub and paho."""
    require(shutil.which("mosquitto_sub") is not None, "mosquitto-clients")
    rules = tmp_path / "rules.txt"
    rules.write_text("anonymous deny subscribe secrets/#\nanonymous deny publish readonly/#\n")
    with serve_process(
        tmp_path, wait_for=("MQTT",), allow_anonymous=True, mqtt_rules_file=rules, max_keepalive=30
    ) as hub:
        port = hub.port("MQTT")
        base = ["-h", "127.0.0.1", "-p", str(port), "-V", "mqttv5"]
        refused = subprocess.run(
            ["mosquitto_sub", *base, "-t", "secrets/#", "-C", "1", "-W", "10"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "denied" in (refused.stdout + refused.stderr).lower()
        published = subprocess.run(
            ["mosquitto_pub", *base, "-t", "readonly/x", "-m", "no", "-q", "1", "-d"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "received PUBACK (Mid: 1, RC:135)" in published.stdout
        assert "Not authorized" in published.stderr

        connack: list[object] = []
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="no-keepalive", protocol=V5)
        client.on_connect = lambda _c, _u, _f, _rc, props: connack.append(props)
        client.connect("127.0.0.1", port, keepalive=0)
        client.loop_start()
        try:
            deadline = time.monotonic() + 10
            while not connack and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            client.disconnect()
            client.loop_stop()
        assert getattr(connack[0], "ServerKeepAlive", None) == 30  # MQTTHUB_MAX_KEEPALIVE [MQTT-3.1.2-21]
