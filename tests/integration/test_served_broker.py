"""The broker of a served hub, reached as a user would: Mosquitto's command-line clients and paho over WebSocket."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import require
from tests.support.hubproc import serve_process


def test_anonymous_hub_serves_mosquitto_clients_and_paho_over_websocket(tmp_path: Path) -> None:
    require(shutil.which("mosquitto_sub") is not None, "mosquitto-clients")
    with serve_process(tmp_path, wait_for=("MQTT", "MQTT WebSocket"), allow_anonymous=True) as hub:
        port = str(hub.port("MQTT"))
        ws_url = hub.urls["MQTT WebSocket"]
        assert ws_url.endswith("/mqtt")
        subscriber = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-t", "#", "-v", "-C", "3", "-W", "30"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)  # let the subscription settle before publishing

        received: list[tuple[str, bytes]] = []
        got_all = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ws-paho", transport="websockets")
        client.ws_set_options(path="/mqtt")

        def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
            received.append((message.topic, bytes(message.payload)))
            if len(received) == 3:
                got_all.set()

        client.on_message = on_message
        client.connect("127.0.0.1", hub.port("MQTT WebSocket"))
        client.loop_start()
        try:
            assert client.subscribe("factory/#", qos=1)[0] == mqtt.MQTT_ERR_SUCCESS
            time.sleep(0.5)
            for qos, (topic, payload) in enumerate([("factory/line1/temp", "21.5"), ("factory/line2/temp", "22.0")]):
                published = subprocess.run(
                    ["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-t", topic, "-m", payload, "-q", str(qos + 1)],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                assert published.returncode == 0, published.stderr
            info = client.publish("factory/ws/hello", b"from paho", qos=1)
            info.wait_for_publish(timeout=10)
            assert got_all.wait(10)
        finally:
            client.loop_stop()
            client.disconnect()
        output, _ = subscriber.communicate(timeout=30)
        assert output.splitlines() == [
            "factory/line1/temp 21.5",
            "factory/line2/temp 22.0",
            "factory/ws/hello from paho",
        ]
        assert sorted(received) == [
            ("factory/line1/temp", b"21.5"),
            ("factory/line2/temp", b"22.0"),
            ("factory/ws/hello", b"from paho"),
        ]
        assert hub.stop(signal.SIGINT) < 5


def test_hub_without_anonymous_access_refuses_mosquitto_pub(tmp_path: Path) -> None:
    require(shutil.which("mosquitto_pub") is not None, "mosquitto-clients")
    with serve_process(tmp_path, wait_for=("MQTT",)) as hub:
        result = subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(hub.port("MQTT")), "-t", "a", "-m", "x"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode != 0
        assert "not authori" in result.stderr.lower()


def test_platform_administrator_sees_sys_topics_and_every_namespace(tmp_path: Path) -> None:
    require(shutil.which("mosquitto_sub") is not None, "mosquitto-clients")
    with serve_process(tmp_path, wait_for=("MQTT",), allow_anonymous=True) as hub:
        port = str(hub.port("MQTT"))
        admin = hub.mqtt(hub.admin.email, hub.admin.password).mosquitto_args()
        uptime = subprocess.run(
            ["mosquitto_sub", *admin, "-t", "$SYS/broker/uptime", "-C", "1", "-W", "20"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert uptime.returncode == 0, uptime.stderr
        assert int(uptime.stdout.strip()) >= 0

        watcher = subprocess.Popen(
            ["mosquitto_sub", *admin, "-t", "org/+/plant/#", "-v", "-C", "1", "-W", "20"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # An anonymous client works inside the default organization's namespace. Published until the watcher
        # (whose SUBSCRIBE may land after a first PUBLISH on a busy machine) has its one message.
        deadline = time.monotonic() + 25
        while watcher.poll() is None and time.monotonic() < deadline:
            subprocess.run(
                ["mosquitto_pub", "-p", port, "-t", "plant/boiler", "-m", "90", "-q", "1"], check=True, timeout=30
            )
            with contextlib.suppress(subprocess.TimeoutExpired):
                watcher.wait(timeout=0.5)
        output, _ = watcher.communicate(timeout=30)
        namespace, _, rest = output.strip().partition("/plant/")
        assert namespace.startswith("org/")
        assert rest == "boiler 90"

        # Anonymous clients have no way into $SYS, and a wrong admin password is refused with code 5.
        anonymous_sys = subprocess.run(
            ["mosquitto_sub", "-p", port, "-t", "$SYS/#", "-C", "1", "-W", "3"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert anonymous_sys.stdout == ""
        wrong = subprocess.run(
            ["mosquitto_sub", "-p", port, "-u", hub.admin.email, "-P", "nope", "-t", "#", "-C", "1", "-W", "5"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert wrong.returncode != 0
        assert "not authori" in wrong.stderr.lower()
