"""The parts of RabbitMQ's management HTTP API the hub uses: vhosts, permissions, policies and connections."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from mqtthub.errors import UnavailableError

logger = logging.getLogger(__name__)

INGEST_POLICY = "mqtthub-ingest"
"""The policy mirroring the ingest queue of a vhost."""
RECORDED_POLICY = "mqtthub-recorded"
"""The policy mirroring the recorded-filters queue of a vhost."""


@dataclass(frozen=True, slots=True)
class Connection:
    """One client connection of the cluster, as the management API lists it."""

    name: str
    """The management API's name of the connection (what ``DELETE /api/connections/<name>`` takes)."""
    vhost: str
    user: str
    client_id: str
    node: str
    protocol: str


def _quoted(value: str) -> str:
    return quote(value, safe="")


class Management:
    """An async client of one cluster's management API, as the hub's account (an administrator)."""

    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 10.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/api", auth=(username, password), timeout=timeout
        )
        self.username = username

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        try:
            response = await self._http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise UnavailableError(f"RabbitMQ management API unreachable: {exc}") from exc
        if response.status_code == 404 and method == "DELETE":
            return None
        if response.status_code >= 400:
            raise UnavailableError(f"RabbitMQ management API: {method} {path} answered {response.status_code}")
        return response.json() if response.content else None

    async def ensure_vhost(self, vhost: str, *, queues: dict[str, str]) -> None:
        """Create ``vhost`` if missing, give the hub's account every right on it, and mirror its shared queues.

        ``queues`` names each queue by the policy that mirrors it. A policy mirrors its queue on every node
        (``ha-mode: all``) and promotes a mirror that was not in sync when the leader's node dies, so ingestion and
        recording go on through the loss of a node; what the dead leader had not yet handed to a mirror is still
        unacknowledged to its publisher, which sends it again.
        """
        name = _quoted(vhost)
        await self._call("PUT", f"/vhosts/{name}", {"description": "mqtthub organization"})
        rights = {"configure": ".*", "write": ".*", "read": ".*"}
        await self._call("PUT", f"/permissions/{name}/{_quoted(self.username)}", rights)
        await self._call("PUT", f"/topic-permissions/{name}/{_quoted(self.username)}", {
            "exchange": "amq.topic", "write": ".*", "read": ".*",
        })  # fmt: skip
        for policy_name, queue in queues.items():
            policy = {
                "pattern": f"^{re.escape(queue)}$",
                "apply-to": "queues",
                "definition": {"ha-mode": "all", "ha-sync-mode": "automatic", "ha-promote-on-failure": "always"},
            }
            await self._call("PUT", f"/policies/{name}/{policy_name}", policy)

    async def vhosts(self) -> list[str]:
        """The names of every vhost of the cluster."""
        return [entry["name"] for entry in await self._call("GET", "/vhosts?columns=name")]

    async def connections(self) -> list[Connection]:
        """The MQTT connections of the whole cluster (whichever node is asked)."""
        entries = await self._call("GET", "/connections?columns=name,vhost,user,node,protocol,client_properties")
        found = []
        for entry in entries:
            protocol = str(entry.get("protocol", ""))
            if "MQTT" not in protocol:
                continue
            properties = entry.get("client_properties") or {}
            found.append(
                Connection(
                    name=str(entry["name"]),
                    vhost=str(entry.get("vhost", "")),
                    user=str(entry.get("user", "")),
                    client_id=str(properties.get("client_id", "")),
                    node=str(entry.get("node", "")),
                    protocol=protocol,
                )
            )
        return found

    async def close_connection(self, name: str, reason: str) -> None:
        """Drop one connection at once (on whichever node it is); a connection already gone is fine."""
        await self._call("DELETE", f"/connections/{_quoted(name)}", headers={"X-Reason": reason})
