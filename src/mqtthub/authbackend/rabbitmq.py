"""RabbitMQ's ``rabbitmq_auth_backend_http`` contract, for its MQTT plugin.

RabbitMQ asks four paths, as form-encoded POSTs or GETs with a query string, and reads a plain-text answer:
``allow``, ``deny`` (or ``allow <tags>``, which the hub never needs: its clients get no management tags).

- ``/user``: ``username``, ``password`` and, from the MQTT plugin, ``vhost`` and ``client_id``. A deny is
  CONNACK 4 (bad user name or password).
- ``/vhost``: ``username``, ``vhost``, ``ip``. A deny is CONNACK 5.
- ``/resource``: ``username``, ``vhost``, ``resource`` (``queue`` or ``exchange``), ``name`` and ``permission``
  (``configure``, ``write``, ``read``): the MQTT plugin's own subscription queues
  (``mqtt-subscription-<client id>qos<n>``) and the ``amq.topic`` exchange it publishes through.
- ``/topic``: the same, with ``routing_key`` and ``variable_map.client_id`` / ``.username`` / ``.vhost``. The
  routing key is the MQTT topic with ``/`` and ``.`` swapped and ``+`` written ``*``; ``write`` is a publish,
  ``read`` a subscription.

Organizations stay apart by RabbitMQ's own tenancy: one vhost per organization, named by its short id, which
clients select by logging in as ``<short id>:<user name>``. A client may use only its own organization's vhost;
inside it, topics are as the client writes them, and answered as the embedded broker answers them. A platform
administrator may use any organization's vhost and is answered as on the embedded broker's global namespace for
that organization's topics (``org/<short id>/…``), so the operator's ``global`` rules apply.
"""

from __future__ import annotations

from mqtthub.authbackend.common import Answer, AuthBackend, required, text_answer
from mqtthub.broker.hooks import Action, Principal
from mqtthub.rabbitmq.topics import topic_of
from mqtthub.tenancy import namespace_prefix

CONTRACT = "rabbitmq"

TOPIC_EXCHANGE = "amq.topic"
SUBSCRIPTION_QUEUE_PREFIX = "mqtt-subscription-"
_TOPIC_PERMISSIONS = {"write": Action.PUBLISH, "read": Action.SUBSCRIBE}


def _answer(allowed: bool) -> Answer:
    return text_answer("allow" if allowed else "deny")


def _in_vhost(principal: Principal | None, vhost: str | None) -> bool:
    if principal is None:
        return False
    if vhost is None or principal.kind == "admin":
        return True
    return principal.mountpoint == namespace_prefix(vhost)


async def _principal(backend: AuthBackend, caller: str, fields: dict[str, str]) -> Principal | None:
    address = fields.get("ip") or caller
    client_id = fields.get("client_id") or fields.get("variable_map.client_id", "")
    principal = await backend.principal_of(required(fields, "username"), client_id, address)
    return principal if _in_vhost(principal, fields.get("vhost")) else None


async def user(backend: AuthBackend, caller: str, fields: dict[str, str]) -> Answer:
    """May these credentials log in (to this vhost, when the MQTT plugin names one)."""
    principal = await backend.login(
        required(fields, "username"), fields.get("password", ""), fields.get("client_id", ""), caller
    )
    allowed = _in_vhost(principal, fields.get("vhost"))
    backend.count(CONTRACT, "user", allowed)
    return _answer(allowed)


async def vhost(backend: AuthBackend, caller: str, fields: dict[str, str]) -> Answer:
    """May this client use this vhost: only its organization's."""
    required(fields, "vhost")
    allowed = await _principal(backend, caller, fields) is not None
    backend.count(CONTRACT, "vhost", allowed)
    return _answer(allowed)


async def resource(backend: AuthBackend, caller: str, fields: dict[str, str]) -> Answer:
    """The MQTT plugin's own queues and the topic exchange; nothing else."""
    kind, name, permission = required(fields, "resource"), required(fields, "name"), required(fields, "permission")
    allowed = (kind == "queue" and name.startswith(SUBSCRIPTION_QUEUE_PREFIX)) or (
        kind == "exchange" and name == TOPIC_EXCHANGE and permission in _TOPIC_PERMISSIONS
    )
    allowed = allowed and await _principal(backend, caller, fields) is not None
    backend.count(CONTRACT, "resource", allowed)
    return _answer(allowed)


async def topic(backend: AuthBackend, caller: str, fields: dict[str, str]) -> Answer:
    """A publish (``write``) or subscription (``read``) on the topic exchange, as the embedded broker answers it."""
    action = _TOPIC_PERMISSIONS.get(required(fields, "permission"))
    routing_key = required(fields, "routing_key")
    principal = await _principal(backend, caller, fields)
    allowed = principal is not None and action is not None and required(fields, "name") == TOPIC_EXCHANGE
    if allowed and principal is not None and action is not None:
        name = topic_of(routing_key)
        if principal.kind == "admin":
            name = namespace_prefix(required(fields, "vhost")) + name
        allowed = await backend.decide(principal, action, name)
    backend.count(CONTRACT, "topic", allowed)
    return _answer(allowed)


ROUTES = (
    ("/user", "user", user),
    ("/vhost", "vhost", vhost),
    ("/resource", "resource", resource),
    ("/topic", "topic", topic),
)
"""Path (under the contract's prefix), check name and handler of each endpoint."""
