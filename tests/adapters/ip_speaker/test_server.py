"""The §4.1 server shell (adapters/ip_speaker/server.py) the IP loudspeaker and front-end adapters both
run on: closing the adapter closes every connection — registered or not — and says nothing to the sink
(shutting down is not news about the terminals); a connection that stays silent past the heartbeat
timeout is detached by the liveness check; settings are read the same way for both."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from adapters.front_end.adapter import FrontEndAdapter, FrontEndConfigError
from adapters.ip_speaker.adapter import IpSpeakerAdapter, IpSpeakerConfigError
from adapters.ip_speaker.server import ServerSettings
from broadcast.clock import ManualClock
from tests.helpers.poll import until
from tests.helpers.sink import RecordingSink

PLATFORM = "45301810000000101010101"


@pytest.mark.parametrize("adapter_cls", [IpSpeakerAdapter, FrontEndAdapter])
async def test_close_closes_every_connection_quietly(
    adapter_cls: type[IpSpeakerAdapter | FrontEndAdapter],
) -> None:
    adapter = adapter_cls(
        {"platform_code": PLATFORM, "port": 0}, ManualClock(datetime(2026, 11, 1, tzinfo=UTC))
    )
    sink = RecordingSink()
    await adapter.start(sink, [])
    reader, writer = await asyncio.open_connection("127.0.0.1", adapter.port)  # never registers
    await until(lambda: adapter.server.connections == 1)
    await adapter.close()
    async with asyncio.timeout(2):
        assert await reader.read(10) == b""  # closed by the adapter, not left open
    writer.close()
    assert sink.reports == []


def test_settings_are_read_once_for_both_adapters() -> None:
    s = ServerSettings.read(
        "front_end",
        {"platform_code": PLATFORM},
        default_port=9310,
        default_ack_timeout_s=5.0,
        error=ValueError,
    )
    assert (s.host, s.port, s.ack_timeout_s, s.heartbeat_timeout_s, s.liveness_check_s) == (
        "127.0.0.1",
        9310,
        5.0,
        90.0,
        10.0,
    )
    assert (
        ServerSettings.read(
            "x",
            {"platform_code": PLATFORM, "heartbeat_timeout_s": 15},
            default_port=1,
            default_ack_timeout_s=1,
            error=ValueError,
        ).liveness_check_s
        == 5.0
    )
    for cls, error in ((IpSpeakerAdapter, IpSpeakerConfigError), (FrontEndAdapter, FrontEndConfigError)):
        with pytest.raises(error) as exc:
            cls({"platform_code": "123"}, ManualClock(datetime(2026, 11, 1, tzinfo=UTC)))
        assert f"{cls.name} 适配器缺少有效的 platform_code" in str(exc.value)
