"""Document 004's examples against a real hub: the same requests, with only the base URL and an auth header added."""

from __future__ import annotations

import asyncio
import json
import threading

import paho.mqtt.client as paho
from websockets.asyncio.client import connect

from tests.integration.messaging.conftest import wait_for
from tests.support.access import api_token
from tests.support.paho_clients import paho_client
from tests.support.served import ThreadedHub


def test_publish_example(shared_hub: ThreadedHub) -> None:
    with shared_hub.http(shared_hub.admin.token) as client:
        response = client.post(
            "/publish",
            headers={"Content-Type": "application/json"},
            content=json.dumps(
                {"topic": "factory/line1/press1/temperature", "payload": "45.2", "qos": 1, "retain": False}
            ),
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert (body["topic"], body["qos"], body["retain"], body["payload_size"]) == (
        "factory/line1/press1/temperature",
        1,
        False,
        4,
    )


def test_subscribe_then_history_examples(shared_hub: ThreadedHub) -> None:
    with shared_hub.http(shared_hub.admin.token) as client:
        response = client.post("/subscribe", json={"topic": "factory/+/+/temperature", "qos": 1})
        assert response.status_code == 200, response.text
        assert response.json()["success"] is True
        for line, value in (("line1", "45.2"), ("line2", "51.0"), ("line1", "46.0")):
            published = client.post(
                "/publish", json={"topic": f"factory/{line}/press1/temperature", "payload": value, "qos": 1}
            )
            assert published.status_code == 200
        client.post("/publish", json={"topic": "factory/line1/press1/pressure", "payload": "3"})

        everything = client.get("/messages").json()
        assert set(everything) >= {"messages", "count", "total", "limit", "offset"}
        values = [m["payload"] for m in everything["messages"]]
        assert values[:3] == ["46.0", "51.0", "45.2"]  # newest first; pressure is not recorded
        assert set(everything["messages"][0]) >= {"topic", "payload", "qos", "retain", "timestamp"}

        one_topic = client.get("/messages?topic=factory/line1/press1/temperature").json()
        assert [m["payload"] for m in one_topic["messages"]] == ["46.0", "45.2"]
        assert client.get("/messages", params={"topic": "factory/+/press1/#"}).json()["total"] == 3

        page = client.get("/messages?limit=50&offset=0").json()
        assert (page["limit"], page["offset"], page["count"]) == (50, 0, 3)
        assert client.get("/messages?limit=1&offset=1").json()["messages"][0]["payload"] == "51.0"


def test_stats_and_health_examples(shared_hub: ThreadedHub) -> None:
    with shared_hub.http(shared_hub.admin.token) as client:
        client.post("/subscribe", json={"topic": "stats/#"})
        client.post("/publish", json={"topic": "stats/a", "payload": "1"})
        stats = client.get("/stats")
        assert stats.status_code == 200
        body = stats.json()
        for key in (
            "total_messages",
            "unique_topics",
            "recent_messages",
            "topic_counts",
            "mqtt_connected",
            "websocket_connections",
            "uptime",
        ):
            assert key in body, key
        assert body["topic_counts"]["stats/a"] == 1
        assert body["mqtt_connected"] is True
        assert body["total_messages"] == sum(body["topic_counts"].values())
    health = shared_hub.http().get("/health")
    assert health.status_code == 200
    report = health.json()
    assert report["status"] == "healthy"
    assert report["mqtt_connected"] is True
    for key in ("uptime", "message_count", "active_subscriptions", "websocket_connections", "version", "components"):
        assert key in report, key
    assert report["message_count"] >= 1
    assert report["active_subscriptions"] >= 1
    info = shared_hub.http().get("/").json()
    assert (info["service"], info["status"]) == ("mqtthub", "running")


def test_document_001_health_check_under_the_api_prefix(shared_hub: ThreadedHub) -> None:
    """Document 001 checks health with ``curl http://localhost:3000/api/v1/health``: the same report as ``/health``."""
    prefixed = shared_hub.http().get("/api/v1/health")
    assert prefixed.status_code == 200
    report = prefixed.json()
    assert report["status"] == "healthy"
    assert set(report) == set(shared_hub.http().get("/health").json())


def test_mqtt_message_shows_up_in_history_and_on_the_websocket(shared_hub: ThreadedHub) -> None:
    org = shared_hub.admin
    token = shared_hub.call(api_token(org))
    with shared_hub.http(api_key=token) as client:
        assert client.post("/subscribe", json={"topic": "sensors/+/temperature"}).status_code == 200

    received: list[dict[str, object]] = []

    async def listen(ready: threading.Event) -> None:
        # As in the document's JavaScript example, with the token in the query instead of a header.
        async with connect(f"{shared_hub.ws_url}?token={token}") as ws:
            hello = json.loads(await ws.recv())
            assert hello["type"] == "connected"
            assert "sensors/+/temperature" in hello["subscriptions"]
            await ws.send("ping")
            assert await ws.recv() == "pong"
            ready.set()
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if frame["type"] == "message":
                    received.append(frame)
                    return

    ready = threading.Event()
    listener = threading.Thread(target=lambda: asyncio.run(listen(ready)))
    listener.start()
    assert ready.wait(30)
    app = paho_client(shared_hub.mqtt(token))
    app.publish("sensors/line1/temperature", b"21.5", qos=1).wait_for_publish(30)
    listener.join(60)
    app.loop_stop()
    app.disconnect()
    assert received, "no message on /ws"
    assert received[0]["topic"] == "sensors/line1/temperature"
    assert received[0]["payload"] == "21.5"
    with shared_hub.http(api_key=token) as client:
        page = wait_for(
            lambda: client.get("/messages", params={"topic": "sensors/line1/temperature"}).json()["messages"],
            "the MQTT message in /messages",
        )
    assert page[0]["payload"] == "21.5"
    assert page[0]["qos"] == 1


def test_rest_publish_reaches_mqtt_subscribers_inside_the_namespace(shared_hub: ThreadedHub) -> None:
    token = shared_hub.call(api_token(shared_hub.admin))
    got: list[paho.MQTTMessage] = []
    arrived = threading.Event()

    def on_message(message: paho.MQTTMessage) -> None:
        got.append(message)
        arrived.set()

    app = paho_client(shared_hub.mqtt(token), on_message)
    subscribed = threading.Event()
    app.on_subscribe = lambda *args: subscribed.set()
    app.subscribe("alerts/#", qos=1)
    assert subscribed.wait(30)
    with shared_hub.http(api_key=token) as client:
        response = client.post("/publish", json={"topic": "alerts/press1/temperature", "payload": {"level": 3}})
        assert response.status_code == 200
    assert arrived.wait(30)
    app.loop_stop()
    app.disconnect()
    assert got[0].topic == "alerts/press1/temperature"  # the client sees its topics without the prefix
    assert json.loads(got[0].payload) == {"level": 3}
