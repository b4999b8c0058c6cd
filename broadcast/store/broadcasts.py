"""Broadcast rows: EBM id allocation, creation with one queued delivery per terminal, lifecycle
transitions with an append-only event row, and read queries for the API.

Must never decide policy; callers decide, this module records (refusing transitions the lifecycle
table forbids).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from broadcast import lifecycle
from broadcast.codes import ebm_id as make_ebm_id
from broadcast.model import (
    AudioRef,
    BroadcastState,
    Content,
    DeliveryStatus,
    MessageDraft,
    MsgType,
    Severity,
    SourceKind,
    SourceRef,
    TerminalRef,
)
from broadcast.store.tables import broadcast_events, broadcasts, deliveries, delivery_events, ebm_sequences


@dataclass(frozen=True)
class PolicyColumns:
    """The desk's columns on a broadcast row: what the policy decided, kept so a restart rebuilds it."""

    policy_state: str
    hold_until: datetime | None = None
    hold_on_timeout: str | None = None
    composer: str = ""
    supersedes: tuple[str, ...] = ()
    exercise: bool = False

    def values(self) -> dict[str, Any]:
        return {
            "policy_state": self.policy_state,
            "hold_until": self.hold_until,
            "hold_on_timeout": self.hold_on_timeout,
            "composer": self.composer,
            "supersedes": json.dumps(list(self.supersedes), ensure_ascii=False),
            "exercise": int(self.exercise),
        }


class DuplicateSourceError(Exception):
    """The same source item (e.g. CAP sender+identifier+sent) was already accepted."""

    def __init__(self, source_key: str, broadcast_id: int, ebm_id: str) -> None:
        super().__init__(f"already accepted as broadcast {broadcast_id} ({ebm_id})")
        self.source_key = source_key
        self.broadcast_id = broadcast_id
        self.ebm_id = ebm_id


async def _next_sequence(conn: AsyncConnection, day: date) -> int:
    key = f"{day:%Y%m%d}"
    res = await conn.execute(
        update(ebm_sequences).where(ebm_sequences.c.day == key).values(last=ebm_sequences.c.last + 1)
    )
    if res.rowcount == 0:
        await conn.execute(insert(ebm_sequences).values(day=key, last=1))
        return 1
    row = (await conn.execute(select(ebm_sequences.c.last).where(ebm_sequences.c.day == key))).one()
    return int(row[0])


def draft_to_record(draft: MessageDraft) -> dict[str, Any]:
    return {
        "msg_type": int(draft.msg_type),
        "event_type": draft.event_type,
        "severity": int(draft.severity),
        "sender_name": draft.sender_name,
        "sender_code": draft.sender_code,
        "sent_at": draft.sent_at.isoformat(),
        "start_at": draft.start_at.isoformat(),
        "end_at": draft.end_at.isoformat(),
        "area_codes": list(draft.area_codes),
        "contents": [{"language": c.language, "title": c.title, "text": c.text} for c in draft.contents],
        "source": {
            "kind": str(draft.source.kind),
            "sender": draft.source.sender,
            "identifier": draft.source.identifier,
            "sent": draft.source.sent,
        },
        "related_ebm_id": draft.related_ebm_id,
        "warnings": list(draft.warnings),
        "terminal_codes": list(draft.terminal_codes),
        "audio_digest": draft.audio_digest,
        "volume": draft.volume,
    }


def record_to_draft(rec: dict[str, Any]) -> MessageDraft:
    src = rec["source"]
    return MessageDraft(
        msg_type=MsgType(rec["msg_type"]),
        event_type=rec["event_type"],
        severity=Severity(rec["severity"]),
        sender_name=rec["sender_name"],
        sender_code=rec["sender_code"],
        sent_at=datetime.fromisoformat(rec["sent_at"]),
        start_at=datetime.fromisoformat(rec["start_at"]),
        end_at=datetime.fromisoformat(rec["end_at"]),
        area_codes=tuple(rec["area_codes"]),
        contents=tuple(Content(**c) for c in rec["contents"]),
        source=SourceRef(SourceKind(src["kind"]), src["sender"], src["identifier"], src["sent"]),
        related_ebm_id=rec.get("related_ebm_id"),
        warnings=tuple(rec.get("warnings", ())),
        terminal_codes=tuple(rec.get("terminal_codes", ())),
        audio_digest=rec.get("audio_digest"),
        volume=rec.get("volume"),
    )


