"""One auth-backend request from the wire to its answer, whichever server received it.

Both servers of the auth backend, the app mounted on the API (:mod:`mqtthub.authbackend.app`) and the port of
its own (:mod:`mqtthub.authbackend.server`), hand a :class:`BackendRequest` to the :class:`Endpoint` of its path
and write the :class:`Answer` back. The endpoint does what every check needs around the contract's handler: the
guard (:mod:`mqtthub.authbackend.guard`), the request's fields, the latency histogram, and the mapping of failures
to answers every broker reads as "no": 400 for a malformed request, 503 when the hub cannot decide now (database
down, password workers busy), 500 for a bug, each with the hub's JSON error body.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from mqtthub.authbackend import emqx, goauth, rabbitmq
from mqtthub.authbackend.common import Answer, AuthBackend, json_answer
from mqtthub.authbackend.guard import BackendGuard
from mqtthub.broker.episodes import EpisodeLog
from mqtthub.db.faults import unavailable
from mqtthub.errors import UnavailableError, ValidationFailedError
from mqtthub.web.errors import error_body

logger = logging.getLogger(__name__)
_episodes = EpisodeLog()  # a misconfigured broker asks thousands of times: one line per episode

MOUNT_PATH = "/auth-backend"

Handler = Callable[[AuthBackend, str, dict[str, str]], Awaitable[Answer]]
"""A contract's check: the backend, the caller's address and the request's fields, to the answer."""

CONTRACTS: dict[str, Iterable[tuple[str, str, Handler]]] = {
    goauth.CONTRACT: goauth.ROUTES,
    emqx.CONTRACT: emqx.ROUTES,
    rabbitmq.CONTRACT: rabbitmq.ROUTES,
}
"""Each contract's name (its path prefix) and endpoints."""

METHODS = ("GET", "POST", "PUT")
"""The methods every endpoint answers: brokers may be set to any of them."""


@dataclass(frozen=True, slots=True)
class BackendRequest:
    """What an endpoint reads of an HTTP request."""

    address: str
    """The caller's IP address (the broker's)."""
    authorization: str
    """The ``Authorization`` header, empty when absent."""
    query: str
    """The query string, undecoded."""
    content_type: str
    """The ``Content-Type`` header, empty when absent."""
    body: bytes


def parse_fields(request: BackendRequest) -> dict[str, str]:
    """The request's parameters: its query string, then a JSON object or a form-encoded body on top.

    Every value becomes a string (go-auth sends ``acc`` as a JSON number). Keys are kept as sent, dotted ones
    included (RabbitMQ's ``variable_map.client_id``).

    Raises:
        ValidationFailedError: the body is not a JSON object, or not decodable (400).
    """
    fields = dict(parse_qsl(request.query, keep_blank_values=True))
    body = request.body
    if not body:
        return fields
    if request.content_type.partition(";")[0].strip().lower() == "application/json":
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ValidationFailedError("the body is not valid JSON", field="body") from None
        if not isinstance(document, Mapping):
            raise ValidationFailedError("the body must be a JSON object", field="body")
        fields.update({str(key): _text(value) for key, value in document.items()})
    else:
        try:
            fields.update(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError:
            raise ValidationFailedError("the form body is not UTF-8", field="body") from None
    return fields


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else json.dumps(value) if isinstance(value, list | dict) else str(value)


class Endpoint:
    """One check of one contract, guarded, timed and with its failures mapped to answers."""

    def __init__(self, backend: AuthBackend, guard: BackendGuard, contract: str, check: str, handler: Handler) -> None:
        self._backend = backend
        self._guard = guard
        self._contract = contract
        self._check = check
        self._handler = handler

    async def __call__(self, request: BackendRequest, *, started: float | None = None) -> Answer:
        """The answer to ``request``; ``started`` (``time.perf_counter()``) is when it arrived, if known."""
        backend = self._backend
        started = time.perf_counter() if started is None else started
        try:
            refusal = self._guard.refusal(request.address, request.authorization)
            if refusal is not None:
                backend.refused_requests[refusal.reason] += 1
                _episodes(
                    logger,
                    logging.WARNING,
                    (refusal.reason, request.address),
                    "auth backend: %s: %s",
                    request.address,
                    refusal.message,
                )
                code = "unauthorized" if refusal.status_code == 401 else "forbidden"
                headers = (
                    (("WWW-Authenticate", 'Basic realm="mqtthub auth backend"'),) if refusal.status_code == 401 else ()
                )
                return json_answer(error_body(refusal.message, code), refusal.status_code, headers)
            return await self._handler(backend, request.address, parse_fields(request))
        except ValidationFailedError as exc:
            backend.count(self._contract, self._check, None)
            return json_answer(error_body(exc.message, "bad_request"), 400)
        except Exception as exc:
            backend.count(self._contract, self._check, None)
            if isinstance(exc, UnavailableError) or unavailable(exc) is not None:
                logger.warning("auth backend: %s %s check not answered: %s", self._contract, self._check, exc)
                return json_answer(error_body("the hub cannot answer now", "unavailable"), 503)
            logger.exception("auth backend: %s %s check failed", self._contract, self._check)
            return json_answer(error_body("internal server error", "internal_error"), 500)
        finally:
            backend.observe(started)


def endpoints(backend: AuthBackend, guard: BackendGuard, *, prefix: str = "") -> dict[str, Endpoint]:
    """Every contract's endpoints by path (``prefix/contract/check``)."""
    return {
        f"{prefix}/{contract}{path}": Endpoint(backend, guard, contract, check, handler)
        for contract, routes in CONTRACTS.items()
        for path, check, handler in routes
    }
