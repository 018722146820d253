"""The console's CSRF tokens, origin check, redirect targets and security headers."""

from __future__ import annotations

import pytest
from starlette.requests import HTTPConnection

from mqtthub.auth.cookie import SESSION_COOKIE, same_origin, session_cookie
from mqtthub.console.headers import policy_of
from mqtthub.console.session import CsrfRefused, check_csrf, csrf_token
from mqtthub.console.signin import _next

KEY = "k" * 32


def _connection(headers: dict[str, str]) -> HTTPConnection:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return HTTPConnection({"type": "http", "headers": raw, "path": "/", "query_string": b""})


def test_each_session_has_its_own_csrf_token() -> None:
    first = csrf_token(KEY, "session-a")
    assert first == csrf_token(KEY, "session-a")
    assert first != csrf_token(KEY, "session-b")
    assert first != csrf_token("j" * 32, "session-a")
    check_csrf(first, first)
    for wrong in ("", first[:-1], csrf_token(KEY, "session-b")):
        with pytest.raises(CsrfRefused):
            check_csrf(first, wrong)


def test_the_cookie_counts_only_from_the_hubs_own_origin() -> None:
    cookie = {"cookie": f"{SESSION_COOKIE}=token", "host": "hub.test:8000"}
    assert session_cookie(_connection(cookie)) == "token"
    assert session_cookie(_connection(cookie | {"origin": "http://hub.test:8000"})) == "token"
    assert session_cookie(_connection(cookie | {"origin": "http://evil.test"})) is None
    assert session_cookie(_connection(cookie | {"origin": "http://hub.test:9000"})) is None
    assert session_cookie(_connection({"host": "hub.test:8000"})) is None
    assert same_origin(_connection({"host": "hub.test"}))


def test_sign_in_goes_back_only_to_console_pages() -> None:
    fallback = "/ui/orgs/1"
    assert _next("/ui/orgs/2/devices?q=x", fallback) == "/ui/orgs/2/devices?q=x"
    for outside in ("https://evil.test/ui/", "//evil.test/ui/", "/api/v1/organizations", "", None):
        assert _next(outside, fallback) == fallback


def test_pages_get_a_policy_without_inline_scripts_and_files_none() -> None:
    for page in ("/ui", "/ui/orgs/1/devices", "/docs"):
        policy = policy_of(page)
        assert policy is not None
        assert "script-src 'self';" in policy
        assert "unsafe" not in policy
    redoc = policy_of("/redoc")
    assert redoc is not None
    assert "script-src 'self';" in redoc
    for other in ("/ui/static/console.js", "/api/v1/health", "/", "/uix"):
        assert policy_of(other) is None
