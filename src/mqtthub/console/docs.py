"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), from the assets shipped in the package: they work offline."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from mqtthub.console.headers import DOCS_PATH, REDOC_PATH
from mqtthub.console.templating import render


async def swagger_ui(request: Request) -> Response:
    """The interactive API documentation (Swagger UI, its schema validator badge off: no outside request)."""
    return render(request, "docs.html", {"openapi_url": request.app.openapi_url})


async def redoc(request: Request) -> Response:
    """The API reference (ReDoc)."""
    return render(request, "redoc.html", {"openapi_url": request.app.openapi_url})


def install_docs(app: FastAPI) -> None:
    """Serve both pages on ``app`` (created with ``docs_url=None, redoc_url=None``)."""
    app.add_route(DOCS_PATH, swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_route(REDOC_PATH, redoc, methods=["GET"], include_in_schema=False)
