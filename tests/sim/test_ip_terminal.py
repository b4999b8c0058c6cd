"""Simulated IP terminals: MP3 duration by frame walking, and a Fleet connecting many terminals to the
real adapter at once."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import imageio_ffmpeg
import pytest
from aiohttp import web

from adapters.ip_speaker.adapter import IpSpeakerAdapter
from broadcast.clock import ManualClock
from broadcast.messages import Outcome
from broadcast.model import (
    DeliveryOrder,
    DeliveryStatus,
    MsgType,
    Priority,
    Severity,
    TerminalKind,
    TerminalRef,
)
from sim.fleet import Fleet
from sim.mp3 import NotMpegAudio, mpeg_duration
from tests.helpers.poll import until
from tests.helpers.sink import RecordingSink

PLATFORM = "45301810000000101010101"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _frame(header_hex: str, length: int) -> bytes:
    return bytes.fromhex(header_hex) + bytes(length - 4)


def _id3v2(payload_size: int) -> bytes:
    size = bytes(
        (payload_size >> 21 & 0x7F, payload_size >> 14 & 0x7F, payload_size >> 7 & 0x7F, payload_size & 0x7F)
    )
    return b"ID3\x04\x00\x00" + size + b"\xff\xfb" * (payload_size // 2)  # frame-like bytes inside the tag


def test_duration_of_hand_built_mpeg1_layer3_with_id3v2_and_id3v1() -> None:
    frames = 100
    body = _frame("FFFB9000", 417) * frames  # 128 kbit/s 44.1 kHz → 417 B, 1152 samples each
    data = _id3v2(300) + body + b"TAG" + bytes(125)
    assert mpeg_duration(data) == pytest.approx(frames * 1152 / 44100)


def test_duration_of_mpeg2_layer3_and_padding_and_garbage() -> None:
    # MPEG-2 Layer III, 24 kHz, 48 kbit/s: 72 * 48000 / 24000 = 144 B, 576 samples; padded frames 145 B.
    plain = _frame("FFF36400", 144)
    padded = _frame("FFF36600", 145)
    data = b"junk" + (plain + padded) * 50 + b"\x00\x01"
    assert mpeg_duration(data) == pytest.approx(100 * 576 / 24000)


def test_not_mpeg_audio() -> None:
    with pytest.raises(NotMpegAudio):
        mpeg_duration(b"<html>404</html>" * 20)


@pytest.mark.parametrize("rate", [44100, 24000])
def test_duration_of_ffmpeg_encoded_mp3(tmp_path: Path, rate: int) -> None:
    out = tmp_path / "tone.mp3"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-ar",
            str(rate),
            "-ac",
            "1",
            "-b:a",
            "48k",
            str(out),
        ],
        check=True,
        timeout=30,
    )
    data = out.read_bytes()
    assert data[:3] == b"ID3"
    # The encoder adds up to a frame or two of delay and padding.
    assert 2.0 <= mpeg_duration(data) <= 2.12


@pytest.mark.parametrize("count", [50, 586])
async def test_fleet_connects_and_all_play(count: int) -> None:
    refs = [
        TerminalRef(
            f"6530181{i // 100:03d}0010314010{i % 100 // 10}{i % 10}0"[:23].ljust(23, "1"),
            "530181001001",
            f"音柱{i}",
            TerminalKind.VILLAGE,
            f"C0FFEE{i:06X}",
        )
        for i in range(count)
    ]
    assert len({r.resource_code for r in refs}) == count

    async def audio(_: web.Request) -> web.Response:
        return web.Response(body=_frame("FFFB9000", 417) * 10, content_type="audio/mpeg")

    app = web.Application()
    app.router.add_get("/a.mp3", audio)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/a.mp3"
    sink = RecordingSink()
    # Correctness here; speed is asserted separately below (a loaded CI box must not flip outcomes).
    adapter = IpSpeakerAdapter({"port": 0, "platform_code": PLATFORM, "ack_timeout_s": 20.0}, ManualClock(T0))
    await adapter.start(sink, refs)
    fleet = Fleet(refs, "127.0.0.1", adapter.port, time_scale=0.01, heartbeat_interval_s=30.0)
    try:
        loop = asyncio.get_running_loop()
        began = loop.time()
        await fleet.start()
        assert await fleet.wait_connected(count, timeout=10.0) == count
        connect_s = loop.time() - began
        await until(lambda: len(sink.online) == count)
        assert adapter.status()["connected"] == count

        order = DeliveryOrder(
            f"{PLATFORM}202611010001",
            MsgType.ACTUAL,
            Severity.ORANGE,
            "11B03",
            Priority.EMERGENCY,
            T0,
            T0 + timedelta(hours=1),
            "测试",
            url,
            None,
        )
        began = loop.time()
        results = await asyncio.gather(*(adapter.deliver(order, r.resource_code) for r in refs))
        ack_s = loop.time() - began
        assert all(r.outcome is Outcome.ACCEPTED for r in results), {r.failure for r in results}
        await until(lambda: sum(e.status is DeliveryStatus.PLAYED for e in sink.events) == count, within_s=15)
        for r in refs:
            plays = fleet.terminal(r.resource_code).played
            assert [p.ebm_id for p in plays] == [order.ebm_id] and plays[0].completed
        assert connect_s < 10.0 and ack_s < 10.0, (connect_s, ack_s)
    finally:
        await fleet.stop()
        await adapter.close()
        await runner.cleanup()
    with pytest.raises(KeyError, match="no simulated terminal"):
        fleet.terminal("60000000000000000000000")