async def create_broadcast(
    engine: AsyncEngine,
    draft: MessageDraft,
    *,
    platform_code: str,
    received_at: datetime,
    local_day: date,
    targets: Sequence[TerminalRef],
    actor: str = "",
    policy: PolicyColumns | None = None,
) -> tuple[int, str]:
    """Allocate an EBM id and store the broadcast with a QUEUED delivery per target, atomically.

    Raises DuplicateSourceError when the same source item was accepted before (across restarts).
    """
    source_key = draft.source.key
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(broadcasts.c.id, broadcasts.c.ebm_id).where(broadcasts.c.source_key == source_key)
            )
        ).first()
    if row is not None:
        raise DuplicateSourceError(source_key, int(row[0]), str(row[1]))
    try:
        async with engine.begin() as conn:
            seq = await _next_sequence(conn, local_day)
            ebm = make_ebm_id(platform_code, local_day, seq)
            res = await conn.execute(
                insert(broadcasts).values(
                    ebm_id=ebm,
                    source_key=source_key,
                    source_kind=str(draft.source.kind),
                    msg_type=int(draft.msg_type),
                    event_type=draft.event_type,
                    severity=int(draft.severity),
                    priority=int(draft.priority),
                    sender_name=draft.sender_name,
                    sender_code=draft.sender_code,
                    related_ebm_id=draft.related_ebm_id,
                    title=draft.primary.title,
                    message_json=json.dumps(draft_to_record(draft), ensure_ascii=False),
                    area_codes=",".join(draft.area_codes),
                    sent_at=draft.sent_at,
                    start_at=draft.start_at,
                    end_at=draft.end_at,
                    received_at=received_at,
                    state=str(BroadcastState.RECEIVED),
                    state_changed_at=received_at,
                    **(policy.values() if policy else {}),
                )
            )
            bid = int(res.inserted_primary_key[0])  # type: ignore[index]
            await conn.execute(
                insert(broadcast_events).values(
                    broadcast_id=bid, state=str(BroadcastState.RECEIVED), at=received_at, actor=actor
                )
            )
            if targets:
                await conn.execute(
                    insert(deliveries),
                    [
                        {
                            "broadcast_id": bid,
                            "terminal_code": t.resource_code,
                            "area_code": t.area_code,
                            "status": str(DeliveryStatus.QUEUED),
                            "detail": "",
                            "attempts": 0,
                            "updated_at": received_at,
                        }
                        for t in targets
                    ],
                )
                ids = await conn.execute(select(deliveries.c.id).where(deliveries.c.broadcast_id == bid))
                await conn.execute(
                    insert(delivery_events),
                    [
                        {
                            "delivery_id": r[0],
                            "status": str(DeliveryStatus.QUEUED),
                            "detail": "",
                            "at": received_at,
                        }
                        for r in ids
                    ],
                )
    except IntegrityError as exc:
        # Lost a race with a concurrent intake of the same source item.
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(broadcasts.c.id, broadcasts.c.ebm_id).where(broadcasts.c.source_key == source_key)
                )
            ).first()
        if row is None:
            raise
        raise DuplicateSourceError(source_key, int(row[0]), str(row[1])) from exc
    return bid, ebm


async def transition(
    engine: AsyncEngine,
    broadcast_id: int,
    target: BroadcastState,
    at: datetime,
    *,
    actor: str = "",
    detail: str = "",
) -> BroadcastState:
    """Move a broadcast to ``target`` if the lifecycle allows it; returns the previous state."""
    async with engine.begin() as conn:
        return await transition_in(conn, broadcast_id, target, at, actor=actor, detail=detail)


async def transition_in(
    conn: AsyncConnection,
    broadcast_id: int,
    target: BroadcastState,
    at: datetime,
    *,
    actor: str = "",
    detail: str = "",
) -> BroadcastState:
    """``transition`` inside the caller's transaction (to commit it together with other writes)."""
    row = (await conn.execute(select(broadcasts.c.state).where(broadcasts.c.id == broadcast_id))).one()
    current = BroadcastState(row[0])
    lifecycle.check_broadcast(str(broadcast_id), current, target)
    res = await conn.execute(
        update(broadcasts)
        .where(broadcasts.c.id == broadcast_id, broadcasts.c.state == str(current))
        .values(state=str(target), state_changed_at=at)
    )
    if res.rowcount != 1:
        raise lifecycle.TransitionError("broadcast", str(broadcast_id), str(current), str(target))
    await conn.execute(
        insert(broadcast_events).values(
            broadcast_id=broadcast_id, state=str(target), at=at, actor=actor, detail=detail
        )
    )
    return current


async def set_audio(engine: AsyncEngine, broadcast_id: int, audio: AudioRef) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(broadcasts)
            .where(broadcasts.c.id == broadcast_id)
            .values(
                audio_digest=audio.digest,
                audio_format=audio.format,
                audio_duration_s=audio.duration_s,
                audio_engine=f"{audio.engine}:{audio.voice}" if audio.voice else audio.engine,
            )
        )


async def get_broadcast(engine: AsyncEngine, broadcast_id: int) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(broadcasts).where(broadcasts.c.id == broadcast_id))).first()
        return dict(row._mapping) if row is not None else None


async def list_broadcasts(engine: AsyncEngine, limit: int = 50) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(broadcasts).order_by(broadcasts.c.id.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]


async def broadcast_history(engine: AsyncEngine, broadcast_id: int) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(broadcast_events)
            .where(broadcast_events.c.broadcast_id == broadcast_id)
            .order_by(broadcast_events.c.id)
        )
        return [dict(r._mapping) for r in rows]


