"""Live messages: follow topic filters of the organization as messages arrive, and publish.

The page opens ``WS /ws`` (the messaging API's live stream; the session cookie is its credential) and sends
``{"action": "subscribe", "topic": …}`` for each filter the user adds, so what it shows is exactly what
``/ws`` lets the user read. Pausing, clearing and JSON pretty-printing happen in the browser
(``console.js``). Publishing goes through the same service, role gate and topic checks as ``POST /publish``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import OrgFrame, render
from mqtthub.errors import ValidationFailedError
from mqtthub.messaging.deps import MessagingDep
from mqtthub.messaging.namespace import OrgScope, check_topic_name
from mqtthub.web.limits import BodySize, body_size

router = APIRouter(prefix=PREFIX + "/orgs/{org_id}/live", route_class=ConsoleRoute, include_in_schema=False)


@router.get("", summary="Live messages")
async def live_page(request: Request, frame: OrgFrame) -> Response:
    """The live messages page."""
    return render(request, "live.html", {"frame": frame, "nav": "live"})


@router.post("/publish", summary="Publish a message")
@body_size(BodySize.MESSAGE)
async def publish(
    request: Request,
    frame: OrgFrame,
    service: MessagingDep,
    topic: Annotated[str, Form(min_length=1)],
    payload: Annotated[str, Form()] = "",
    qos: Annotated[int, Form(ge=0, le=2)] = 0,
    retain: Annotated[bool, Form()] = False,
) -> Response:
    """Publish ``payload`` (as text) to ``topic`` of the organization; answers a message for the page."""
    try:
        check_topic_name(topic)
    except ValueError as exc:
        raise ValidationFailedError(f"topic: {exc}", field="topic") from None
    data = payload.encode()
    await service.publish(OrgScope.of(frame.org.id, frame.org.short_id), topic, data, qos=qos, retain=retain)
    message = f"Published {len(data)} bytes to {topic} (QoS {qos}{', retained' if retain else ''})."
    return render(request, "partials/flash.html", {"message": message, "kind": "ok"})
