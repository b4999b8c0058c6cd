"""The heartbeat blaster (sim/heartbeat_blaster.py) against a real IpSpeakerAdapter on 127.0.0.1: every
terminal registers, every heartbeat is answered OK, and the adapter saw exactly what the blaster sent."""

from __future__ import annotations

from collections import Counter

import pytest

from adapters.ip_speaker.adapter import IpSpeakerAdapter
from broadcast.clock import SystemClock
from broadcast.model import TerminalRef
from sim.heartbeat_blaster import BlastFailure, BlastPlan, blast
from terminals.inventory import default_inventory
from tests.helpers.sink import RecordingSink


def _heartbeats(sink: RecordingSink) -> Counter[str]:
    """Heartbeats the adapter reported, per terminal; no broadcast news is expected here."""
    assert sink.events == []
    return Counter(sink.heartbeats)


def _refs(n: int) -> list[TerminalRef]:
    return [t for t in default_inventory().terminals if t.adapter == "ip_speaker"][:n]


async def _adapter(sink: RecordingSink, refs: list[TerminalRef]) -> IpSpeakerAdapter:
    inv = default_inventory()
    adapter = IpSpeakerAdapter({"platform_code": inv.platform_code, "port": 0, "liveness_check_s": 0},
                               SystemClock())
    await adapter.start(sink, refs)
    return adapter


@pytest.mark.parametrize("encode_once", [False, True])
async def test_twenty_terminals_counted_both_sides(encode_once: bool) -> None:
    refs = _refs(20)
    sink = RecordingSink()
    adapter = await _adapter(sink, refs)
    seen_at_go: list[int] = []

    async def go() -> None:
        seen_at_go.append(sum(_heartbeats(sink).values()))

    try:
        report = await blast(refs, "127.0.0.1", adapter.port, default_inventory().platform_code,
                             BlastPlan(count=2_000, encode_once=encode_once), go=go)
    finally:
        await adapter.close()
    assert report.registered == 20 and report.failures == {}
    assert report.heartbeats_sent == 2_000
    assert report.replies_ok == 2_000 and report.replies_not_ok == 0 and report.stray_frames == 0
    assert seen_at_go == [20]  # the registration heartbeats, one per terminal
    assert sum(_heartbeats(sink).values()) == 20 + 2_000
    assert set(_heartbeats(sink)) == {r.resource_code for r in refs}
    assert all(n > 1 for n in _heartbeats(sink).values())  # every terminal took part
    assert adapter.status()["frames_in"] == 20 + 2_000
    assert report.elapsed_s > 0 and report.rate_per_s > 0


async def test_fixed_rate_and_duration_stop_by_themselves() -> None:
    refs = _refs(5)
    sink = RecordingSink()
    adapter = await _adapter(sink, refs)
    try:
        report = await blast(refs, "127.0.0.1", adapter.port, default_inventory().platform_code,
                             BlastPlan(duration_s=0.3, rate_per_s=200))
    finally:
        await adapter.close()
    # 200/s for 0.3 s: at most 60 (+ one per terminal at the edge); the rate is a ceiling.
    assert 5 <= report.heartbeats_sent <= 65
    assert report.replies_ok == report.heartbeats_sent
    assert sum(_heartbeats(sink).values()) == 5 + report.heartbeats_sent


async def test_unknown_terminal_is_refused_and_reported() -> None:
    refs = _refs(3)
    sink = RecordingSink()
    adapter = await _adapter(sink, refs[:2])  # the third is not in the adapter's inventory
    try:
        report = await blast(refs, "127.0.0.1", adapter.port, default_inventory().platform_code,
                             BlastPlan(count=30))
    finally:
        await adapter.close()
    assert report.registered == 2
    assert report.failures == {refs[2].resource_code: BlastFailure.REFUSED}
    assert report.replies_ok == 30
