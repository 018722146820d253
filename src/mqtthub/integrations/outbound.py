"""The outbound fence: where integrations may connect (webhooks, HTTP and domain calls, SMTP, remote brokers).

A tenant chooses the URLs of its webhooks and the host of its product's broker, and a
payload can even choose a webhook's host through a template. Without a fence the hub would
call whatever they name: its own API on 127.0.0.1, a cloud metadata service on
169.254.169.254, databases on the private network. So every outbound connection of the
integrations resolves its host first, refuses it when any address it resolves to is not a
public unicast address (loopback, link-local, private, shared, multicast, unspecified or
reserved, IPv4 and IPv6, IPv4-mapped IPv6 judged as the IPv4 address it maps), and then
connects to the very address it checked, so a second resolution cannot answer differently.
HTTP redirects are followed hop by hop through the same check.

The operator opens the fence with ``MQTTHUB_OUTBOUND_ALLOW``: comma-separated networks
(``10.0.0.0/8``, ``127.0.0.1``, ``::1``) and host names (``mail.internal``; a name is allowed
whatever it resolves to).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from mqtthub.errors import ValidationFailedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_REMEDY = "allow it with MQTTHUB_OUTBOUND_ALLOW"
_SAVE_CHECK_TIMEOUT = 5.0  # a slow resolver must not hold a request; the destination is checked again when used


class OutboundRefused(OSError):
    """A connection the outbound policy does not allow (an ``OSError``, as any other failed connection)."""


def _kind(address: IPAddress) -> str | None:
    """What makes ``address`` non-public, or None when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _kind(address.ipv4_mapped)
    for kind, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return kind
    return None if address.is_global else "non-public"


class OutboundFence:
    """Resolves and checks the destinations of outbound connections.

    Args:
        allow: Networks and host names exempt from the check (``MQTTHUB_OUTBOUND_ALLOW``),
            as one comma-separated string or as items.
    """

    def __init__(self, allow: str | Iterable[str] | None = None) -> None:
        items = allow.split(",") if isinstance(allow, str) else list(allow or ())
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._hosts: set[str] = set()
        for item in (entry.strip() for entry in items):
            if not item:
                continue
            try:
                self._networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self._hosts.add(item.lower().rstrip("."))

    def refusal(self, host: str, address: str) -> str | None:
        """Why connecting to ``address`` (which ``host`` resolved to) is refused, or None when it is allowed."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        kind = _kind(ip)
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if kind is None or any(item in network for item in (ip, mapped) if item for network in self._networks):
            return None
        named = host if host == address else f"{host} resolves to {address}, which"
        return f"refused by outbound policy: {named} is a {kind} address ({_REMEDY})"

    async def resolve(self, host: str, port: int) -> str:
        """The address to connect to for ``host``: every address it resolves to must be allowed.

        Raises:
            OutboundRefused: an address is not allowed.
            OSError: the name does not resolve (``socket.gaierror``).
            ValueError: the name cannot be encoded for resolution (``UnicodeError``).
        """
        host = host.strip("[]")
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if host.lower().rstrip(".") not in self._hosts:
            for address in addresses:
                reason = self.refusal(host, address)
                if reason is not None:
                    raise OutboundRefused(reason)
        return addresses[0]

    async def check(self, host: str, *, field: str) -> None:
        """Refuse a destination when it is saved: 422 naming ``field``.

        A name that does not resolve (yet, or within a few seconds) passes: it is checked again at each use.

        Raises:
            ValidationFailedError: ``host`` resolves to an address that is not allowed.
        """
        try:
            async with asyncio.timeout(_SAVE_CHECK_TIMEOUT):
                await self.resolve(host, 0)
        except OutboundRefused as exc:
            raise ValidationFailedError(str(exc), field=field) from None
        except (OSError, TimeoutError, ValueError):  # ValueError: a name IDNA cannot encode, refused when used
            return

    async def connect_socket(self, host: str, port: int) -> socket.socket:
        """A connected, non-blocking TCP socket to the checked address of ``host`` (for SMTP)."""
        address = await self.resolve(host, port)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (address, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def http_transport(self) -> httpx.AsyncHTTPTransport:
        """An httpx transport whose every connection (each redirect hop too) goes to a checked address."""
        return _FencedTransport(self)


class _FencedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own backend, given the checked address; TLS still verifies the host name."""

    def __init__(self, fence: OutboundFence) -> None:
        self._fence = fence
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await self._fence.resolve(host, port)
        return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("refused by outbound policy: Unix sockets are not an outbound destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _FencedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool that uses :class:`_FencedBackend`.

    httpx does not take a network backend, so the pool it builds is replaced by one that
    does (same TLS context and limits as httpx's defaults).
    """

    def __init__(self, fence: OutboundFence) -> None:
        super().__init__()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_FencedBackend(fence),
        )
