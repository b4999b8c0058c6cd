"""Loads the configured inventory (areas, terminals) into the database and reads terminal state back.

Owns the terminals/areas/link_events rows. The configuration files are the source of truth for what
exists; the database is the source of truth for link state and history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.model import LinkState
from broadcast.store.tables import areas, link_events, terminals
from terminals.inventory_model import Inventory


async def sync_inventory(engine: AsyncEngine, inv: Inventory) -> tuple[int, int]:
    """Insert new areas/terminals and refresh static fields of known ones. Returns (added, updated)."""
    added = updated = 0
    async with engine.begin() as conn:
        known_areas = {r[0] for r in await conn.execute(select(areas.c.code))}
        new_areas = [
            {
                "code": a.code,
                "name": a.name,
                "level": str(a.level.value),
                "parent": a.parent,
                "latitude": a.latitude,
                "longitude": a.longitude,
            }
            for a in inv.areas
            if a.code not in known_areas
        ]
        if new_areas:
            await conn.execute(insert(areas), new_areas)
        rows = {r.resource_code: r for r in await conn.execute(select(terminals))}
        to_insert: list[dict[str, Any]] = []
        to_update: list[dict[str, Any]] = []
        for t in inv.terminals:
            static = {
                "area_code": t.area_code,
                "name": t.name,
                "kind": str(t.kind),
                "physical_address": t.physical_address,
                "adapter": t.adapter,
                "front_end": t.front_end,
                "latitude": t.latitude,
                "longitude": t.longitude,
            }
            old = rows.get(t.resource_code)
            if old is None:
                to_insert.append({"resource_code": t.resource_code, "link_state": "offline", **static})
            elif any(getattr(old, k) != v for k, v in static.items()):
                to_update.append({"b_code": t.resource_code, **static})
        if to_insert:
            await conn.execute(insert(terminals), to_insert)
            added = len(to_insert)
        if to_update:
            stmt = (
                update(terminals)
                .where(terminals.c.resource_code == bindparam("b_code"))
                .values({k: bindparam(k) for k in to_update[0] if k != "b_code"})
            )
            await conn.execute(stmt, to_update)
            updated = len(to_update)
    return added, updated


@dataclass(frozen=True)
class LinkChange:
    terminal_code: str
    state: LinkState
    at: datetime
    detail: str = ""


async def record_link_changes(engine: AsyncEngine, changes: Sequence[LinkChange]) -> None:
    """Append link transitions and update each terminal's current state, in one transaction."""
    if not changes:
        return
    async with engine.begin() as conn:
        await conn.execute(
            insert(link_events),
            [
                {"terminal_code": c.terminal_code, "state": str(c.state), "at": c.at, "detail": c.detail}
                for c in changes
            ],
        )
        latest: dict[str, LinkChange] = {}
        for c in changes:
            latest[c.terminal_code] = c
        await conn.execute(
            update(terminals)
            .where(terminals.c.resource_code == bindparam("b_code"))
            .values(link_state=bindparam("b_state"), link_changed_at=bindparam("b_at")),
            [{"b_code": c.terminal_code, "b_state": str(c.state), "b_at": c.at} for c in latest.values()],
        )


async def record_last_seen(engine: AsyncEngine, seen: dict[str, datetime]) -> None:
    if not seen:
        return
    async with engine.begin() as conn:
        await conn.execute(
            update(terminals)
            .where(terminals.c.resource_code == bindparam("b_code"))
            .values(last_seen=bindparam("b_seen")),
            [{"b_code": k, "b_seen": v} for k, v in seen.items()],
        )


async def list_terminals(engine: AsyncEngine, codes: Iterable[str] | None = None) -> list[dict[str, Any]]:
    stmt = select(terminals).order_by(terminals.c.resource_code)
    if codes is not None:
        stmt = stmt.where(terminals.c.resource_code.in_(list(codes)))
    async with engine.connect() as conn:
        result = await conn.execute(stmt)
        return [dict(r._mapping) for r in result]
