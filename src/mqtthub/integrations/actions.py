"""Running the actions of an event subscription: e-mail, webhook, republish, store, HTTP and domain calls.

Each action either runs (returns True), is skipped because its condition does not hold
(returns False), or fails with :class:`ActionError`, whose message goes to the failure log.
Failures never propagate further: the dispatcher records them and goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib
import httpx
from sqlalchemy import select

from mqtthub.config import Settings
from mqtthub.db import Database
from mqtthub.integrations.action_specs import (
    ActionSpec,
    DomainAction,
    EmailAction,
    HttpAction,
    RepublishAction,
    StoreAction,
    WebhookAction,
)
from mqtthub.integrations.conditions import Condition
from mqtthub.integrations.templates import render, render_json
from mqtthub.models import EmailTemplate, HistoryMessage
from mqtthub.models.messaging import MAX_RECORDED_TOPIC_LENGTH

logger = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class ActionError(Exception):
    """An action failed; the message says why (never containing secrets)."""


class LocalPublisher(Protocol):
    """The part of the embedded broker a republish needs (``mqtthub.broker.handle.BrokerHandle`` fits)."""

    async def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> None:
        """Publish to a full internal topic."""
        ...


class RemotePublisher(Protocol):
    """Publishing back to the product's external broker."""

    def __call__(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        """Publish over the product's connector."""
        ...


@dataclass(frozen=True)
class EventContext:
    """One message matched by one subscription: what conditions and templates see."""

    product_id: str
    organization_id: str
    organization_short_id: str
    subscription_id: str
    subscription_name: str
    topic: str
    payload: bytes
    qos: int
    retain: bool
    received_at: datetime
    data: dict[str, Any]

    def variables(self) -> dict[str, Any]:
        """Names for conditions and templates: the payload's top-level keys, ``event``, ``topic``, ``payload``."""
        text = self.payload.decode("utf-8", errors="replace")
        return {
            **self.data,
            "event": self.data,
            "topic": self.topic,
            "payload": text,
            "subscription": {"id": self.subscription_id, "name": self.subscription_name},
        }


class ActionRunner:
    """Executes actions against real targets: SMTP, HTTP, the embedded broker, the database.

    Args:
        database: Where templates are read and ``store`` writes the message history.
        settings: SMTP settings and the domain-actions URL.
        http: The shared HTTP client for webhooks and domain calls.
        local: The embedded broker, or None when it is not running.
        retry_backoff: First delay between HTTP retries, doubled each time.
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        http: httpx.AsyncClient,
        local: LocalPublisher | None,
        *,
        retry_backoff: float = 0.5,
    ) -> None:
        self._database = database
        self._settings = settings
        self._http = http
        self._local = local
        self._retry_backoff = retry_backoff

    async def run(self, action: ActionSpec, event: EventContext, remote: RemotePublisher | None) -> bool:
        """Run ``action`` for ``event``; False when its condition does not hold.

        Raises:
            ActionError: the action failed.
        """
        variables = event.variables()
        if action.condition is not None and not Condition(action.condition).evaluate(variables):
            return False
        try:
            if isinstance(action, EmailAction):
                await self._email(action, event, variables)
            elif isinstance(action, WebhookAction):
                body = render_json(action.body, variables) if action.body is not None else event.data
                await self._request(action.method, action.url, action.headers, variables, json_body=body, spec=action)
            elif isinstance(action, HttpAction):
                await self._http_call(action, variables)
            elif isinstance(action, RepublishAction):
                await self._republish(action, event, variables, remote)
            elif isinstance(action, StoreAction):
                await self._store(event)
            else:
                await self._domain(action, variables)
        except ActionError:
            raise
        except Exception as exc:  # a template error, an unreachable server, a full mailbox: all are failures
            raise ActionError(f"{type(exc).__name__}: {exc}") from exc
        return True

    async def _email(self, action: EmailAction, event: EventContext, variables: dict[str, Any]) -> None:
        settings = self._settings
        if not settings.smtp_host:
            raise ActionError("e-mail is not configured (set MQTTHUB_SMTP_HOST)")
        async with self._database.session() as session:
            template = await session.scalar(
                select(EmailTemplate).where(
                    EmailTemplate.product_id == event.product_id, EmailTemplate.name == action.template
                )
            )
        if template is None:
            raise ActionError(f"e-mail template {action.template!r} does not exist")
        recipients = [render(item, variables).strip() for item in (action.to or template.recipients)]
        recipients = [item for item in recipients if item]
        if not recipients:
            raise ActionError(f"e-mail template {action.template!r} has no recipients")
        message = EmailMessage()
        message["From"] = settings.smtp_from
        message["To"] = ", ".join(recipients)
        message["Subject"] = render(template.subject, variables).strip()
        message.set_content(render(template.body, variables))
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout,
        )

    async def _http_call(self, action: HttpAction, variables: dict[str, Any]) -> None:
        params = render_json(action.params, variables)
        if action.method in ("GET", "DELETE"):
            query = {key: value if isinstance(value, str) else json.dumps(value) for key, value in params.items()}
            await self._request(action.method, action.url, action.headers, variables, params=query, spec=action)
        else:
            await self._request(action.method, action.url, action.headers, variables, json_body=params, spec=action)

    async def _domain(self, action: DomainAction, variables: dict[str, Any]) -> None:
        base = self._settings.integration_domain_actions_url
        if not base:
            raise ActionError(f"domain action {action.type!r} needs MQTTHUB_INTEGRATION_DOMAIN_ACTIONS_URL")
        url = f"{base.rstrip('/')}/{action.type}"
        await self._send("POST", url, {}, json_body=render_json(action.params, variables), timeout_s=10.0)

    async def _request(
        self,
        method: str,
        url_template: str,
        header_templates: dict[str, str],
        variables: dict[str, Any],
        *,
        spec: WebhookAction | HttpAction,
        json_body: Any = None,
        params: dict[str, str] | None = None,
    ) -> None:
        url = render(url_template, variables)
        headers = {name: render(value, variables) for name, value in header_templates.items()}
        await self._send(
            method, url, headers, json_body=json_body, params=params, timeout_s=spec.timeout, retries=spec.retries
        )

    async def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        timeout_s: float,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        retries: int = 2,
    ) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    method, url, headers=headers, json=json_body, params=params, timeout=timeout_s
                )
            except httpx.TransportError as exc:
                error = f"{method} {_safe_url(url)} failed: {type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    return response
                error = f"{method} {_safe_url(url)} answered HTTP {response.status_code}"
                if response.status_code not in _RETRY_STATUS:
                    raise ActionError(error)
            if attempt >= retries:
                raise ActionError(f"{error} (after {attempt + 1} attempts)")
            await asyncio.sleep(self._retry_backoff * 2**attempt)
            attempt += 1

    async def _republish(
        self,
        action: RepublishAction,
        event: EventContext,
        variables: dict[str, Any],
        remote: RemotePublisher | None,
    ) -> None:
        topic = render(action.topic, variables).strip()
        if not topic or "+" in topic or "#" in topic:
            raise ActionError(f"the rendered topic {topic!r} is not a topic name")
        if action.payload is None:
            payload = event.payload
        elif isinstance(action.payload, str):
            payload = render(action.payload, variables).encode()
        else:
            payload = json.dumps(render_json(action.payload, variables), separators=(",", ":")).encode()
        if action.target == "remote":
            if remote is None:
                raise ActionError("the product's remote broker is not connected")
            remote(topic, payload, qos=action.qos, retain=action.retain)
            return
        if self._local is None:
            raise ActionError("the embedded broker is not running")
        await self._local.publish(
            f"org/{event.organization_short_id}/{topic}", payload, qos=action.qos, retain=action.retain
        )

    async def _store(self, event: EventContext) -> None:
        """Into the organization's message history, where the messaging API (``GET /messages``) finds it."""
        if len(event.topic) > MAX_RECORDED_TOPIC_LENGTH:
            raise ActionError(f"topic longer than {MAX_RECORDED_TOPIC_LENGTH} characters cannot be stored")
        async with self._database.session() as session:
            session.add(
                HistoryMessage(
                    organization_id=event.organization_id,
                    topic=event.topic,
                    payload=event.payload,
                    qos=event.qos,
                    retain=event.retain,
                    received_at=event.received_at,
                )
            )


def _safe_url(url: str) -> str:
    """The URL without its query string and user info, which may carry secrets."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(query=None, userinfo=b""))
