"""Security headers of the console and the documentation pages.

Every page loads only what the hub serves itself: scripts from ``/ui/static`` (no inline script, no
``eval``), data from the hub (``connect-src 'self'`` covers its WebSockets too), nothing framed, forms
posted only to the hub. ReDoc is the one exception in style: it injects its styles at run time, so
``/redoc`` allows inline styles (never inline scripts) and runs its search worker from a ``blob:`` URL.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mqtthub.console.session import PREFIX

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
STATIC_PATH = PREFIX + "/static"

_STRICT = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_REDOC = _STRICT.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'") + "; worker-src 'self' blob:"


def policy_of(path: str) -> str | None:
    """The Content-Security-Policy of a page at ``path``; None for the API's own answers."""
    if path == REDOC_PATH:
        return _REDOC
    if path.startswith(STATIC_PATH + "/"):
        return None  # files, not pages: cached, and their type is set from their name
    if path in (DOCS_PATH, PREFIX) or path.startswith(PREFIX + "/"):
        return _STRICT
    return None


class SecurityHeadersMiddleware:
    """Add the policy of :func:`policy_of`, and the headers every page gets, to console and docs responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        policy = policy_of(scope["path"]) if scope["type"] == "http" else None
        if policy is None:
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = policy
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "same-origin"
                headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)
