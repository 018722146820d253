"""EMQX 5's HTTP authentication and authorization contracts.

EMQX sends the request body its operator configured from placeholders; the hub reads these fields (JSON, a
form, or the query string of a GET):

- authentication: ``username``, ``password``, ``clientid`` and ``peerhost`` (the client's address, which
  failures are counted against);
- authorization: ``username``, ``clientid``, ``peerhost``, ``action`` (``publish`` or ``subscribe``) and
  ``topic``.

Every decision is 200 with ``{"result": "allow"}`` or ``{"result": "deny"}``; EMQX reads any 4xx or 5xx as
``ignore`` and moves on along its chain. An accepted login also returns ``is_superuser: false`` (administrators
are bound by the rules file, see :mod:`mqtthub.authbackend.goauth`), ``client_attrs`` with the client's
``mountpoint`` (``org/<short id>/``, empty for administrators), ``organization`` and ``kind``, and ``expire_at``
(Unix seconds) when the credential expires, so EMQX disconnects the client then.

Organizations stay apart by EMQX's own mechanism: the listener's ``mountpoint = "${client_attrs.mountpoint}"``
prefixes every topic of the client, and EMQX authorizes topics before mounting them, as the client wrote them,
which is how the hub reads them. No per-client ``acl`` list is sent with the login: EMQX would match a
subscription's filter against the rules' filters, where the hub asks whether the requested filter lies within
an allowed one, so the answers could differ; every topic comes to the authorization endpoint instead (EMQX
caches the answers per client).
"""

from __future__ import annotations

from mqtthub.authbackend.common import Answer, AuthBackend, json_answer, required
from mqtthub.broker.hooks import Action
from mqtthub.errors import ValidationFailedError

CONTRACT = "emqx"

_ACTIONS = {"publish": Action.PUBLISH, "subscribe": Action.SUBSCRIBE}


def _address(caller: str, fields: dict[str, str]) -> str:
    return fields.get("peerhost") or caller


async def authenticate(backend: AuthBackend, caller: str, fields: dict[str, str]) -> Answer:
    """The authentication check of one CONNECT."""
    principal = await backend.login(
        required(fields, "username"),
        fields.get("password", ""),
        fields.get("clientid", ""),
        _address(caller, fields),
    )
    backend.count(CONTRACT, "authn", principal is not None)
    if principal is None:
        return json_answer({"result": "deny"})
    answer: dict[str, object] = {
        "result": "allow",
        "is_superuser": False,
        "client_attrs": {
            "mountpoint": principal.mountpoint,
            "organization": principal.organization_id or "",
            "kind": principal.kind,
        },
    }
    if principal.expires_at is not None:
        answer["expire_at"] = int(principal.expires_at)
    return json_answer(answer)


async def authorize(backend: AuthBackend, caller: str, fields: dict[str, str]) -> Answer:
    """The authorization check of one publish or subscription (the topic inside the client's mountpoint)."""
    action = _ACTIONS.get(required(fields, "action").lower())
    if action is None:
        raise ValidationFailedError("'action' must be publish or subscribe", field="action")
    allowed = await backend.may(
        required(fields, "username"),
        fields.get("clientid", ""),
        _address(caller, fields),
        action,
        required(fields, "topic"),
    )
    backend.count(CONTRACT, "authz", allowed)
    return json_answer({"result": "allow" if allowed else "deny"})


ROUTES = (("/authn", "authn", authenticate), ("/authz", "authz", authorize))
"""Path (under the contract's prefix), check name and handler of each endpoint."""
