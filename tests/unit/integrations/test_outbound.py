"""The outbound fence's judgement of addresses, names and the allow list."""

from __future__ import annotations

import pytest

from mqtthub.errors import ValidationFailedError
from mqtthub.integrations.outbound import OutboundFence, OutboundRefused


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.5", "private"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "non-public"),
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    reason = OutboundFence().refusal(address, address)
    assert reason == f"refused by outbound policy: {address} is a {kind} address (allow it with MQTTHUB_OUTBOUND_ALLOW)"


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "93.184.216.34"])
def test_public_addresses_pass(address: str) -> None:
    assert OutboundFence().refusal(address, address) is None


def test_the_allow_list_takes_networks_and_addresses() -> None:
    fence = OutboundFence("10.0.0.0/8, 127.0.0.1 ,::1,")
    assert fence.refusal("10.20.30.40", "10.20.30.40") is None
    assert fence.refusal("x", "::ffff:10.0.0.1") is None  # an IPv4-mapped address is judged as the IPv4 one
    assert fence.refusal("127.0.0.1", "127.0.0.1") is None
    assert fence.refusal("::1", "::1") is None
    assert fence.refusal("127.0.0.2", "127.0.0.2") is not None
    assert fence.refusal("192.168.0.1", "192.168.0.1") is not None


async def test_a_name_is_judged_by_the_addresses_it_resolves_to() -> None:
    with pytest.raises(OutboundRefused, match=r"localhost resolves to (127\.0\.0\.1|::1), which is a loopback"):
        await OutboundFence().resolve("localhost", 80)
    assert await OutboundFence(["localhost"]).resolve("localhost", 80) in ("127.0.0.1", "::1")
    assert await OutboundFence(["127.0.0.0/8", "::1"]).resolve("localhost", 80) in ("127.0.0.1", "::1")
    assert await OutboundFence().resolve("[::ffff:8.8.8.8]", 80) == "::ffff:8.8.8.8"


async def test_saving_a_refused_destination_is_a_422_naming_the_field() -> None:
    with pytest.raises(ValidationFailedError, match="link-local") as raised:
        await OutboundFence().check("169.254.169.254", field="broker.host")
    assert raised.value.field == "broker.host"
    for unresolvable in ("name.that.does.not.resolve.invalid", "ü" * 300, "x..y"):  # judged when used
        await OutboundFence().check(unresolvable, field="broker.host")
