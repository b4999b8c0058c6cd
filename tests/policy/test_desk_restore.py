"""After a restart the desk rebuilds the policy from the store; a message it had decided to hold just
before the restart (still ``received``) goes back on hold with its deadline — once — and is released by
time as configured; what was going on air is left to the pipeline's resume. The desk alone: real store,
a recording stand-in for the pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.app.schema import feature_tables
from broadcast.clock import ManualClock
from broadcast.model import (
    BroadcastState,
    Content,
    MessageDraft,
    MsgType,
    Severity,
    SourceKind,
    SourceRef,
    TerminalRef,
)
from broadcast.policy.config import policy_config
from broadcast.policy.desk import Desk
from broadcast.policy.engine import PolicyEngine
from broadcast.policy.types import RecordState
from broadcast.store import broadcasts as store
from broadcast.store.broadcasts import PolicyColumns
from broadcast.store.db import make_engine, prepare_schema
from terminals.inventory import default_inventory

T0 = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)


@dataclass
class Airing:
    """The pipeline as the desk sees it, recording what it is told."""

    engine: AsyncEngine
    clock: ManualClock
    held: list[int] = field(default_factory=list)
    aired: list[int] = field(default_factory=list)

    async def record(self, draft: MessageDraft, targets: Sequence[TerminalRef] | None = None, **_: Any) -> Any:
        raise AssertionError("nothing new is recorded on restore")

    def air(self, broadcast_id: int, ebm_id: str, draft: MessageDraft, targets: Any = None) -> None:
        self.aired.append(broadcast_id)

    async def hold(self, broadcast_id: int, *, detail: str, actor: str = "") -> None:
        self.held.append(broadcast_id)
        await store.transition(self.engine, broadcast_id, BroadcastState.PENDING_APPROVAL, self.clock.now(), detail=detail)

    async def refuse(self, broadcast_id: int, state: BroadcastState, *, detail: str, actor: str = "") -> None:
        await store.transition(self.engine, broadcast_id, state, self.clock.now(), detail=detail)

    async def stop(self, broadcast_id: int, *, actor: str = "") -> int:
        return 0


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite3'}")
    await prepare_schema(eng, feature_tables())
    yield eng
    await eng.dispose()


async def stored(engine: AsyncEngine, n: int, policy: PolicyColumns, severity: Severity = Severity.YELLOW) -> tuple[int, str]:
    inv = default_inventory()
    draft = MessageDraft(
        msg_type=MsgType.ACTUAL, event_type="11B03", severity=severity, sender_name="安宁市气象台",
        sender_code="53018141600000", sent_at=T0, start_at=T0, end_at=T0 + timedelta(hours=2),
        area_codes=(inv.county.code,), contents=(Content("zho", f"预警{n}", "正文"),),
        source=SourceRef(SourceKind.CAP, "安宁市气象台", f"restore-{n}", T0.isoformat()),
    )
    bid, _ = await store.create_broadcast(
        engine, draft, platform_code=inv.platform_code, received_at=T0, local_day=date(2026, 12, 8),
        targets=inv.terminals[:3], policy=policy,
    )
    return bid, draft.source.key


async def test_a_hold_decided_before_the_restart_is_held_again(engine: AsyncEngine) -> None:
    clock = ManualClock(T0 + timedelta(minutes=1))
    held, held_key = await stored(
        engine, 1, PolicyColumns("held", hold_until=T0 + timedelta(minutes=10), hold_on_timeout="release")
    )
    _live, live_key = await stored(engine, 2, PolicyColumns("live"), Severity.RED)
    airing = Airing(engine, clock)
    policy = PolicyEngine(policy_config({}), clock)
    desk = Desk(engine, airing, policy, clock)

    await desk.restore()
    assert airing.held == [held] and airing.aired == []  # the live one is the pipeline's resume to continue
    assert policy.state_of(held_key) is RecordState.HELD and policy.state_of(live_key) is RecordState.LIVE
    row = await store.get_broadcast(engine, held)
    assert row is not None and row["state"] == str(BroadcastState.PENDING_APPROVAL)

    # A second restart finds it pending already: it is not held twice.
    again = Airing(engine, clock)
    await Desk(engine, again, PolicyEngine(policy_config({}), clock), clock).restore()
    assert again.held == []

    # Its hold window still runs out as configured (release: on air without an operator).
    clock.advance(10 * 60)
    await desk.tick()
    assert airing.aired == [held]
