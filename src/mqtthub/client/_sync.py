"""``HubClient``: the synchronous SDK client."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from mqtthub.client import _calls as calls
from mqtthub.client._calls import Call, Payload
from mqtthub.client._exceptions import ClientStateError
from mqtthub.client._models import (
    Health,
    MessagePage,
    Organization,
    OrganizationList,
    PublishResult,
    ServiceInfo,
    Session,
    Stats,
    SubscriptionResult,
    TopicList,
)

T = TypeVar("T")


class HubClient:
    """A synchronous client of a running hub, over httpx.

    Use it as a context manager (``with HubClient(url, api_key=...) as hub:``) or call
    :meth:`close` when done. Every method returns a typed model or raises a
    :class:`~mqtthub.client.HubError`.

    Args:
        base_url: The hub's HTTP address; defaults to ``MQTTHUB_URL`` or ``http://localhost:8000``.
        api_key: An MQTT API token of the organization, sent as ``X-API-Key``.
        token: A session token (from :meth:`login`) or an MQTT API token, sent as a bearer token.
        timeout: Seconds for each request.
        transport: An httpx transport (for example to route requests elsewhere in tests).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = calls.base_url_of(base_url)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=calls.auth_headers(api_key, token),
            timeout=timeout,
            transport=transport,
        )
        self._entered = False

    def __enter__(self) -> Self:
        if self._entered or self._http.is_closed:
            raise ClientStateError("this client was already opened; create a new one")
        self._entered = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        self._http.close()

    def _run(self, call: Call[T]) -> T:
        if self._http.is_closed:
            raise ClientStateError("this client is closed")
        try:
            response = self._http.request(call.method, call.path, params=call.params or None, json=call.json)
        except httpx.TransportError as exc:
            raise calls.connection_error(exc, self.base_url) from exc
        return calls.read(call, response)

    # --- service -------------------------------------------------------------------------------------

    def get_service_info(self) -> ServiceInfo:
        """``GET /``: name, version and links."""
        return self._run(calls.service_info())

    def health_check(self) -> Health:
        """``GET /health``; a degraded hub raises :class:`~mqtthub.client.ServiceUnavailableError`."""
        return self._run(calls.health())

    # --- messaging -----------------------------------------------------------------------------------

    def publish(self, topic: str, payload: Payload = "", *, qos: int = 0, retain: bool = False) -> PublishResult:
        """Publish to ``topic``; bytes go as base64, other non-strings as JSON text."""
        return self._run(calls.publish(topic, payload, qos, retain))

    def subscribe(self, topic: str, *, qos: int = 0) -> SubscriptionResult:
        """Have the hub record the messages of a topic filter (``+``/``#`` allowed)."""
        return self._run(calls.subscribe(topic, qos))

    def unsubscribe(self, topic: str) -> SubscriptionResult:
        """Stop recording a topic filter."""
        return self._run(calls.unsubscribe(topic))

    def get_messages(
        self,
        topic: str | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> MessagePage:
        """A page of the history, newest first, optionally for a topic or filter and a time range."""
        return self._run(calls.messages(topic, limit, offset, since, until))

    def get_topics(self) -> TopicList:
        """Topics of the history and the recorded filters."""
        return self._run(calls.topics())

    def get_stats(self) -> Stats:
        """Message statistics of the caller's organization."""
        return self._run(calls.stats())

    # --- identity ------------------------------------------------------------------------------------

    def login(self, email: str, password: str) -> Session:
        """Log in; later calls of this client send the session token."""
        session = self._run(calls.login(email, password))
        self._http.headers["Authorization"] = f"Bearer {session.token}"
        return session

    def list_organizations(self) -> OrganizationList:
        """Organizations visible to the logged-in user."""
        return self._run(calls.organizations())

    def get_organization(self, org_id: str) -> Organization:
        """One organization."""
        return self._run(calls.organization(org_id))

    # --- anything else -------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any:
        """Call any endpoint; returns the decoded JSON body (``None`` for an empty one)."""
        if self._http.is_closed:
            raise ClientStateError("this client is closed")
        call = calls.raw(method, path, params, json)
        try:
            response = self._http.request(call.method, call.path, params=call.params or None, json=call.json)
        except httpx.TransportError as exc:
            raise calls.connection_error(exc, self.base_url) from exc
        calls.read(call, response)
        return response.json() if response.content else None
