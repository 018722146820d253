"""How console routes answer failures: pages for people, never the API's JSON.

Every console router uses :class:`ConsoleRoute`. A request without a valid session is sent to the sign-in
page (a 303, or for htmx an ``HX-Redirect``). Any other refusal or error of the hub (403, 404, 409, 422,
429, 503, …) keeps its status code and is answered with the error page, or for an htmx request with a
message that htmx puts in the page's message area (``#flash``). Each is logged at info level with the
route, never with the form's values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse, Response

from mqtthub.console.session import PREFIX, SignInRequired
from mqtthub.console.templating import is_htmx, render
from mqtthub.errors import MQTTHubError, RateLimitedError, UnavailableError

logger = logging.getLogger(__name__)


def signin_redirect(request: Request) -> Response:
    """Send the browser to the sign-in page, to come back to this page (for a GET) afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"{PREFIX}/signin"
    if request.method == "GET" and target.startswith(f"{PREFIX}/orgs"):
        location += "?next=" + quote(target, safe="")
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for issue in exc.errors():
        where = ".".join(str(part) for part in issue.get("loc", ()) if part not in ("body", "query", "path"))
        problems.append(f"{where}: {issue.get('msg', 'invalid')}" if where else str(issue.get("msg", "invalid")))
    return "; ".join(problems) or "invalid input"


def error_response(request: Request, status_code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The error page, or for htmx the message for the page's message area."""
    if is_htmx(request):
        headers = (headers or {}) | {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"}
        return render(
            request,
            "partials/flash.html",
            {"message": message, "kind": "error"},
            status_code=status_code,
            headers=headers,
        )
    return render(
        request,
        "error.html",
        {"status_code": status_code, "message": message},
        status_code=status_code,
        headers=headers,
    )


class ConsoleRoute(APIRoute):
    """An API route whose failures are answered as described in the module docstring."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, wrapped."""
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return signin_redirect(request)
            except MQTTHubError as exc:
                logger.info("console %s %s: %s (%s)", request.method, self.path, exc.code, exc.status_code)
                headers = None
                if isinstance(exc, RateLimitedError | UnavailableError) and exc.retry_after is not None:
                    headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
                return error_response(request, exc.status_code, exc.message, headers)
            except RequestValidationError as exc:
                logger.info("console %s %s: invalid input", request.method, self.path)
                return error_response(request, 422, _validation_message(exc))

        return handle
