"""Internal topics against RabbitMQ's vhosts and routing keys (the MQTT plugin's own translation)."""

from __future__ import annotations

import pytest

from mqtthub.rabbitmq.topics import DEFAULT_VHOST, internal_topic, routing_key, split_topic


@pytest.mark.parametrize(
    ("topic", "vhost", "inner"),
    [
        ("org/ab12cd34/devices/d1/status", "ab12cd34", "devices/d1/status"),
        ("org/ab12cd34/device/+/telemetry/#", "ab12cd34", "device/+/telemetry/#"),
        ("alerts/fire", DEFAULT_VHOST, "alerts/fire"),
        # Wildcards over organizations, or an organization level alone, name no single vhost.
        ("org/+/devices/#", DEFAULT_VHOST, "org/+/devices/#"),
        ("org/#", DEFAULT_VHOST, "org/#"),
        ("org/ab12cd34", DEFAULT_VHOST, "org/ab12cd34"),
    ],
)
def test_a_topic_lies_in_its_organization_s_vhost(topic: str, vhost: str, inner: str) -> None:
    assert split_topic(topic) == (vhost, inner)


@pytest.mark.parametrize(
    ("topic", "key"),
    [
        ("devices/d1/datastream", "devices.d1.datastream"),
        ("device/+/telemetry/#", "device.*.telemetry.#"),
        ("a", "a"),
        ("sensors/v1.2", "sensors.v1/2"),  # the MQTT plugin swaps "." and "/"
    ],
)
def test_routing_keys_translate_levels_and_wildcards(topic: str, key: str) -> None:
    assert routing_key(topic) == key


def test_a_routed_message_comes_back_as_the_internal_topic() -> None:
    assert internal_topic("ab12cd34", "devices.d1.status") == "org/ab12cd34/devices/d1/status"
    assert internal_topic(DEFAULT_VHOST, "alerts.fire") == "alerts/fire"
    for topic in ("org/ab12cd34/devices/d1/status", "alerts/fire", "org/ab12cd34/sensors/v1.2"):
        vhost, inner = split_topic(topic)
        assert internal_topic(vhost, routing_key(inner)) == topic
