"""The web console's session cookie: a session token (the same JWT the API's login issues) in a browser.

The cookie is HttpOnly and SameSite=Strict (Secure behind TLS), set by the console's sign-in. Besides the
console's pages, it is accepted by the live feeds a console page opens (``WS /ws`` and
``WS /api/v1/stream``, whose browsers cannot set headers) and by the role check of every route. It is
never read from a request that names another origin: a page of another site cannot use it, even where a
browser would send it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

SESSION_COOKIE = "mqtthub_session"


def same_origin(connection: HTTPConnection) -> bool:
    """False when the request carries an ``Origin`` header naming another host than the one it was sent to."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True  # same-origin navigations and GETs may omit it; SameSite=Strict covers the rest
    return urlsplit(origin).netloc.lower() == connection.headers.get("host", "").lower()


def session_cookie(connection: HTTPConnection) -> str | None:
    """The session token in the console's cookie, or None (no cookie, or a request from another origin)."""
    value = connection.cookies.get(SESSION_COOKIE)
    if not value or not same_origin(connection):
        return None
    return value
