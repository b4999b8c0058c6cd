"""Shared rig for the upper-link tests: a fake county facade, a county app with `install_interconnect()`
over a session and tables the rig owns, and the simulated province platform, all on 127.0.0.1 (imported by
the tests; not a test module)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.app.schema import feature_tables
from broadcast.clock import ManualClock
from broadcast.interconnect.ebd.signing import Signer, Verifier, generate_private_key
from broadcast.interconnect.link import LinkTiming
from broadcast.interconnect.routes import Interconnect, InterconnectSettings, install_interconnect
from broadcast.interconnect.snapshot import AdapterCount, BroadcastSnapshot, TerminalStatus
from broadcast.interconnect.upper_boundary import UpperPeer
from broadcast.model import BroadcastState, LinkState, MessageDraft
from broadcast.store.db import make_engine, prepare_schema
from sim.media_centre import MediaCentre
from sim.upper_platform import PROVINCE, PROVINCE_CERT_SN, ProvincePlatform
from terminals.inventory import default_inventory
from terminals.inventory_model import Inventory

COUNTY_CERT_SN = "000000000101"
COUNTY_KEY = generate_private_key()
START = datetime(2026, 11, 5, 1, 30, tzinfo=UTC)


class FakeFacade:
    """The county core as the interconnect sees it; records what it was asked to do."""

    def __init__(self, clock: ManualClock, inventory: Inventory) -> None:
        self.clock = clock
        self._inventory = inventory
        self.drafts: list[MessageDraft] = []
        self.cancelled: list[str] = []
        self.snaps: dict[str, BroadcastSnapshot] = {}
        self.states: dict[str, TerminalStatus] = {}
        self.changed_at = clock.now()
        self._seq = itertools.count(1)

    @property
    def platform_code(self) -> str:
        return self._inventory.platform_code

    @property
    def platform_name(self) -> str:
        return self._inventory.platform_name

    def _new_id(self) -> str:
        return f"{self.platform_code}20261105{next(self._seq):04d}"

    async def submit_upper(self, draft: MessageDraft) -> tuple[int, str]:
        self.drafts.append(draft)
        ebm = self._new_id()
        self.snaps[ebm] = BroadcastSnapshot(ebm, BroadcastState.RECEIVED, draft, self.clock.now())
        return len(self.drafts), ebm

    def add_local(self, draft: MessageDraft) -> str:
        ebm = self._new_id()
        self.snaps[ebm] = BroadcastSnapshot(ebm, BroadcastState.RECEIVED, draft, self.clock.now())
        return ebm

    async def cancel_by_ebm(self, ebm_id: str) -> bool:
        if ebm_id not in self.snaps:
            return False
        self.cancelled.append(ebm_id)
        self.set_state(ebm_id, BroadcastState.CANCELLED)
        return True

    def set_state(self, ebm_id: str, state: BroadcastState, **kw: Any) -> None:
        self.snaps[ebm_id] = replace(self.snaps[ebm_id], state=state, changed_at=self.clock.now(), **kw)

    def air(self, ebm_id: str, *, targets: int, played: int, state: BroadcastState) -> None:
        self.set_state(
            ebm_id,
            state,
            targets=targets,
            played=played,
            failed=targets - played,
            by_adapter=(AdapterCount("ip_speaker", targets, played, targets - played),),
            covered_area_codes=("530181000000",),
            started_at=self.clock.now(),
            audio_url="http://127.0.0.1:1/audio/abc.mp3",
        )

    async def broadcast_state(self, ebm_id: str) -> BroadcastSnapshot | None:
        return self.snaps.get(ebm_id)

    async def broadcasts_changed_since(self, since: datetime) -> Sequence[BroadcastSnapshot]:
        return [s for s in self.snaps.values() if s.changed_at >= since]

    async def broadcasts_between(
        self, start: datetime | None, end: datetime | None
    ) -> Sequence[BroadcastSnapshot]:
        return list(self.snaps.values())

    def inventory(self) -> Inventory:
        return self._inventory

    def inventory_changed_at(self) -> datetime:
        return self.changed_at

    async def terminal_states(self) -> Mapping[str, TerminalStatus]:
        return self.states


@dataclass
class Rig:
    clock: ManualClock
    facade: FakeFacade
    province: ProvincePlatform
    ic: Interconnect
    engine: AsyncEngine
    county_url: str
    media: MediaCentre | None = None


@asynccontextmanager
async def county_rig(
    tmp_path: Path,
    *,
    accept_dest: frozenset[str] = frozenset(),
    timing: LinkTiming | None = None,
    with_media: bool = False,
    media_token: str | None = None,
    clock: ManualClock | None = None,
) -> AsyncIterator[Rig]:
    clock = clock or ManualClock(START)
    inventory = default_inventory()
    facade = FakeFacade(clock, inventory)
    province = ProvincePlatform(inventory.platform_code, COUNTY_KEY.public_key(), COUNTY_CERT_SN, clock=clock)
    await province.start()
    media = MediaCentre() if with_media else None
    if media is not None:
        await media.start()
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'county.db'}")
    await prepare_schema(engine, feature_tables())
    session = aiohttp.ClientSession()
    app = web.Application()
    settings = InterconnectSettings(
        peers=(UpperPeer(PROVINCE, province.url, "云南省平台"),),
        accept_dest=accept_dest,
        callback_url="http://127.0.0.1:9/ebd",
        media_url=media.url if media else None,
        media_token=media_token,
        timing=timing or LinkTiming(),
        run_loops=False,
    )
    ic = install_interconnect(
        app,
        facade,
        engine=engine,
        session=session,
        signer=Signer(COUNTY_KEY, COUNTY_CERT_SN, clock=clock),
        verifier=Verifier({PROVINCE_CERT_SN: province.key.public_key()}),
        clock=clock,
        settings=settings,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    province.county_url = f"http://127.0.0.1:{port}/ebd"
    try:
        yield Rig(clock, facade, province, ic, engine, f"http://127.0.0.1:{port}", media)
    finally:
        await runner.cleanup()
        await session.close()
        await province.close()
        if media is not None:
            await media.close()
        await engine.dispose()


def online(states: Mapping[str, LinkState], at: datetime) -> dict[str, TerminalStatus]:
    return {code: TerminalStatus(state, at) for code, state in states.items()}
