"""Retained messages on the live messages page: browse them by topic filter, page by page, view and clear one.

The list is a partial the page loads with htmx, reloaded by the filter form and the pager. It calls the same
functions as ``/api/v1/organizations/{id}/retained`` after the same role gate: members browse, administrators
clear (an empty retained message is published to the topic). Payloads are shown as text, JSON pretty-printed,
cut after :data:`SHOWN_CHARACTERS`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import OrgFrame, render
from mqtthub.messaging.deps import MessagingDep
from mqtthub.messaging.namespace import OrgScope, check_topic_filter, check_topic_name, checked
from mqtthub.messaging.retained import RetainedOut, clear_retained, retained_page
from mqtthub.web.deps import StateDep
from mqtthub.web.params import MAX_OFFSET

PAGE_SIZE = 25
"""Retained messages per page."""
SHOWN_CHARACTERS = 20_000
"""Most characters of one payload put in the page."""

router = APIRouter(prefix=PREFIX + "/orgs/{org_id}/live/retained", route_class=ConsoleRoute, include_in_schema=False)

Filter = Annotated[str, Query(alias="filter", min_length=1, max_length=1024)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


@dataclass(frozen=True, slots=True)
class Shown:
    """A retained message as the page shows it."""

    message: RetainedOut
    text: str
    cut: bool


def _shown(message: RetainedOut) -> Shown:
    if message.payload_encoding == "base64":
        text = f"(binary, base64) {message.payload}"
    else:
        try:
            text = json.dumps(json.loads(message.payload), indent=2, ensure_ascii=False)
        except ValueError:
            text = message.payload
    return Shown(message, text[:SHOWN_CHARACTERS], len(text) > SHOWN_CHARACTERS)


def _list(
    request: Request, frame: OrgFrame, state: StateDep, topic_filter: str, offset: int, message: str | None = None
) -> Response:
    checked(check_topic_filter, topic_filter, "query", "filter")
    page = retained_page(state.broker, OrgScope.of(frame.org.id, frame.org.short_id), topic_filter, offset, PAGE_SIZE)
    context = {
        "frame": frame,
        "page": page,
        "shown": [_shown(each) for each in page.messages],
        "topic_filter": topic_filter,
        "message": message,
    }
    return render(request, "partials/retained.html", context)


@router.get("", summary="Retained messages")
async def retained_list(
    request: Request, frame: OrgFrame, state: StateDep, topic_filter: Filter = "#", offset: Offset = 0
) -> Response:
    """One page of the organization's retained messages matching a filter, by topic."""
    return _list(request, frame, state, topic_filter, offset)


@router.post("/clear", summary="Clear a retained message")
async def clear(
    request: Request,
    frame: OrgFrame,
    state: StateDep,
    service: MessagingDep,
    topic: Annotated[str, Form(min_length=1, max_length=1024)],
    topic_filter: Annotated[str, Form(alias="filter", min_length=1, max_length=1024)] = "#",
    offset: Annotated[int, Form(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Clear the retained message of ``topic``; answers the list again (same filter and page)."""
    checked(check_topic_name, topic, "body")
    await clear_retained(state.broker, service, OrgScope.of(frame.org.id, frame.org.short_id), topic)
    return _list(request, frame, state, topic_filter, offset, message=f"Cleared the retained message of {topic}.")
