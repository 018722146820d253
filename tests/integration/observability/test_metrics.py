"""``/metrics`` of a real hub, scraped while real MQTT (paho) and HTTP clients work."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from mqtthub.client import HubClient
from tests.integration.messaging.conftest import threaded_hub, wait_for
from tests.integration.observability.scrape import Samples, scrape, value
from tests.support.access import api_token
from tests.support.paho_clients import paho_client
from tests.support.served import ThreadedHub

METRICS_TOKEN = "metrics-token-" + "m" * 20


def _connect_code(port: int, username: str, password: str) -> int:
    """The CONNACK reason code a 5.0 client gets for these credentials."""
    answered = threading.Event()
    codes: list[int] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"m-{time.monotonic_ns()}", protocol=paho.MQTTv5)
    client.username_pw_set(username, password)

    def on_connect(_c: paho.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        codes.append(reason.value)
        answered.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert answered.wait(30), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


def _publish_qos1(client: paho.Client, topic: str, payload: bytes) -> None:
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(timeout=30)
    assert info.is_published()


def _device_client(hub: ThreadedHub, device_id: str, secret: str) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"d-{time.monotonic_ns()}", protocol=paho.MQTTv5)
    client.username_pw_set(device_id, secret)
    connected = threading.Event()
    client.on_connect = lambda c, u, f, reason, p: connected.set()
    client.connect("127.0.0.1", hub.mqtt_port)
    client.loop_start()
    assert connected.wait(30), "device did not connect"
    return client


def _moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_counters_and_histograms_move_with_mqtt_and_http_traffic(tmp_path: Path) -> None:
    with threaded_hub(tmp_path, metrics_token=METRICS_TOKEN) as hub:
        url = hub.http_url + "/metrics"
        refused = httpx.get(url, timeout=30)
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthorized"
        assert httpx.get(url, headers={"Authorization": "Bearer " + "x" * 34}, timeout=30).status_code == 401
        before = scrape(url, METRICS_TOKEN)
        assert value(before, "mqtthub_info", version=__import__("mqtthub").__version__) == 1

        # A refused MQTT login: unknown API token.
        assert _connect_code(hub.mqtt_port, "mqh_mqtt_" + "z" * 40, "mqh_mqtt_" + "z" * 40) == 0x87
        # A dropped message: an app publishing outside its rights.
        app = paho_client(hub.mqtt(hub.call(api_token(hub.admin, publish=["allowed/#"]))))
        try:
            app.publish("denied/x", b"nope", qos=1).wait_for_publish(timeout=30)
            app.publish("allowed/x", b"yes", qos=1).wait_for_publish(timeout=30)
        finally:
            app.disconnect()
            app.loop_stop()
        # A rejected telemetry message and a stored one, from a real device over MQTT.
        with HubClient(hub.http_url, token=hub.admin.token) as admin:
            device = admin.create_device(hub.admin.org_id, "meter")
            secret = admin.create_device_token(hub.admin.org_id, device.id).token
        meter = _device_client(hub, device.id, secret)
        try:
            _publish_qos1(meter, f"devices/{device.id}/datastream", b"not json")
            _publish_qos1(meter, f"device/{device.id}/telemetry/temperature", b"20.5")
        finally:
            meter.disconnect()
            meter.loop_stop()
        # HTTP requests: a routed one and one that matches no route; a failed login and an unknown API key.
        with hub.http(hub.admin.token) as http:
            assert http.get(f"/api/v1/organizations/{hub.admin.org_id}/users").status_code == 200
            assert http.get("/no/such/path/4711").status_code == 404
        with hub.http() as anonymous:
            login = {"email": "nobody@example.com", "password": "wrong password"}
            assert anonymous.post("/api/v1/auth/login", json=login).status_code == 401
        with hub.http(api_key="mqh_mqtt_" + "q" * 40) as stranger:
            assert stranger.get("/topics").status_code == 401

        users_route = {"method": "GET", "route": "/api/v1/organizations/{org_id}/users"}

        def settled() -> Samples | None:
            after = scrape(url, METRICS_TOKEN)
            http_done = _moved(
                before, after, "mqtthub_http_requests_total", status="404", method="GET", route="unmatched"
            )
            return after if http_done >= 1 else None

        after = wait_for(settled, "the HTTP requests counted")
        assert _moved(before, after, "mqtthub_mqtt_connections_refused_total", reason="not_authorized") == 1
        assert _moved(before, after, "mqtthub_mqtt_auth_checks_total", result="unknown_token") == 1
        assert _moved(before, after, "mqtthub_mqtt_auth_checks_total", result="accepted") == 2
        assert _moved(before, after, "mqtthub_mqtt_auth_accepted_total", kind="device") == 1
        assert _moved(before, after, "mqtthub_auth_checks_total", kind="mqtt", result="refused") == 1
        assert _moved(before, after, "mqtthub_auth_checks_total", kind="password", result="refused") == 1
        assert _moved(before, after, "mqtthub_auth_checks_total", kind="api_token", result="refused") == 1
        assert _moved(before, after, "mqtthub_auth_checks_total", kind="session_token", result="accepted") >= 1
        assert _moved(before, after, "mqtthub_mqtt_connections_accepted_total") == 2
        assert _moved(before, after, "mqtthub_mqtt_messages_dropped_total", reason="unauthorized") == 1
        assert _moved(before, after, "mqtthub_mqtt_messages_received_total") == 3
        assert _moved(before, after, "mqtthub_telemetry_rejected_total", reason="payload") == 1
        assert _moved(before, after, "mqtthub_telemetry_stored_total", kind="telemetry") == 1
        assert _moved(before, after, "mqtthub_telemetry_batch_size_count") >= 2
        assert _moved(before, after, "mqtthub_telemetry_commit_seconds_count") >= 2
        assert _moved(before, after, "mqtthub_telemetry_commit_seconds_sum") > 0
        assert value(after, "mqtthub_telemetry_writer_state", state="running") == 1
        assert value(after, "mqtthub_telemetry_writes_failing") == 0
        assert value(after, "mqtthub_telemetry_queue_capacity") == hub.hub.settings.telemetry_queue_size
        assert _moved(before, after, "mqtthub_http_requests_total", status="200", **users_route) == 1
        assert _moved(before, after, "mqtthub_http_request_duration_seconds_count", **users_route) == 1
        assert _moved(before, after, "mqtthub_http_request_duration_seconds_bucket", le="+Inf", **users_route) == 1
        # Labels carry route templates, never raw paths, device ids or topics.
        text = httpx.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30).text
        for raw in (hub.admin.org_id, device.id, "/no/such/path", "denied/x"):
            assert raw not in text


def test_metrics_on_their_own_port_and_off(tmp_path: Path) -> None:
    (tmp_path / "own").mkdir()
    (tmp_path / "off").mkdir()
    with threaded_hub(tmp_path / "own", metrics_port=0, metrics_organization_labels=True) as hub:
        address = hub.hub.metrics_address
        assert address is not None
        assert httpx.get(hub.http_url + "/metrics", timeout=30).status_code == 404
        app = paho_client(hub.mqtt(hub.call(api_token(hub.admin))))
        try:
            samples = scrape(f"http://{address[0]}:{address[1]}/metrics")
        finally:
            app.disconnect()
            app.loop_stop()
        assert value(samples, "mqtthub_mqtt_session_queue_capacity") == hub.hub.settings.max_queued_messages
        assert value(samples, "mqtthub_organization_mqtt_connections", organization=hub.admin.org_id) == 1
        assert ("process_cpu_seconds_total", frozenset()) in samples
    with threaded_hub(tmp_path / "off", metrics_enabled=False) as hub:
        assert hub.hub.metrics_address is None
        assert httpx.get(hub.http_url + "/metrics", timeout=30).status_code == 404


def test_integration_messages_and_a_failing_action_show_up(tmp_path: Path) -> None:
    with threaded_hub(tmp_path, integration_reconnect_min=0.1, integration_reconnect_max=1.0) as hub:
        url = hub.http_url + "/metrics"
        token = hub.call(api_token(hub.admin))
        with hub.http(hub.admin.token) as admin:
            product = admin.post("/api/v1/products", json={"name": "orders"})
            assert product.status_code == 201, product.text
            base = f"/api/v1/products/{product.json()['id']}/mqtt-config"
            # The connector's external broker is the hub's own, reached over TCP like any other.
            broker = {"host": "127.0.0.1", "port": hub.mqtt_port, "use_tls": False, "username": token}
            topics = {"prefix": "apps", "pattern": "{application_id}/events", "use_shared": False, "qos": 1}
            configured = admin.put(base, json={"broker": broker | {"password": token}, "topics": topics})
            assert configured.status_code in (200, 201), configured.text
            actions = [{"type": "webhook", "url": "http://127.0.0.1:1/down", "retries": 0, "timeout": 2}]
            subscription = {"name": "order_created", "variables": {"application_id": "A1"}, "actions": actions}
            created = admin.post(f"{base}/subscriptions", json=subscription)
            assert created.status_code == 201, created.text

            def subscribed() -> bool:
                status = admin.get(f"{base}/status").json()
                return bool(status["connected"] and status["subscribed_topics_count"] == 1)

            wait_for(subscribed, "the connector subscribed")
        samples = scrape(url)
        assert value(samples, "mqtthub_integration_connectors", state="connected") == 1
        app = paho_client(hub.mqtt(token))
        try:
            _publish_qos1(app, "apps/A1/events", b'{"event": "order_created"}')
        finally:
            app.disconnect()
            app.loop_stop()

        def failed() -> Samples | None:
            after = scrape(url)
            return after if value(after, "mqtthub_integration_actions_total", type="webhook", result="failed") else None

        after = wait_for(failed, "the failed webhook counted")
        assert value(after, "mqtthub_integration_actions_total", type="webhook", result="failed") == 1
        assert value(after, "mqtthub_integration_messages_received_total") == 1


def test_session_queue_depth_and_queue_full_drops(tmp_path: Path) -> None:
    with threaded_hub(tmp_path, max_queued_messages=5) as hub:
        token = hub.call(api_token(hub.admin))
        offline = paho.Client(CallbackAPIVersion.VERSION2, client_id="offline-reader", clean_session=False)
        offline.username_pw_set(token, token)
        subscribed = threading.Event()
        offline.on_subscribe = lambda *_: subscribed.set()
        offline.connect("127.0.0.1", hub.mqtt_port)
        offline.loop_start()
        offline.subscribe("queue/#", qos=1)
        assert subscribed.wait(30)
        offline.disconnect()
        offline.loop_stop()
        sender = paho_client(hub.mqtt(token))
        try:
            for n in range(8):
                _publish_qos1(sender, f"queue/{n}", b"x")
        finally:
            sender.disconnect()
            sender.loop_stop()
        samples = scrape(hub.http_url + "/metrics")
        assert value(samples, "mqtthub_mqtt_messages_dropped_total", reason="queue_full") == 3
        assert value(samples, "mqtthub_mqtt_session_queue_max_messages") == 5
        assert value(samples, "mqtthub_mqtt_session_queue_messages") == 5
        assert value(samples, "mqtthub_mqtt_session_queue_capacity") == 5
