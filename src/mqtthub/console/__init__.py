"""The web console at ``/ui``: server-rendered pages over the same services and roles as the API.

Pages are Jinja2 templates (``templates/``) rendered by small routers, one module per area (the list is in
``docs/console.md``, which explains how to add a page); htmx and ``static/console.js`` do the live parts, talking
to the hub's public endpoints (``WS /api/v1/stream``, ``WS /ws``). Browser libraries are vendored in
``static/vendor`` by ``scripts/console-assets``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from mqtthub.console import (
    api_tokens,
    broker,
    certificates,
    charts,
    commands,
    definitions,
    devices,
    email_templates,
    live,
    mqtt_config,
    organizations,
    overview,
    products,
    records,
    retained,
    signin,
    subscriptions,
    users,
)
from mqtthub.console.docs import install_docs
from mqtthub.console.headers import STATIC_PATH, SecurityHeadersMiddleware

__all__ = ["install_console"]


def install_console(app: FastAPI) -> None:
    """Mount the console's routers, its static files, ``/docs`` and ``/redoc``, and their security headers."""
    for module in (
        signin,
        overview,
        devices,
        commands,
        records,
        charts,
        definitions,
        certificates,
        live,
        retained,
        api_tokens,
        broker,
        products,
        mqtt_config,
        subscriptions,
        email_templates,
        users,
        organizations,
    ):
        app.include_router(module.router)
    app.mount(STATIC_PATH, StaticFiles(packages=[("mqtthub.console", "static")]), name="console-static")
    install_docs(app)
    app.add_middleware(SecurityHeadersMiddleware)
