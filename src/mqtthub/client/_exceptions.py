"""The exceptions of the mqtthub SDK: one root, documented tree.

::

    HubError                        root of everything the SDK raises
    ├── HubConnectionError          the hub could not be reached (DNS, refused, TLS, timeout, dropped)
    ├── ClientStateError            a client used in the wrong state (after close, opened twice)
    └── APIError                    the hub answered with an error status; carries status_code, code, body
        ├── BadRequestError         400
        ├── AuthenticationError     401: missing, invalid, expired or revoked credentials
        ├── PermissionDeniedError   403: outside the caller's permissions
        ├── NotFoundError           404
        ├── ConflictError           409
        ├── ValidationError         422: the request failed validation; ``errors`` lists FastAPI's details
        ├── RateLimitedError        429: ``retry_after`` seconds from the Retry-After header
        ├── ServiceUnavailableError 503: a dependency of the hub (the broker, the database) is down
        └── ServerError             any other 5xx
"""

from __future__ import annotations

from typing import Any


class HubError(Exception):
    """Root of every exception the SDK raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HubConnectionError(HubError):
    """The hub could not be reached, or the connection broke."""


class ClientStateError(HubError):
    """A client was used after it was closed, or opened twice."""


class APIError(HubError):
    """The hub answered with an error status.

    Attributes:
        status_code: The HTTP status.
        code: The hub's error code (``"forbidden"``, ``"rate_limited"``, …), or ``None``.
        body: The decoded JSON body, or the text of a non-JSON body.
    """

    def __init__(self, message: str, *, status_code: int, code: str | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.body = body

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}"


class BadRequestError(APIError):
    """400: the request was malformed."""


class AuthenticationError(APIError):
    """401: credentials are missing, invalid, expired or revoked."""


class PermissionDeniedError(APIError):
    """403: the credentials are valid but the action is outside their permissions."""


class NotFoundError(APIError):
    """404: no such resource (or not visible to the caller)."""


class ConflictError(APIError):
    """409: the resource exists already or the change clashes with its state."""


class ValidationError(APIError):
    """422: the request failed validation."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        """FastAPI's validation details (``loc``, ``msg``, ``type``), when the body has them."""
        detail = self.body.get("detail") if isinstance(self.body, dict) else None
        return [item for item in detail if isinstance(item, dict)] if isinstance(detail, list) else []


class RateLimitedError(APIError):
    """429: too many requests; wait ``retry_after`` seconds."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, code=code, body=body)
        self.retry_after = retry_after


class ServiceUnavailableError(APIError):
    """503: something the hub needs (the broker, the database) is unavailable."""


class ServerError(APIError):
    """Any other 5xx answer."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def error_for(status_code: int, body: Any, retry_after: str | None = None) -> APIError:
    """The exception for an error answer with ``status_code`` and decoded ``body``."""
    code: str | None = None
    if isinstance(body, dict):
        code = body.get("code") if isinstance(body.get("code"), str) else None
        message = body.get("error") or body.get("detail")
        if not isinstance(message, str):
            message = (
                "; ".join(
                    str(item.get("msg", item)) if isinstance(item, dict) else str(item)
                    for item in body.get("detail", [])
                )
                or f"HTTP {status_code}"
            )
    else:
        message = str(body or f"HTTP {status_code}")
    cls = _BY_STATUS.get(status_code, ServerError if status_code >= 500 else APIError)
    if cls is RateLimitedError:
        seconds: float | None
        try:
            seconds = float(retry_after) if retry_after is not None else None
        except ValueError:
            seconds = None
        return RateLimitedError(message, status_code=status_code, code=code, body=body, retry_after=seconds)
    return cls(message, status_code=status_code, code=code, body=body)