async def delivery_rows(engine: AsyncEngine, broadcast_id: int) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(deliveries).where(deliveries.c.broadcast_id == broadcast_id).order_by(deliveries.c.id)
        )
        return [dict(r._mapping) for r in rows]


async def broadcast_by_ebm(engine: AsyncEngine, ebm_id: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(broadcasts).where(broadcasts.c.ebm_id == ebm_id))).first()
    return None if row is None else dict(row._mapping)


async def broadcasts_changed_since(engine: AsyncEngine, since: datetime) -> list[dict[str, Any]]:
    """Broadcasts whose state changed since ``since``, and live ones any of whose deliveries moved."""
    live = (str(BroadcastState.RECEIVED), str(BroadcastState.RENDERING), str(BroadcastState.BROADCASTING))
    delivery_moved = exists().where(
        and_(deliveries.c.broadcast_id == broadcasts.c.id, deliveries.c.updated_at >= since)
    )
    query = (
        select(broadcasts)
        .where(or_(broadcasts.c.state_changed_at >= since, and_(broadcasts.c.state.in_(live), delivery_moved)))
        .order_by(broadcasts.c.id)
    )
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def broadcasts_starting_between(
    engine: AsyncEngine, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    query = select(broadcasts).order_by(broadcasts.c.id)
    if start is not None:
        query = query.where(broadcasts.c.start_at >= start)
    if end is not None:
        query = query.where(broadcasts.c.start_at <= end)
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def count_broadcasts(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(broadcasts))).scalar_one())


async def unfinished_broadcasts(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Broadcasts a restart must pick up again (rendering or broadcasting)."""
    states = [str(BroadcastState.RENDERING), str(BroadcastState.BROADCASTING), str(BroadcastState.RECEIVED)]
    async with engine.connect() as conn:
        rows = await conn.execute(select(broadcasts).where(broadcasts.c.state.in_(states)))
        return [dict(r._mapping) for r in rows]


async def find_by_source_keys(engine: AsyncEngine, keys: Sequence[str]) -> list[dict[str, Any]]:
    if not keys:
        return []
    async with engine.connect() as conn:
        rows = await conn.execute(select(broadcasts).where(broadcasts.c.source_key.in_(list(keys))))
        return [dict(r._mapping) for r in rows]


async def set_policy_state(engine: AsyncEngine, broadcast_id: int, policy_state: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(broadcasts).where(broadcasts.c.id == broadcast_id).values(policy_state=policy_state)
        )


async def all_broadcasts(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(broadcasts).order_by(broadcasts.c.id))
        return [dict(r._mapping) for r in rows]


async def broadcasts_in_state(engine: AsyncEngine, state: BroadcastState) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(broadcasts).where(broadcasts.c.state == str(state)).order_by(broadcasts.c.id)
        )
        return [dict(r._mapping) for r in rows]


async def cancel_queued(engine: AsyncEngine, broadcast_id: int, at: datetime, detail: str) -> int:
    """Settle the queued deliveries of a broadcast that will never go out (append-only history too)."""
    async with engine.begin() as conn:
        return await cancel_queued_in(conn, broadcast_id, at, detail)


async def cancel_queued_in(conn: AsyncConnection, broadcast_id: int, at: datetime, detail: str) -> int:
    """``cancel_queued`` inside the caller's transaction."""
    ids = [
        r[0]
        for r in await conn.execute(
            select(deliveries.c.id).where(
                deliveries.c.broadcast_id == broadcast_id,
                deliveries.c.status == str(DeliveryStatus.QUEUED),
            )
        )
    ]
    if not ids:
        return 0
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(ids))
        .values(status=str(DeliveryStatus.CANCELLED), reason="cancelled", detail=detail, updated_at=at)
    )
    await conn.execute(
        insert(delivery_events),
        [
            {
                "delivery_id": i,
                "status": str(DeliveryStatus.CANCELLED),
                "reason": "cancelled",
                "detail": detail,
                "at": at,
            }
            for i in ids
        ],
    )
    return len(ids)


async def finish_unaired(
    engine: AsyncEngine, broadcast_id: int, state: BroadcastState, at: datetime, *, actor: str = "", detail: str = ""
) -> None:
    """A broadcast that will never go on air (rejected, expired or cancelled while held): its state and
    its queued deliveries settle in one transaction, so no reader sees one without the other."""
    async with engine.begin() as conn:
        await transition_in(conn, broadcast_id, state, at, actor=actor, detail=detail)
        await cancel_queued_in(conn, broadcast_id, at, detail)


async def note_event(
    engine: AsyncEngine, broadcast_id: int, at: datetime, *, detail: str, actor: str = ""
) -> None:
    """An event in a broadcast's history that is not a state change (e.g. speech synthesis failed)."""
    async with engine.begin() as conn:
        row = (await conn.execute(select(broadcasts.c.state).where(broadcasts.c.id == broadcast_id))).one()
        await conn.execute(
            insert(broadcast_events).values(
                broadcast_id=broadcast_id, state=row[0], at=at, actor=actor, detail=detail
            )
        )
