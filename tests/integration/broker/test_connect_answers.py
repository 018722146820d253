"""A CONNECT whose credential is decided later, by a coroutine or by a future (no task per CONNECT).

Either way the client gets its CONNACK once the answer comes (accepted, refused with the authenticator's code, or
0x88 when the authenticator fails), and packets it sent right behind its CONNECT are handled after it, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest

from mqtthub.broker.hooks import ConnectInfo, Principal
from mqtthub.mqtt.packets import Connack, Connect, Publish, Suback, Subscribe, SubscriptionRequest
from mqtthub.mqtt.reason_codes import ReasonCode
from tests.integration.broker.support import FakeAuth, FutureAuth, RawClient, running_broker

either_way = pytest.mark.parametrize("answers", [FakeAuth, FutureAuth], ids=["coroutine", "future"])


@either_way
async def test_packets_behind_the_connect_wait_for_its_answer(answers: type[FakeAuth]) -> None:
    async with running_broker(answers()) as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        # CONNECT, SUBSCRIBE and a PUBLISH to the subscribed topic in one write, before any answer.
        client.send(Connect("eager", protocol_level=client.level))
        client.send(Subscribe(1, [SubscriptionRequest("eager/#")]))
        client.send(Publish("eager/first", b"behind the connect"))
        connack = await client.receive()
        assert isinstance(connack, Connack)
        assert connack.reason_code == ReasonCode.SUCCESS
        suback = await client.receive()
        assert isinstance(suback, Suback)
        assert suback.reason_codes == [ReasonCode.GRANTED_QOS_0]
        delivered = await client.receive()
        assert isinstance(delivered, Publish)
        assert (delivered.topic, delivered.payload) == ("eager/first", b"behind the connect")
        await client.close()


@either_way
async def test_a_refusal_keeps_its_reason_code(answers: type[FakeAuth]) -> None:
    async with running_broker(answers(refused={"intruder": ReasonCode.BAD_USER_NAME_OR_PASSWORD})) as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        connack = await client.connect("intruder", username="intruder", password=b"wrong")
        assert connack.reason_code == ReasonCode.BAD_USER_NAME_OR_PASSWORD
        await client.closed()
        assert broker.stats().auth_refused == 1


class _Failing(FakeAuth):
    async def authenticate(self, info: ConnectInfo) -> Principal:
        raise ConnectionRefusedError("the database is down")


@either_way
async def test_a_failing_answer_is_server_unavailable(answers: type[FakeAuth]) -> None:
    failing = type("Failing", (_Failing, answers), {}) if answers is FutureAuth else _Failing
    async with running_broker(failing()) as broker:
        client = await RawClient.open(broker.addresses["tcp"])
        connack = await client.connect("unlucky")
        assert connack.reason_code == ReasonCode.SERVER_UNAVAILABLE
        await client.closed()


class _Cancelling(FutureAuth):
    def admit(self, info: ConnectInfo) -> Awaitable[Principal]:
        answer = super().admit(info)
        assert isinstance(answer, asyncio.Future)
        answer.cancel()
        return answer


async def test_a_cancelled_answer_is_server_unavailable_and_the_broker_goes_on() -> None:
    async with running_broker(_Cancelling()) as broker:
        for client_id in ("first", "second"):
            client = await RawClient.open(broker.addresses["tcp"])
            connack = await client.connect(client_id)
            assert connack.reason_code == ReasonCode.SERVER_UNAVAILABLE
            await client.closed()
