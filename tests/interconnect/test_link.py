"""The upper link: heartbeats, online/offline with a 300 s grace, logged once per change, periodic reports."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from upper_helpers import county_rig

from broadcast.interconnect.ebd.model import EBDType
from broadcast.interconnect.link import PeerLinkState
from sim.upper_platform import PROVINCE


async def test_heartbeat_loss_goes_offline_then_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="broadcast.interconnect.link")
    async with county_rig(tmp_path) as rig:
        link = rig.ic.link
        await link.tick()
        assert link.state(PROVINCE) is PeerLinkState.ONLINE
        assert rig.province.heartbeats == 1
        await link.tick()  # not due again yet
        assert rig.province.heartbeats == 1

        rig.province.go_offline()
        for _ in range(9):  # 270 s without an answer: still inside the grace period
            rig.clock.advance(30)
            await link.tick()
            assert link.state(PROVINCE) is PeerLinkState.ONLINE
        for _ in range(4):
            rig.clock.advance(30)
            await link.tick()
        assert link.state(PROVINCE) is PeerLinkState.OFFLINE
        offline_logs = [r for r in caplog.records if "offline" in r.getMessage()]
        assert len(offline_logs) == 1  # once per change, not on every failed heartbeat

        rig.province.go_online()
        rig.clock.advance(30)
        await link.tick()
        assert link.state(PROVINCE) is PeerLinkState.ONLINE
        states = [s for _, s in link.status[PROVINCE].changes]
        assert states == [PeerLinkState.ONLINE, PeerLinkState.OFFLINE, PeerLinkState.ONLINE]
        assert len([r for r in caplog.records if "online" in r.getMessage()]) == 2
        assert rig.province.violations == []


async def test_unreachable_peer_is_offline_from_the_first_failure(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        rig.province.go_offline()
        await rig.ic.link.tick()
        assert rig.ic.link.state(PROVINCE) is PeerLinkState.OFFLINE


async def test_periodic_reports_follow_their_intervals(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        link, outbox = rig.ic.link, rig.ic.outbox
        await link.tick()
        await outbox.deliver_due()
        assert len(rig.province.of_type(EBDType.EBRDT_STATE)) == 1
        assert len(rig.province.of_type(EBDType.EBRPS_INFO)) >= 1  # pushed on connection, as Gospell does
        assert len(rig.province.of_type(EBDType.EBRDT_INFO)) == 1
        infos = len(rig.province.of_type(EBDType.EBRPS_INFO))

        await link.tick()
        await outbox.deliver_due()
        assert len(rig.province.of_type(EBDType.EBRDT_STATE)) == 1  # same period: nothing new

        for _ in range(4):  # 120 s later: the next state report
            rig.clock.advance(30)
            await link.tick()
        await outbox.deliver_due()
        assert len(rig.province.of_type(EBDType.EBRDT_STATE)) == 2
        for _ in range(2):  # 180 s after the start: the next info report
            rig.clock.advance(30)
            await link.tick()
        await outbox.deliver_due()
        assert len(rig.province.of_type(EBDType.EBRDT_INFO)) == 2
        assert len(rig.province.of_type(EBDType.EBRPS_INFO)) == infos + 1

        rig.province.go_offline()
        for _ in range(12):  # offline: no periodic state reports are queued for a dead link
            rig.clock.advance(30)
            await link.tick()
        assert link.state(PROVINCE) is PeerLinkState.OFFLINE
        pending = [i for i in await outbox.items() if i.label == "EBRDTState" and i.state.value == "pending"]
        assert len(pending) <= 3  # only those queued while the link was still inside its grace period
        assert rig.province.violations == []
