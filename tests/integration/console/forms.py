"""Signing in to the console over plain HTTP, as its forms do (for what needs no browser)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from mqtthub.console.session import CSRF_FIELD
from tests.support.served import LocalHub

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
"""The hidden CSRF field of a console form."""


@asynccontextmanager
async def signed_in(hub: LocalHub, email: str, password: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client signed in through the console's form, and the session's CSRF token."""
    async with httpx.AsyncClient(base_url=hub.http_url, timeout=30) as client:
        form = await client.get("/ui/signin")
        match = CSRF_INPUT.search(form.text)
        assert match is not None
        answer = await client.post(
            "/ui/signin", data={"email": email, "password": password, CSRF_FIELD: match.group(1)}
        )
        assert answer.status_code == 303, answer.text
        page = await client.get(answer.headers["location"], follow_redirects=True)
        assert page.status_code == 200
        csrf = CSRF_INPUT.search(page.text)
        assert csrf is not None
        yield client, csrf.group(1)
