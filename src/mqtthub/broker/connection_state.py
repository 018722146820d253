"""Life-cycle states of a client connection (a module of its own so packet handlers can import it)."""

from __future__ import annotations

import enum


class ConnectionState(enum.Enum):
    """Life cycle of a client connection."""

    AWAITING_CONNECT = "awaiting_connect"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"
