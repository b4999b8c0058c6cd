"""The report routes on a bare aiohttp app (no security layer: the matrix is broadcast.app.web's), with a
manual clock: list, fetch as JSON/HTML/CSV, on-demand generation, and live online rates per street."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import BEIJING, ManualClock
from broadcast.dispatch.links import LinkTracker
from broadcast.events import Events
from broadcast.model import LinkState
from broadcast.reports.jobs import OpsService
from broadcast.web.reports_routes import add_report_routes
from terminals.inventory_model import Inventory

NOW = datetime(2026, 11, 20, 12, tzinfo=BEIJING)
Client = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


async def make(
    engine: AsyncEngine, inventory: Inventory, aiohttp_client: Client
) -> tuple[LinkTracker, TestClient[Any, Any]]:
    links = LinkTracker(engine, Events())
    app = web.Application()
    ops = OpsService(engine, inventory, ManualClock(NOW))
    add_report_routes(app, inventory=inventory, links=links, ops=ops)
    return links, await aiohttp_client(app)


async def test_generate_list_and_fetch(engine: AsyncEngine, inventory: Inventory, aiohttp_client: Client) -> None:
    _, client = await make(engine, inventory, aiohttp_client)
    r = await client.post("/api/reports/health?month=2026-11")
    assert r.status == 201
    made = await r.json()
    listed = (await (await client.get("/api/reports?kind=health_month")).json())["reports"]
    assert [x["id"] for x in listed] == [made["id"]] and listed[0]["subject"] == "2026-11"
    body = await (await client.get(made["url"])).json()
    assert body["report"]["kind"] == "terminal_health" and len(body["report"]["terminals"]) == len(inventory.terminals)
    html = await client.get(made["url"] + "?format=html")
    assert html.content_type == "text/html" and "在线率" in await html.text()
    csv = await client.get(made["url"] + "?format=csv&table=terminals.csv")
    assert csv.status == 200 and len((await csv.text()).strip().splitlines()) == 1 + len(inventory.terminals)
    assert (await client.get(made["url"] + "?format=csv&table=nope.csv")).status == 404
    assert (await client.get(made["url"] + "?format=pdf")).status == 400
    missing = await client.get("/api/reports/99999")
    assert missing.status == 404 and "不存在" in (await missing.json())["message"]
    bad = await client.post("/api/reports/health?month=November")
    assert bad.status == 400 and "YYYY-MM" in (await bad.json())["message"]
    assert (await client.post("/api/reports/health")).status == 400
    assert (await client.get("/api/reports?kind=nope")).status == 400


async def test_live_online_rates(engine: AsyncEngine, inventory: Inventory, aiohttp_client: Client) -> None:
    links, client = await make(engine, inventory, aiohttp_client)
    street = inventory.path(inventory.terminals[0].area_code)[1].code
    members = [t for t in inventory.terminals if inventory.path(t.area_code)[1].code == street]
    for t in inventory.terminals:
        links.link(t.resource_code, LinkState.ONLINE, NOW)
    links.link(members[0].resource_code, LinkState.FAULT, NOW)
    links.link(members[1].resource_code, LinkState.OFFLINE, NOW)
    links.link(members[2].resource_code, LinkState.BROADCASTING, NOW)
    data = await (await client.get("/api/health/terminals")).json()
    s = next(x for x in data["streets"] if x["code"] == street)
    assert s["terminals"] == len(members) and s["online"] == len(members) - 2
    assert s["online_rate"] == round((len(members) - 2) / len(members), 6)
    assert s["by_state"]["fault"] == 1 and s["by_state"]["broadcasting"] == 1
    assert data["county"]["online"] == len(inventory.terminals) - 2
    assert sum(v["terminals"] for v in data["streets"]) == len(inventory.terminals)
