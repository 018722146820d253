"""What every auth-backend contract shares: one identity answer, one topic answer, the request's fields, counters.

An external broker (Mosquitto with mosquitto-go-auth, EMQX, RabbitMQ) asks the hub two questions, each in its
own wire format: may this client log in, and may this client use this topic. :class:`AuthBackend` answers both
with the embedded broker's own hooks, so the answers cannot drift apart:

- a login goes through the :class:`~mqtthub.auth.broker_hooks.DatabaseAuthenticator` the embedded broker uses
  (the same credential cache, batching, refusal counters and slow-down of failing addresses);
- a topic check resolves the principal behind the user name (:mod:`mqtthub.authbackend.principals`), then asks
  the :class:`~mqtthub.auth.broker_hooks.TopicAuthorizer` (built-in rules, then the operator's rules file),
  after the checks the embedded broker makes itself: a valid topic name or filter, no publishing into
  ``$``-topics [MQTT-4.7.2-1], and a shared subscription decided by its filter [MQTT-4.8.2].

Brokers with a per-client namespace (EMQX's mountpoint, RabbitMQ's vhost) ask about topics as the client wrote
them, inside its organization. A broker without one (Mosquitto) asks about full topics: a client of an
organization then names its topics under ``org/<short id>/``, and anything outside that prefix is refused.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from mqtthub.auth.broker_hooks import DatabaseAuthenticator, TopicAuthorizer
from mqtthub.auth.credentials import API_TOKEN_PREFIX
from mqtthub.authbackend.principals import PrincipalDirectory
from mqtthub.broker.hooks import Action, ConnectInfo, Principal
from mqtthub.errors import AuthenticationRefused, MQTTHubError, UnavailableError, ValidationFailedError
from mqtthub.mqtt.reason_codes import ReasonCode
from mqtthub.mqtt.topics import fits_under, parse_shared, validate_topic_name
from mqtthub.observability.histogram import Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
"""Seconds per answered check (the target is under 5 ms)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer to a broker, whichever server writes it."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def json_answer(document: object, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    """A JSON answer (compact, as brokers read it)."""
    return Answer(status, "application/json", json.dumps(document, separators=(",", ":")).encode(), headers)


def text_answer(text: str) -> Answer:
    """A plain-text 200 answer (RabbitMQ's ``allow`` and ``deny``)."""
    return Answer(200, "text/plain; charset=utf-8", text.encode())


class AuthBackend:
    """The answers served to external brokers, and their counters for ``/metrics``.

    Args:
        authenticator: The embedded broker's authenticator (shared, so its cache and counters are too).
        authorizer: The embedded broker's authorizer (shared, so operator rules reloads apply at once).
        principals: Resolves a user name to its principal for topic checks.
    """

    def __init__(
        self, authenticator: DatabaseAuthenticator, authorizer: TopicAuthorizer, principals: PrincipalDirectory
    ) -> None:
        self._authenticator = authenticator
        self._authorizer = authorizer
        self.principals = principals
        self.checks: Counter[tuple[str, str, str]] = Counter()
        """Answered checks by ``(contract, check, result)``; result ``allow``, ``deny`` or ``error``."""
        self.refused_requests: Counter[str] = Counter()
        """Requests refused before any check, by reason (``network``, ``secret``)."""
        self.latency = Histogram(LATENCY_BUCKETS)
        """Seconds from a request's arrival to its answer."""

    async def login(self, username: str, password: str, client_id: str, address: str) -> Principal | None:
        """The principal of a client presenting these credentials, or None when the embedded broker would refuse it.

        ``address`` is the client's address when the broker sends it, else the broker's: failures are counted
        per address and repeated ones answered more slowly, as on the embedded broker.

        Raises:
            UnavailableError: the credentials cannot be checked now (password workers busy, database down).
        """
        info = ConnectInfo(
            client_id=client_id,
            username=username or None,
            password=password.encode() if password else None,
            protocol_level=4,
            listener="auth-backend",
            peer=f"{address}:0",
        )
        try:
            return await self._authenticator.authenticate(info)
        except AuthenticationRefused as exc:
            if exc.reason_code == ReasonCode.SERVER_BUSY:
                raise UnavailableError(exc.message) from None
            return None

    async def principal_of(self, username: str, client_id: str, address: str) -> Principal | None:
        """The principal of a client that logged in as ``username`` (topic checks carry no password).

        An API token is its own user name, and anonymous clients have none: both are logged in again (from the
        credential cache, normally), so a revoked token is refused here too. Devices and administrators are
        looked up by name (:class:`PrincipalDirectory`).

        Raises:
            UnavailableError: see :meth:`login`.
        """
        if not username or username.startswith(API_TOKEN_PREFIX):
            return await self.login(username, username, client_id, address)
        return await self.principals.resolve(username)

    async def may(
        self, username: str, client_id: str, address: str, action: Action, topic: str, *, full_topic: bool = False
    ) -> bool:
        """Whether the client logged in as ``username`` may publish to or subscribe with ``topic``.

        ``full_topic``: the topic includes the organization's prefix (brokers without a per-client namespace).
        """
        principal = await self.principal_of(username, client_id, address)
        return principal is not None and await self.decide(principal, action, topic, full_topic=full_topic)

    async def decide(self, principal: Principal, action: Action, topic: str, *, full_topic: bool = False) -> bool:
        """The embedded broker's answer for ``principal`` (see the module docstring); invalid topics are refused."""
        try:
            if action is Action.PUBLISH:
                validate_topic_name(topic)
            else:
                _, topic = parse_shared(topic)
        except MQTTHubError:
            return False
        if full_topic:
            if not topic.startswith(principal.mountpoint):
                return False
            topic = topic[len(principal.mountpoint) :]
            if not topic:
                return False
        if action is Action.PUBLISH and (topic.startswith("$") or not fits_under(principal.mountpoint, topic)):
            return False  # clients do not publish into the broker's "$" topics [MQTT-4.7.2-1]
        return await self._authorizer.authorize(principal, action, topic)

    def count(self, contract: str, check: str, allowed: bool | None) -> None:
        """Count one answer (``allowed`` None: the check could not be answered)."""
        result = "error" if allowed is None else "allow" if allowed else "deny"
        self.checks[(contract, check, result)] += 1

    def observe(self, started: float) -> None:
        """Record the latency of a request that started at ``started`` (``time.perf_counter()``)."""
        self.latency.observe(time.perf_counter() - started)


def required(fields: Mapping[str, str], name: str) -> str:
    """The value of a required field.

    Raises:
        ValidationFailedError: it is missing (400).
    """
    value = fields.get(name)
    if value is None:
        raise ValidationFailedError(f"the field {name!r} is required", field=name)
    return value
