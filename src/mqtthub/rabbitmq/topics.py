"""Between the hub's internal topics and RabbitMQ's vhosts and routing keys.

Each organization is a vhost named after its namespace id, so the internal topic
``org/ab12cd34/devices/d1/status`` is the routing key ``devices.d1.status`` on ``amq.topic`` in vhost ``ab12cd34``:
the same translation RabbitMQ's MQTT plugin makes for a client of that vhost: ``/`` and ``.`` swap places (a
``.`` inside a level travels as ``/`` and comes back as ``.``), ``+`` becomes ``*``, ``#`` stays. Topics outside an
organization's namespace go to the default vhost ``/``.
"""

from __future__ import annotations

from mqtthub.tenancy import ORG_PREFIX, namespace_prefix

_TO_ROUTING_KEY = str.maketrans({"/": ".", ".": "/", "+": "*"})
_FROM_ROUTING_KEY = str.maketrans({".": "/", "/": ".", "*": "+"})

DEFAULT_VHOST = "/"
"""The vhost of topics outside every organization's namespace."""


def vhost_of(short_id: str) -> str:
    """The vhost of the organization whose namespace id is ``short_id``."""
    return short_id


def split_topic(topic: str) -> tuple[str, str]:
    """The (vhost, topic inside it) of a full internal topic or filter.

    >>> split_topic("org/ab12cd34/devices/d1/status")
    ('ab12cd34', 'devices/d1/status')
    >>> split_topic("status/all")
    ('/', 'status/all')
    """
    levels = topic.split("/", 2)
    if len(levels) == 3 and levels[0] == ORG_PREFIX and levels[1] and "+" not in levels[1] and "#" not in levels[1]:
        return vhost_of(levels[1]), levels[2]
    return DEFAULT_VHOST, topic


def topic_of(routing_key: str) -> str:
    """The topic (or filter, for a binding key) inside its vhost that ``routing_key`` stands for.

    >>> topic_of("device.*.telemetry.#")
    'device/+/telemetry/#'
    >>> topic_of("sensors.v1/2")
    'sensors/v1.2'
    """
    return routing_key.translate(_FROM_ROUTING_KEY)


def internal_topic(vhost: str, routing_key: str) -> str:
    """The full internal topic of a message routed with ``routing_key`` in ``vhost``.

    >>> internal_topic("ab12cd34", "devices.d1.status")
    'org/ab12cd34/devices/d1/status'
    """
    topic = topic_of(routing_key)
    return topic if vhost == DEFAULT_VHOST else namespace_prefix(vhost) + topic


def routing_key(topic: str) -> str:
    """The ``amq.topic`` routing key (or binding key, for a filter) of a topic inside a vhost.

    >>> routing_key("device/+/telemetry/#")
    'device.*.telemetry.#'
    >>> routing_key("sensors/v1.2")
    'sensors.v1/2'
    """
    return topic.translate(_TO_ROUTING_KEY)
