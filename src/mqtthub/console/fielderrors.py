"""Errors shown next to the form field they are about, taken from the API's own validation.

The console builds the API's request models (``MqttConfigIn``, ``SubscriptionCreate``, …) from a form and
lets them validate it, so a page refuses exactly what the API refuses. Each error's location (pydantic's
``loc``, or a :class:`~mqtthub.errors.ValidationFailedError`'s ``field``) is turned into the name of the form
field it belongs to; an error that belongs to no field of the form is kept under :data:`FORM`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from mqtthub.errors import ValidationFailedError

FORM = ""
"""The key of errors about the form as a whole."""

FieldOf = Callable[[tuple[int | str, ...]], str]
"""Maps an error's location to the form field that shows it (:data:`FORM` for none)."""


def dotted(location: tuple[int | str, ...]) -> str:
    """``("broker", "port")`` as ``"broker.port"``: forms whose fields are named after the model's."""
    return ".".join(str(part) for part in location)


class FieldErrors(dict[str, str]):
    """The first error message of each form field (the form's own under :data:`FORM`)."""

    def add(self, field: str, message: str) -> None:
        """Keep ``message`` for ``field`` unless it already has one."""
        self.setdefault(field, message)

    def add_validation(self, exc: ValidationError, field_of: FieldOf = dotted) -> None:
        """Every error of a pydantic validation, where ``field_of`` places it."""
        for issue in exc.errors():
            message = str(issue.get("msg", "invalid"))
            # pydantic prefixes a validator's own message; the field beside it already says where.
            message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
            self.add(field_of(tuple(issue.get("loc", ()))), message)

    def fields(self) -> str:
        """The names of the fields in error, for a log line (never their values)."""
        return ", ".join(sorted(name or "(form)" for name in self))

    def add_refusal(self, exc: ValidationFailedError, field_of: Callable[[str], str]) -> None:
        """A service's refusal, placed by its ``field`` (``field_of`` maps the API's name to the form's)."""
        self.add(field_of(exc.field) if exc.field else FORM, exc.message)


@dataclass(frozen=True, slots=True)
class FormState:
    """What a page with a form shows besides its data: a refused form's errors and kept input, or a message."""

    errors: FieldErrors = field(default_factory=FieldErrors)
    kept: dict[str, str] = field(default_factory=dict)
    """The input to show again (never a password)."""
    message: str | None = None
    """What the last change did."""
    status_code: int = 200

    @property
    def context(self) -> dict[str, Any]:
        """The template variables: ``errors``, ``form`` (the kept input) and ``message``."""
        return {"errors": self.errors, "form": self.kept, "message": self.message}
