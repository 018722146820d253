"""Secrets never leave in an error: validation errors lose the inputs of secret fields.

FastAPI's 422 body echoes each invalid ``input``, and for an error on an object (a missing
field, a wrong type) the input is the whole object, secrets included. Before a validation
error is answered, every value under a secret-looking name (password, token, key material,
PKCS#12, API key, …) is replaced by ``"***"``, wherever it sits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

MASK = "***"
_SECRET_NAME = re.compile(
    r"password|passwd|passphrase|secret|token|apikey|clientkey|privatekey|pkcs12|p12|credential|authorization"
)


def is_secret_name(name: str) -> bool:
    """Whether a field called ``name`` holds a secret (case, ``_`` and ``-`` do not matter)."""
    return _SECRET_NAME.search(re.sub(r"[-_\s]", "", name.lower())) is not None


def redact_value(value: Any) -> Any:
    """``value`` with everything under a secret name, at any depth, replaced by ``"***"``."""
    if isinstance(value, Mapping):
        return {
            key: MASK if isinstance(key, str) and is_secret_name(key) else redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
        return [redact_value(item) for item in value]
    return value


def redact_issue(issue: Mapping[str, Any]) -> dict[str, Any]:
    """One validation error (``loc``, ``msg``, ``type``, ``input``, ``ctx``) safe to answer.

    An error located at a secret field loses its input and context altogether; any other
    keeps its input with the secrets inside it masked.
    """
    out = dict(issue)
    secret_field = any(isinstance(part, str) and is_secret_name(part) for part in out.get("loc", ()))
    if secret_field:
        if "input" in out:
            out["input"] = MASK
        out.pop("ctx", None)
    elif "input" in out:
        out["input"] = redact_value(out["input"])
    return out
