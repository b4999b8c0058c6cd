"""Builds the time-driven services from settings: the drill schedule (``[[drills]]``) and the scheduled
health reports (``[reports]``). Composition only; the rules are in ``broadcast.schedule`` and
``broadcast.reports``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.reports.jobs import OpsConfig, OpsService
from broadcast.schedule.drill_service import DrillService
from broadcast.schedule.drills import Prerender, drills_from_config
from broadcast.schedule.jobstore import jobstore_url
from broadcast.schedule.slots import Submit
from broadcast.settings import Settings
from terminals.inventory_model import Inventory


def drill_service(
    settings: Settings,
    inventory: Inventory,
    engine: AsyncEngine,
    clock: Clock,
    submit: Submit,
    *,
    prerender: Prerender | None = None,
) -> DrillService | None:
    """DrillService from ``[[drills]]`` (default: the monthly county drill; ``drills = []``: none)."""
    entries: Sequence[Mapping[str, Any]] = settings.raw.get("drills", [{"id": "monthly"}])
    specs = drills_from_config(entries, inventory.county.code)
    if not specs:
        return None
    return DrillService(
        engine=engine,
        clock=clock,
        submit=submit,
        drills=specs,
        sender_name=inventory.platform_name or inventory.name,
        sender_code=inventory.platform_code,
        jobstore_url=jobstore_url(settings.database_url, settings.base_dir / "var" / "drill-jobs.sqlite3"),
        prerender=prerender,
    )


def report_service(settings: Settings, inventory: Inventory, engine: AsyncEngine, clock: Clock) -> OpsService:
    """The scheduled health reports from ``[reports]``."""
    return OpsService(engine, inventory, clock, config=OpsConfig.from_raw(settings.raw.get("reports", {})))
