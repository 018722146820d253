"""The mosquitto-go-auth ``http`` backend contract: user, superuser and ACL checks for Mosquitto.

go-auth posts JSON (``auth_opt_http_params_mode json``, its default) or a form (``form``) to three URIs:

- user: ``username``, ``password``, ``clientid``;
- superuser: ``username``;
- ACL: ``username``, ``clientid``, ``topic`` and ``acc``, Mosquitto's access bits: 1 read (a message about
  to be delivered to the client), 2 write (publish), 3 both, 4 subscribe (the topic is a filter).

It reads the status code (``auth_opt_http_response_mode status``) or, in ``json`` mode, the body
``{"ok": bool, "error": str}`` as well: an answer is 200 with ``"ok": true`` or 403 with ``"ok": false`` and
the reason, which satisfies both modes. A 5xx (the hub cannot decide now) is an error to go-auth, which then
refuses.

No one is a superuser: a superuser skips every ACL check, and the hub's administrators are still bound by the
operator's rules and by what no client may do (publishing into ``$`` topics), so their checks go through the
ACL URI like everyone's. Mosquitto has no per-client namespace: topics arrive whole, and a client of an
organization names them under ``org/<short id>/`` (see :mod:`mqtthub.authbackend.common`).
"""

from __future__ import annotations

from mqtthub.authbackend.common import Answer, AuthBackend, json_answer, required
from mqtthub.broker.hooks import Action
from mqtthub.errors import ValidationFailedError

CONTRACT = "mosquitto"

_READ, _WRITE, _SUBSCRIBE = 1, 2, 4


def _answer(allowed: bool, reason: str) -> Answer:
    if allowed:
        return json_answer({"ok": True, "error": ""})
    return json_answer({"ok": False, "error": reason}, 403)


async def user(backend: AuthBackend, caller: str, fields: dict[str, str]) -> Answer:
    """The user check: may these credentials log in."""
    principal = await backend.login(
        required(fields, "username"), fields.get("password", ""), fields.get("clientid", ""), caller
    )
    backend.count(CONTRACT, "user", principal is not None)
    return _answer(principal is not None, "unknown, expired or revoked credentials")


async def superuser(backend: AuthBackend, caller: str, fields: dict[str, str]) -> Answer:
    """The superuser check: always no (see the module docstring)."""
    required(fields, "username")
    backend.count(CONTRACT, "superuser", False)
    return _answer(False, "no client is a superuser: every topic is checked")


async def acl(backend: AuthBackend, caller: str, fields: dict[str, str]) -> Answer:
    """The ACL check of one topic and access."""
    try:
        access = int(required(fields, "acc"))
    except ValueError:
        raise ValidationFailedError("'acc' must be an integer", field="acc") from None
    if access not in (_READ, _WRITE, _READ | _WRITE, _SUBSCRIBE):
        raise ValidationFailedError(f"unknown access {access}", field="acc")
    username, topic = required(fields, "username"), required(fields, "topic")
    client_id = fields.get("clientid", "")
    principal = await backend.principal_of(username, client_id, caller)
    allowed = principal is not None
    if principal is not None and access & _WRITE:
        allowed = await backend.decide(principal, Action.PUBLISH, topic, full_topic=True)
    if principal is not None and allowed and access & (_READ | _SUBSCRIBE):
        # A delivered topic is read through some subscription: it is allowed where a filter naming it would be.
        allowed = await backend.decide(principal, Action.SUBSCRIBE, topic, full_topic=True)
    backend.count(CONTRACT, "acl", allowed)
    return _answer(allowed, "not allowed for this client" if principal is not None else "unknown client")


ROUTES = (("/user", "user", user), ("/superuser", "superuser", superuser), ("/acl", "acl", acl))
"""Path (under the contract's prefix), check name and handler of each endpoint."""
