"""The receipt book's writes: a batch of status changes becomes append-only history plus each delivery's
latest state, in one transaction; the first acknowledged/playing times are kept across batches, and what
``deliveries_of`` reads back is what was written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.model import (
    Content,
    DeliveryStatus,
    FailureReason,
    MessageDraft,
    MsgType,
    Severity,
    SourceKind,
    SourceRef,
)
from broadcast.store import broadcasts as store
from broadcast.store.db import make_engine, prepare_schema
from broadcast.store.deliveries import StatusWrite, deliveries_of, write_statuses
from broadcast.store.tables import delivery_events
from terminals.inventory import default_inventory

T0 = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)
S = timedelta(seconds=1)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}")
    await prepare_schema(eng)  # the store's own tables: nothing else is needed here
    yield eng
    await eng.dispose()


async def test_batches_keep_history_and_the_first_times(engine: AsyncEngine) -> None:
    inv = default_inventory()
    two = inv.terminals[:2]
    draft = MessageDraft(
        msg_type=MsgType.ACTUAL, event_type="11B03", severity=Severity.RED, sender_name="测试",
        sender_code=inv.platform_code, sent_at=T0, start_at=T0, end_at=T0 + 3600 * S,
        area_codes=(inv.county.code,), contents=(Content("zho", "标题", "正文"),),
        source=SourceRef(SourceKind.CAP, "test", "deliveries-1"),
    )
    bid, _ = await store.create_broadcast(
        engine, draft, platform_code=inv.platform_code, received_at=T0, local_day=date(2026, 12, 8), targets=two
    )
    a, b = await deliveries_of(engine, bid)
    assert (a.status, b.status) == (DeliveryStatus.QUEUED, DeliveryStatus.QUEUED)
    await write_statuses(engine, [
        StatusWrite(a.delivery_id, DeliveryStatus.SENT, None, "attempt 1", T0 + S, 1),
        StatusWrite(a.delivery_id, DeliveryStatus.ACKNOWLEDGED, None, "", T0 + 2 * S, 1),
        StatusWrite(b.delivery_id, DeliveryStatus.SENT, None, "attempt 1", T0 + S, 1),
        StatusWrite(a.delivery_id, DeliveryStatus.PLAYING, None, "", T0 + 3 * S, 1),
    ])
    await write_statuses(engine, [
        StatusWrite(a.delivery_id, DeliveryStatus.PLAYED, None, "", T0 + 60 * S, 1),
        StatusWrite(b.delivery_id, DeliveryStatus.FAILED, FailureReason.NO_ACK, "无应答", T0 + 9 * S, 1),
    ])
    await write_statuses(engine, [])  # nothing to write is not an error
    now = {d.terminal_code: d for d in await deliveries_of(engine, bid)}
    assert now[a.terminal_code].status is DeliveryStatus.PLAYED and now[b.terminal_code].status is DeliveryStatus.FAILED
    rows = {r["terminal_code"]: r for r in await store.delivery_rows(engine, bid)}
    ra, rb = rows[a.terminal_code], rows[b.terminal_code]
    assert (ra["acknowledged_at"], ra["playing_at"], ra["played_at"]) == (T0 + 2 * S, T0 + 3 * S, T0 + 60 * S)
    assert (rb["reason"], rb["detail"], rb["acknowledged_at"]) == ("no_ack", "无应答", None)
    async with engine.connect() as conn:
        history = [
            (r[0], r[1])
            for r in await conn.execute(
                select(delivery_events.c.delivery_id, delivery_events.c.status).order_by(delivery_events.c.id)
            )
        ]
    assert [s for i, s in history if i == a.delivery_id] == ["queued", "sent", "acknowledged", "playing", "played"]
    assert [s for i, s in history if i == b.delivery_id] == ["queued", "sent", "failed"]
