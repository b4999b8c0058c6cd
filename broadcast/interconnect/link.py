"""The live link with upper platforms (上级平台链路): heartbeats, link state, periodic reports, and reporting
county broadcasts upward (上报).

- `UpperLink.tick(now)`: a ConnectionCheck to each peer every `heartbeat_s` (default 30 s); a peer is online
  while it answered within `offline_after_s` (300 s) — logged once per change; after each (re)connection the
  platform info is pushed (Gospell does so after the first answered heartbeat); while online, EBRDTState +
  EBRPSState every `state_s` (120 s) and EBRPSInfo + EBRDTInfo every `info_s` (180 s).
- `BroadcastReporter.tick(now)`: polls the facade for broadcasts that changed state; an upper platform's
  broadcast gets an EBMStateResponse to its sender on each BrdStateCode change; a county-originated broadcast
  is reported to every peer as an EBM, then its state changes; every broadcast going on air is published
  to the media centre when one is configured.

Every report is queued in the outbox under a logical key (peer + period index, or EBM id + state code), so a
restart or a repeated poll never sends the same report twice. Must never sleep inside `tick` or read the
system clock: time is the `now` passed in (`run()` passes the injected clock's time between waits).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

import aiohttp

from broadcast.clock import Clock
from broadcast.interconnect.convert import brd_state, draft_to_ebm, state_response
from broadcast.interconnect.ebd.model import ConnectionCheck, OMDType
from broadcast.interconnect.ebd.signing import Verifier
from broadcast.interconnect.outbox import post_ebd
from broadcast.interconnect.resources import resource_report
from broadcast.interconnect.snapshot import BroadcastSnapshot
from broadcast.interconnect.upper import upper_origin
from broadcast.interconnect.upper_boundary import CountyFacade, UpperPeer, UpwardQueue
from broadcast.model import BroadcastState, MsgType

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from broadcast.interconnect.media import MediaPublisher

log = logging.getLogger(__name__)


class PeerLinkState(StrEnum):
    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True)
class LinkTiming:
    heartbeat_s: float = 30.0
    offline_after_s: float = 300.0
    state_s: float = 120.0
    info_s: float = 180.0
    timeout_s: float = 10.0


@dataclass
class PeerStatus:
    peer: UpperPeer
    state: PeerLinkState = PeerLinkState.UNKNOWN
    last_sent: datetime | None = None
    last_answer: datetime | None = None
    last_error: str = ""
    changes: list[tuple[datetime, PeerLinkState]] = field(default_factory=list)


def _period(now: datetime, seconds: float) -> int:
    return int(now.timestamp() // seconds)


class UpperLink:
    def __init__(
        self,
        peers: Sequence[UpperPeer],
        upward: UpwardQueue,
        facade: CountyFacade,
        session: aiohttp.ClientSession,
        clock: Clock,
        *,
        timing: LinkTiming | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        self._upward = upward
        self._facade = facade
        self._session = session
        self._clock = clock
        self.timing = timing or LinkTiming()
        self._verifier = verifier
        self.status = {p.ebrid: PeerStatus(p) for p in peers}

    def state(self, ebrid: str) -> PeerLinkState:
        return self.status[ebrid].state

    async def tick(self, now: datetime | None = None) -> None:
        now = now or self._clock.now()
        for st in self.status.values():
            due = st.last_sent is None or (now - st.last_sent).total_seconds() >= self.timing.heartbeat_s
            if due:
                await self._heartbeat(st, now)
            self._update_state(st, now)
            if st.state is PeerLinkState.ONLINE:
                await self._periodic(st, now)

    async def _heartbeat(self, st: PeerStatus, now: datetime) -> None:
        st.last_sent = now
        out = self._upward.maker.make(ConnectionCheck(now), st.peer.ebrid)
        try:
            outcome = await post_ebd(
                self._session,
                st.peer.url,
                out.ebd_id,
                out.tar,
                timeout=aiohttp.ClientTimeout(total=self.timing.timeout_s),
                verifier=self._verifier,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            st.last_error = f"{type(exc).__name__}: {exc}"
            return
        if outcome.acknowledged:
            st.last_answer = now
            st.last_error = ""
        else:
            st.last_error = f"{outcome.fault}: {outcome.detail}"

    def _update_state(self, st: PeerStatus, now: datetime) -> None:
        if st.last_answer is not None:
            fresh = (now - st.last_answer).total_seconds() < self.timing.offline_after_s
            new = PeerLinkState.ONLINE if fresh else PeerLinkState.OFFLINE
        else:  # never answered: offline as soon as a heartbeat failed
            new = PeerLinkState.OFFLINE if st.last_error else st.state
        if new is st.state:
            return
        st.state = new
        st.changes.append((now, new))
        name = st.peer.name or st.peer.ebrid
        if new is PeerLinkState.ONLINE:
            log.info("upper platform %s (%s) online", name, st.peer.url)
        else:
            log.warning("upper platform %s (%s) offline: %s", name, st.peer.url, st.last_error or "no answer")

    async def _periodic(self, st: PeerStatus, now: datetime) -> None:
        inv = self._facade.inventory()
        peer = st.peer
        connected_at = st.changes[-1][0] if st.changes else now
        reports: list[tuple[str, OMDType]] = [
            (f"connect:{int(connected_at.timestamp())}", OMDType.EBRPS_INFO),
            (f"info:{_period(now, self.timing.info_s)}", OMDType.EBRPS_INFO),
            (f"info:{_period(now, self.timing.info_s)}", OMDType.EBRDT_INFO),
            (f"state:{_period(now, self.timing.state_s)}", OMDType.EBRPS_STATE),
            (f"state:{_period(now, self.timing.state_s)}", OMDType.EBRDT_STATE),
        ]
        states = None
        for period, omd in reports:
            key = f"report:{peer.ebrid}:{omd.value}:{period}"
            if await self._upward.outbox.has_key(key):
                continue
            if states is None:
                states = await self._facade.terminal_states()
            body = resource_report(
                omd,
                inventory=inv,
                states=states,
                now=now,
                inventory_changed_at=self._facade.inventory_changed_at(),
                platform_url=self._upward.maker.callback_url,
            )
            await self._upward.queue(key, body, dest_ebrid=peer.ebrid, url=peer.url)

    async def run(self, stop: asyncio.Event, *, step_s: float = 1.0) -> None:
        """Tick until `stop` is set (production loop; tests call tick directly)."""
        while not stop.is_set():
            try:
                await self.tick(self._clock.now())
            except Exception:
                log.exception("upper link tick failed")
            try:
                await asyncio.wait_for(stop.wait(), step_s)
            except TimeoutError:
                pass


_REPORTED_STATES = frozenset(
    {
        BroadcastState.RENDERING,
        BroadcastState.BROADCASTING,
        BroadcastState.COMPLETED,
        BroadcastState.CANCELLED,
        BroadcastState.EXPIRED,
        BroadcastState.FAILED,
        BroadcastState.REJECTED,
    }
)
_ON_AIR = frozenset({BroadcastState.BROADCASTING, BroadcastState.COMPLETED})


class BroadcastReporter:
    """Turns broadcast state changes into EBM / EBMStateResponse reports and media-centre publications."""

    def __init__(
        self,
        facade: CountyFacade,
        upward: UpwardQueue,
        engine: AsyncEngine,
        clock: Clock,
        peers: Sequence[UpperPeer] = (),
        *,
        media: MediaPublisher | None = None,
        lookback_s: float = 3600.0,
        success_ratio: float = 1.0,
    ) -> None:
        self._facade = facade
        self._upward = upward
        self._engine = engine
        self._clock = clock
        self._peers = tuple(peers)
        self._media = media
        self._lookback = timedelta(seconds=lookback_s)
        self._since: datetime | None = None
        self._success_ratio = success_ratio

    async def tick(self, now: datetime | None = None) -> int:
        """Report what changed since the previous tick; returns how many reports were queued."""
        now = now or self._clock.now()
        since = (self._since or now - self._lookback) - timedelta(seconds=5)  # overlap: keys dedupe
        self._since = now
        queued = 0
        for snap in await self._facade.broadcasts_changed_since(since):
            queued += await self.report(snap, now)
        return queued

    async def report(self, snap: BroadcastSnapshot, now: datetime) -> int:
        queued = 0
        if self._media is not None and snap.state in _ON_AIR and snap.draft.msg_type is not MsgType.CANCEL:
            queued += int(await self._media.publish(snap, now))
        if snap.state not in _REPORTED_STATES:
            return queued
        inv = self._facade.inventory()
        code, _ = brd_state(snap, success_ratio=self._success_ratio)
        origin = await upper_origin(self._engine, snap.ebm_id)
        if origin is not None:
            if not origin.reply_url:
                return queued
            body = state_response(
                snap, ebm_id=origin.upper_ebm_id, now=now, inventory=inv, success_ratio=self._success_ratio
            )
            key = f"ebmstate:{origin.src_ebrid}:{origin.upper_ebm_id}:{int(code)}"
            queued += int(
                await self._upward.queue(
                    key,
                    body,
                    dest_ebrid=origin.src_ebrid,
                    url=origin.reply_url,
                    related=origin.request_ebd_id,
                )
            )
            return queued
        for peer in self._peers:
            ebm_key = f"ebm:{peer.ebrid}:{snap.ebm_id}"
            if not await self._upward.outbox.has_key(ebm_key):
                ebm = draft_to_ebm(
                    snap.ebm_id,
                    snap.draft,
                    platform_name=self._facade.platform_name,
                    platform_code=self._facade.platform_code,
                )
                queued += int(await self._upward.queue(ebm_key, ebm, dest_ebrid=peer.ebrid, url=peer.url))
            body = state_response(
                snap, ebm_id=snap.ebm_id, now=now, inventory=inv, success_ratio=self._success_ratio
            )
            key = f"ebmstate:{peer.ebrid}:{snap.ebm_id}:{int(code)}"
            queued += int(await self._upward.queue(key, body, dest_ebrid=peer.ebrid, url=peer.url))
        return queued

    async def run(self, stop: asyncio.Event, *, step_s: float = 2.0) -> None:
        while not stop.is_set():
            try:
                await self.tick(self._clock.now())
            except Exception:
                log.exception("broadcast reporter tick failed")
            try:
                await asyncio.wait_for(stop.wait(), step_s)
            except TimeoutError:
                pass
