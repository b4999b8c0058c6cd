"""The rest of the IP loudspeaker protocol: 0x11 return address, 0x12 parameter set, 0x16 records."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.ip_speaker.params import QueryReply, ReturnAddress, SetParams
from adapters.ip_speaker.payload_fields import AddressType, PayloadError, RecordState
from adapters.ip_speaker.payloads import BroadcastRecord, BroadcastRecords, decode_business
from broadcast.messages import FailureKind, Outcome
from broadcast.model import DeliveryStatus
from tests.contract.rigs import IpDriver, audio_server
from tests.helpers.poll import until

EBM = "45301810000000101010101202611010001"


@pytest.mark.parametrize(
    "addr",
    [
        ReturnAddress(AddressType.IPV4, "10.1.2.3", 9300),
        ReturnAddress(AddressType.DOMAIN, "eb.anning.gov.cn", 9300),
        ReturnAddress(AddressType.SMS, "13800000000"),
    ],
)
def test_return_address_round_trip(addr: ReturnAddress) -> None:
    assert ReturnAddress.decode(addr.encode()) == addr


def test_set_params_round_trip_and_guarded_resource_code() -> None:
    sp = SetParams.build(volume=30, resource_code="65301810010010314010102", physical_address=b"A0B0C0D00001")
    back = decode_business(0x12, False, sp.encode())
    assert isinstance(back, SetParams) and back.volume == 30
    assert back.resource_code == ("65301810010010314010102", b"A0B0C0D00001")
    with pytest.raises(ValueError, match="nothing"):
        SetParams.build()


def test_records_round_trip_and_truncation() -> None:
    rec = BroadcastRecord(
        1, RecordState.SUCCESS, EBM, 1, 4, 1, "11B03", 100, 160, 80, ("65301810010010314010101",)
    )
    recs = BroadcastRecords("65301810010010399010101", (rec, rec))
    data = recs.encode()
    assert decode_business(0x16, False, data) == recs
    with pytest.raises(PayloadError):
        BroadcastRecords.decode(data[:-3])


@pytest.fixture
async def rig() -> AsyncIterator[IpDriver]:
    async with audio_server() as base:
        d = IpDriver(base)
        await d.start()
        try:
            yield d
        finally:
            await d.close()


async def test_set_volume_and_query_it_back(rig: IpDriver) -> None:
    assert (await rig.ip.set_params(rig.code, volume=35)).outcome is Outcome.ACCEPTED
    assert rig.sim.volume == 35
    reply = await rig.ip.query(rig.code)
    assert isinstance(reply, QueryReply) and reply.volume == 35
    assert reply.return_address == ReturnAddress(AddressType.IPV4, "127.0.0.1", rig.ip.port)


async def test_set_bad_volume_is_permanent(rig: IpDriver) -> None:
    result = await rig.ip.set_params(rig.code, volume=150)
    assert result.outcome is Outcome.PERMANENT and result.failure is FailureKind.REJECTED
    assert rig.sim.volume != 150


async def test_set_resource_code_only_for_that_device(rig: IpDriver) -> None:
    new = "65301810010010314010199"
    assert (await rig.ip.set_params(rig.code, resource_code=new)).outcome is Outcome.ACCEPTED
    assert rig.sim.assigned_code == new


async def test_set_return_address_moves_the_terminal(rig: IpDriver) -> None:
    addr = ReturnAddress(AddressType.IPV4, "127.0.0.1", 1)
    assert (await rig.ip.set_params(rig.code, return_address=addr)).outcome is Outcome.ACCEPTED
    assert (rig.sim.host, rig.sim.port) == ("127.0.0.1", 1)


async def test_records_join_the_delivery_history(rig: IpDriver) -> None:
    order = rig.order()
    assert (await rig.ip.deliver(order, rig.code)).outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.PLAYED in rig.sink.statuses(order.ebm_id, rig.code))
    n = len(rig.sink.events)
    rig.sim.report_records()
    await until(lambda: rig.ip.status()["records_in"] == 1)
    assert len(rig.sink.events) == n + 1
    assert rig.sink.events[-1].status is DeliveryStatus.PLAYED
    assert rig.sink.events[-1].meta["source"] == "records"
