"""Scheduled reports (运维报表任务): the daily and monthly terminal health reports kept for
``[reports] keep_days``, purging expired copies, and the stored reports' listing.

Configuration (all optional)::

    [reports]
    keep_days = 400          # how long a generated report is kept in the database
    daily_at = "01:00"       # Beijing time: yesterday's daily health report is generated after this
    monthly_at = "02:00"     # on the 1st, Beijing time: last month's report is generated after this
    chronic_days = 3.0       # 长期离线 threshold of the health reports
    check_every_s = 300      # how often the service looks for due work

Due rules (idempotent, so a restart catches up without doubling): the daily report of day D is due from
D+1 at ``daily_at``; the monthly report of month M from the 1st of M+1 at ``monthly_at``. At every
check only the latest due day and month are generated if no unexpired copy is stored (no back-fill of
older periods: ``ebc report`` does that on demand). Every check also purges expired copies.

Owns when reports are generated and kept; the stored copies and their queries are ``reports/store.py``'s
(``list_reports``/``get_report`` here only supply the clock). Must never compute a report figure (the
report modules do), never create tables (``prepare_schema`` does), never start or stop the drills (the
composition root does) and never air anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import BEIJING, Clock
from broadcast.periodic import Periodic
from broadcast.reports.health import DEFAULT_CHRONIC_DAYS, Period, health_report
from broadcast.reports.store import (
    ReportKind,
    StoredReport,
    get_report,
    latest_report,
    list_reports,
    purge_expired,
    save_report,
)
from terminals.inventory_model import Inventory

log = logging.getLogger(__name__)


class OpsFault(StrEnum):
    BAD_VALUE = "bad_value"


class OpsConfigError(ValueError):
    def __init__(self, fault: OpsFault, key: str, detail: str) -> None:
        super().__init__(f"运维配置错误：[reports] {key}：{detail}。请修正配置后重启。")
        self.fault = fault
        self.key = key


def _hhmm(raw: Mapping[str, Any], key: str, default: str) -> time:
    value = raw.get(key, default)
    try:
        h, m = str(value).split(":")
        return time(int(h), int(m))
    except ValueError:
        raise OpsConfigError(OpsFault.BAD_VALUE, key, f"应为 HH:MM，实际为 {value!r}") from None


def _positive(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise OpsConfigError(OpsFault.BAD_VALUE, key, f"应为正数，实际为 {value!r}")
    return float(value)


@dataclass(frozen=True)
class OpsConfig:
    keep_days: int = 400
    daily_at: time = time(1, 0)
    monthly_at: time = time(2, 0)
    chronic_days: float = DEFAULT_CHRONIC_DAYS
    check_every_s: float = 300.0

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> OpsConfig:
        """From the ``[reports]`` table; raises OpsConfigError naming the bad key."""
        return cls(
            keep_days=int(_positive(raw, "keep_days", 400)),
            daily_at=_hhmm(raw, "daily_at", "01:00"),
            monthly_at=_hhmm(raw, "monthly_at", "02:00"),
            chronic_days=_positive(raw, "chronic_days", DEFAULT_CHRONIC_DAYS),
            check_every_s=_positive(raw, "check_every_s", 300),
        )

    @property
    def keep(self) -> timedelta:
        return timedelta(days=self.keep_days)


def due_day(now: datetime, at: time) -> date:
    """The latest day whose daily report is due at ``now`` (Beijing days)."""
    local = now.astimezone(BEIJING)
    today = local.date()
    return today - timedelta(days=1 if local.time() >= at else 2)


def due_month(now: datetime, at: time) -> Period:
    """The latest month whose monthly report is due at ``now``."""
    local = now.astimezone(BEIJING)
    y, m = local.year, local.month
    back = 1 if (local.day > 1 or local.time() >= at) else 2
    for _ in range(back):
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return Period.month(y, m)


@dataclass(frozen=True)
class Generated:
    report_id: int
    kind: ReportKind
    subject: str


class OpsService:
    """See the module docstring."""

    def __init__(
        self,
        engine: AsyncEngine,
        inventory: Inventory,
        clock: Clock,
        *,
        config: OpsConfig | None = None,
    ) -> None:
        self.engine = engine
        self.inventory = inventory
        self.clock = clock
        self.config = config or OpsConfig()
        self._rounds = Periodic("ops", self.tick, every_s=self.config.check_every_s, retry_s=self.config.check_every_s)
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Do due work once, then check every ``check_every_s``."""
        try:
            await self.tick()
        except Exception:
            log.exception("first operations check failed; will retry in %gs", self.config.check_every_s)
        await self._rounds.start()

    async def close(self) -> None:
        await self._rounds.stop()

    # -- scheduled work ---------------------------------------------------------------------------

    async def tick(self, now: datetime | None = None) -> list[Generated]:
        """Generate the due daily and monthly reports that are not stored yet; purge expired ones."""
        now = now or self.clock.now()
        out: list[Generated] = []
        async with self._lock:
            day = Period.day(due_day(now, self.config.daily_at))
            month = due_month(now, self.config.monthly_at)
            for kind, period in ((ReportKind.HEALTH_DAY, day), (ReportKind.HEALTH_MONTH, month)):
                if await latest_report(self.engine, kind, period.label, now=now) is None:
                    out.append(await self._generate(period, now))
            purged = await purge_expired(self.engine, now=now)
        if purged:
            log.info("purged %d expired reports", purged)
        return out

    async def generate_health(self, period: Period, now: datetime | None = None) -> Generated:
        """Generate and store a health report now (on demand), whatever is stored already."""
        async with self._lock:
            return await self._generate(period, now or self.clock.now())

    async def _generate(self, period: Period, now: datetime) -> Generated:
        report = await health_report(
            self.engine, self.inventory, period, now=now, chronic_days=self.config.chronic_days
        )
        kind = ReportKind.HEALTH_MONTH if period.kind == "month" else ReportKind.HEALTH_DAY
        rid = await save_report(self.engine, kind, period.label, report, now=now, keep=self.config.keep)
        log.info("health report %s %s generated (id %d)", kind, period.label, rid)
        return Generated(rid, kind, period.label)

    # -- stored reports ---------------------------------------------------------------------------

    async def list_reports(self, *, kind: ReportKind | None = None, limit: int = 100) -> list[StoredReport]:
        """The unexpired stored reports now, newest first."""
        return await list_reports(self.engine, now=self.clock.now(), kind=kind, limit=limit)

    async def get_report(self, report_id: int) -> tuple[StoredReport, dict[str, Any]] | None:
        """One unexpired stored report with its body, or None."""
        return await get_report(self.engine, report_id, now=self.clock.now())
