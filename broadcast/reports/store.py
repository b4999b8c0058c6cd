"""Generated reports kept for a configurable time: the ``reports`` table and every query of it (saving,
the newest copy of a report, the listing and one stored report for the API, purging expired copies).

The table is defined on ``broadcast.store.tables.metadata`` and created by ``prepare_schema`` when the
composition root (or ``ebc report``) names it; nothing here creates tables. Owns only the stored copies
of reports; must never compute a report or touch another table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, Integer, String, Table, Text, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.store.tables import UtcDateTime, metadata

DEFAULT_KEEP = timedelta(days=400)  # a year of monthly reports plus a margin


class ReportKind(StrEnum):
    BROADCAST = "broadcast"  # effect evaluation of one broadcast; subject = broadcast id
    HEALTH_DAY = "health_day"  # subject = YYYY-MM-DD
    HEALTH_MONTH = "health_month"  # subject = YYYY-MM
    DRILL = "drill"  # subject = drill id


reports = Table(
    "reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("body", Text, nullable=False),
)
Index("ix_reports_kind_subject", reports.c.kind, reports.c.subject, reports.c.created_at)


@dataclass(frozen=True)
class StoredReport:
    report_id: int
    kind: ReportKind
    subject: str
    created_at: datetime
    expires_at: datetime


async def save_report(
    engine: AsyncEngine,
    kind: ReportKind,
    subject: str,
    body: Mapping[str, Any],
    *,
    now: datetime,
    keep: timedelta = DEFAULT_KEEP,
) -> int:
    """Store one generated report; returns its id. It is purged after ``now + keep``."""
    async with engine.begin() as conn:
        res = await conn.execute(
            insert(reports).values(
                kind=str(kind),
                subject=subject,
                created_at=now,
                expires_at=now + keep,
                body=json.dumps(body, ensure_ascii=False, default=str),
            )
        )
        return int(res.inserted_primary_key[0])  # type: ignore[index]


async def latest_report(
    engine: AsyncEngine, kind: ReportKind, subject: str, *, now: datetime
) -> dict[str, Any] | None:
    """The newest unexpired copy of a report, or None."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(reports.c.body)
                .where(reports.c.kind == str(kind), reports.c.subject == subject, reports.c.expires_at > now)
                .order_by(reports.c.created_at.desc(), reports.c.id.desc())
                .limit(1)
            )
        ).first()
    if row is None:
        return None
    body: dict[str, Any] = json.loads(row[0])
    return body


async def purge_expired(engine: AsyncEngine, *, now: datetime) -> int:
    """Delete reports whose keeping time has passed; returns how many were deleted."""
    async with engine.begin() as conn:
        res = await conn.execute(delete(reports).where(reports.c.expires_at <= now))
        return int(res.rowcount)


async def list_reports(
    engine: AsyncEngine, *, now: datetime, kind: ReportKind | None = None, limit: int = 100
) -> list[StoredReport]:
    """The unexpired stored reports (optionally of one kind), newest first, without their bodies."""
    stmt = (
        select(reports.c.id, reports.c.kind, reports.c.subject, reports.c.created_at, reports.c.expires_at)
        .where(reports.c.expires_at > now)
        .order_by(reports.c.created_at.desc(), reports.c.id.desc())
        .limit(limit)
    )
    if kind is not None:
        stmt = stmt.where(reports.c.kind == str(kind))
    async with engine.connect() as conn:
        rows = await conn.execute(stmt)
        return [StoredReport(r[0], ReportKind(r[1]), r[2], r[3], r[4]) for r in rows]


async def get_report(
    engine: AsyncEngine, report_id: int, *, now: datetime
) -> tuple[StoredReport, dict[str, Any]] | None:
    """One unexpired stored report with its body, or None."""
    async with engine.connect() as conn:
        r = (
            await conn.execute(select(reports).where(reports.c.id == report_id, reports.c.expires_at > now))
        ).first()
    if r is None:
        return None
    body: dict[str, Any] = json.loads(r.body)
    return StoredReport(r.id, ReportKind(r.kind), r.subject, r.created_at, r.expires_at), body
