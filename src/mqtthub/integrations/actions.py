"""Running the actions of an event subscription: e-mail, webhook, republish, store, HTTP and domain calls.

Each action either runs (returns True), is skipped because its condition does not hold
(returns False), or fails with :class:`ActionError`, whose message goes to the failure log.
Failures never propagate further: the dispatcher records them and goes on.

An action's condition and templates are evaluated together, in one round trip to the
expression workers (:mod:`mqtthub.integrations.expressions`), never on the event loop.
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
from mqtthub.integrations.expressions import ExpressionError, ExpressionPool, Job, Kind
from mqtthub.integrations.outbound import OutboundFence, OutboundRefused
from mqtthub.models import EmailTemplate, HistoryMessage
from mqtthub.models.messaging import MAX_RECORDED_TOPIC_LENGTH
from mqtthub.tenancy import namespace_prefix

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
    event_json: bytes
    """The event as a JSON object: the payload itself when it is one (never parsed on the event loop)."""

    def job(self, condition: str | None, items: tuple[tuple[Kind, Any], ...]) -> Job:
        """An evaluation of ``condition`` and ``items`` against this message (``expressions.event_variables``)."""
        subscription = {"id": self.subscription_id, "name": self.subscription_name}
        return Job(self.payload.decode("utf-8", errors="replace"), self.topic, subscription, condition, items)


class ActionRunner:
    """Executes actions against real targets: SMTP, HTTP, the embedded broker, the database.

    Args:
        database: Where templates are read and ``store`` writes the message history.
        settings: SMTP settings and the domain-actions URL.
        http: The shared HTTP client for webhooks and domain calls.
        local: The embedded broker, or None when it is not running.
        expressions: Where conditions and templates are evaluated.
        fence: Where e-mail may be sent (HTTP goes through ``http``, whose transport the fence built).
        retry_backoff: First delay between HTTP retries, doubled each time.
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        http: httpx.AsyncClient,
        local: LocalPublisher | None,
        expressions: ExpressionPool,
        fence: OutboundFence,
        *,
        retry_backoff: float = 0.5,
    ) -> None:
        self._fence = fence
        self._expressions = expressions
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
        try:
            if isinstance(action, EmailAction):
                return await self._email(action, event)
            if isinstance(action, WebhookAction | HttpAction):
                return await self._http_call(action, event)
            if isinstance(action, RepublishAction):
                return await self._republish(action, event, remote)
            if isinstance(action, StoreAction):
                if await self._evaluate(event, action.condition) is None:
                    return False
                await self._store(event)
                return True
            return await self._domain(action, event)
        except ActionError:
            raise
        except Exception as exc:  # an unreachable server, a full mailbox: all are failures
            raise ActionError(f"{type(exc).__name__}: {exc}") from exc

    async def _evaluate(self, event: EventContext, condition: str | None, *items: tuple[Kind, Any]) -> list[Any] | None:
        """The rendered ``items``, or None when ``condition`` does not hold."""
        if condition is None and not items:
            return []
        try:
            return await self._expressions.evaluate(event.job(condition, items))
        except ExpressionError as exc:
            raise ActionError(f"condition or template failed: {exc}") from None

    async def _email(self, action: EmailAction, event: EventContext) -> bool:
        settings = self._settings
        if action.condition is not None and await self._evaluate(event, action.condition) is None:
            return False  # checked first: the template is read only for e-mails that are sent
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
        to = action.to or template.recipients
        texts = [*to, template.subject, template.body]
        rendered = await self._evaluate(event, None, *(("text", text) for text in texts))
        assert rendered is not None
        *recipients, subject, body = (str(value) for value in rendered)
        recipients = [item.strip() for item in recipients if item.strip()]
        if not recipients:
            raise ActionError(f"e-mail template {action.template!r} has no recipients")
        message = EmailMessage()
        message["From"] = settings.smtp_from
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject.strip()
        message.set_content(body)
        try:
            async with asyncio.timeout(settings.smtp_timeout):
                sock = await self._fence.connect_socket(settings.smtp_host, settings.smtp_port)
        except OutboundRefused as exc:
            raise ActionError(f"SMTP server {exc}") from None
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            sock=sock,
            username=settings.smtp_username,
            password=settings.smtp_password,
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout,
        )
        return True

    async def _http_call(self, action: WebhookAction | HttpAction, event: EventContext) -> bool:
        """A webhook (templated body, the event when unset) or an ``http`` call (params as body or query)."""
        content: Any = None
        body = action.body if isinstance(action, WebhookAction) else action.params
        names = list(action.headers)
        templates: list[tuple[Kind, Any]] = [("text", action.url), *(("text", action.headers[name]) for name in names)]
        if body is not None:
            templates.append(("json", body))
        rendered = await self._evaluate(event, action.condition, *templates)
        if rendered is None:
            return False
        url, headers = str(rendered[0]), dict(zip(names, map(str, rendered[1 : 1 + len(names)]), strict=True))
        query: dict[str, str] | None = None
        if isinstance(action, HttpAction) and action.method in ("GET", "DELETE"):
            params = rendered[-1]
            query = {key: value if isinstance(value, str) else json.dumps(value) for key, value in params.items()}
        elif body is not None:
            content = _json_bytes(rendered[-1])
        else:
            content = event.event_json  # a webhook without a body sends the event
        await self._send(
            action.method,
            url,
            headers,
            content=content,
            params=query,
            timeout_s=action.timeout,
            retries=action.retries,
        )
        return True

    async def _domain(self, action: DomainAction, event: EventContext) -> bool:
        base = self._settings.integration_domain_actions_url
        if not base:
            raise ActionError(f"domain action {action.type!r} needs MQTTHUB_INTEGRATION_DOMAIN_ACTIONS_URL")
        rendered = await self._evaluate(event, action.condition, ("json", action.params))
        if rendered is None:
            return False
        url = f"{base.rstrip('/')}/{action.type}"
        await self._send("POST", url, {}, content=_json_bytes(rendered[0]), timeout_s=10.0)
        return True

    async def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        timeout_s: float,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        retries: int = 2,
    ) -> httpx.Response:
        """Send ``content`` (JSON) with retries after network errors, 429 and 5xx."""
        if content is not None and not any(name.lower() == "content-type" for name in headers):
            headers = {**headers, "Content-Type": "application/json"}
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    method, url, headers=headers, content=content, params=params, timeout=timeout_s
                )
            except OutboundRefused as exc:
                raise ActionError(f"{method} {_safe_url(url)} {exc}") from None
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
        remote: RemotePublisher | None,
    ) -> bool:
        templates: list[tuple[Kind, Any]] = [("text", action.topic)]
        if action.payload is not None:
            templates.append(("text", action.payload) if isinstance(action.payload, str) else ("json", action.payload))
        rendered = await self._evaluate(event, action.condition, *templates)
        if rendered is None:
            return False
        topic = str(rendered[0]).strip()
        if not topic or "+" in topic or "#" in topic:
            raise ActionError(f"the rendered topic {topic!r} is not a topic name")
        if action.payload is None:
            payload = event.payload
        elif isinstance(action.payload, str):
            payload = str(rendered[1]).encode()
        else:
            payload = json.dumps(rendered[1], separators=(",", ":")).encode()
        if action.target == "remote":
            if remote is None:
                raise ActionError("the product's remote broker is not connected")
            remote(topic, payload, qos=action.qos, retain=action.retain)
            return True
        if self._local is None:
            raise ActionError("the embedded broker is not running")
        await self._local.publish(
            namespace_prefix(event.organization_short_id) + topic, payload, qos=action.qos, retain=action.retain
        )
        return True

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


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _safe_url(url: str) -> str:
    """The URL without its query string and user info, which may carry secrets."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(query=None, userinfo=b""))
