"""Report and terminal-health API routes:

    GET  /api/reports?kind=health_month&limit=50   stored (unexpired) reports, newest first
    GET  /api/reports/{id}?format=json|html|csv&table=terminals.csv
    GET  /api/health/terminals                     online rates per street and village unit, now
    POST /api/reports/health?month=YYYY-MM         generate and store a health report on demand
         (or ?day=YYYY-MM-DD)

Handlers stay thin: figures come from ``broadcast.reports``, storage and on-demand generation from the
``OpsService`` (``broadcast.reports.jobs``), current link state from the ``LinkTracker``; all three are
given at registration (``add_report_routes``). Never computes a report figure or changes state other
than storing a requested report.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broadcast.clock import BEIJING
from broadcast.dispatch.links import LinkTracker
from broadcast.jsonhttp import json_error, json_response
from broadcast.model import LinkState
from broadcast.reports import render
from broadcast.reports.health import Period
from broadcast.reports.jobs import OpsService
from broadcast.reports.store import ReportKind, StoredReport
from terminals.availability import AVAILABLE_STATES
from terminals.inventory_model import Inventory, UnknownAreaError


def _meta(r: StoredReport) -> dict[str, Any]:
    return {
        "id": r.report_id,
        "kind": str(r.kind),
        "subject": r.subject,
        "created_at": r.created_at.astimezone(BEIJING).isoformat(),
        "expires_at": r.expires_at.astimezone(BEIJING).isoformat(),
        "url": f"/api/reports/{r.report_id}",
    }


def _html_and_tables(kind: ReportKind, body: dict[str, Any]) -> tuple[str, dict[str, str]]:
    if kind in (ReportKind.HEALTH_DAY, ReportKind.HEALTH_MONTH):
        return render.health_html(body), render.health_tables(body)
    if kind is ReportKind.BROADCAST:
        return render.effect_html(body), render.effect_tables(body)
    return render.drill_html(body), {"runs.csv": render.to_csv(body["runs"])}


def live_health(inventory: Inventory, links: LinkTracker) -> dict[str, Any]:
    """Terminals online now (online or broadcasting) per street and village unit, and the county."""
    groups: dict[str, dict[str, dict[str, Any]]] = {"streets": {}, "villages": {}}
    county: dict[str, Any] = {"terminals": 0, "online": 0, "by_state": {str(s): 0 for s in LinkState}}
    for t in inventory.terminals:
        state = links.state(t.resource_code)
        up = state in AVAILABLE_STATES
        try:
            chain = inventory.path(t.area_code)
        except UnknownAreaError:
            chain = []
        targets = [county]
        for level, idx in (("streets", 1), ("villages", 2)):
            if len(chain) > idx:
                area = chain[idx]
                targets.append(
                    groups[level].setdefault(
                        area.code,
                        {
                            "code": area.code,
                            "name": area.name,
                            "terminals": 0,
                            "online": 0,
                            "by_state": {str(s): 0 for s in LinkState},
                        },
                    )
                )
        for g in targets:
            g["terminals"] += 1
            g["online"] += up
            g["by_state"][str(state)] += 1
    for g in [county, *groups["streets"].values(), *groups["villages"].values()]:
        g["online_rate"] = round(g["online"] / g["terminals"], 6) if g["terminals"] else 0.0
    return {
        "county": {"code": inventory.county.code, "name": inventory.name, **county},
        "streets": sorted(groups["streets"].values(), key=lambda g: g["code"]),
        "villages": sorted(groups["villages"].values(), key=lambda g: g["code"]),
    }


def add_report_routes(
    app: web.Application, *, inventory: Inventory, links: LinkTracker, ops: OpsService
) -> None:
    async def list_reports(request: web.Request) -> web.Response:
        kind_text = request.query.get("kind")
        kind = None
        if kind_text:
            try:
                kind = ReportKind(kind_text)
            except ValueError:
                allowed = "、".join(k.value for k in ReportKind)
                return json_error(400, "bad_kind", f"报告类型 {kind_text!r} 无效；可选：{allowed}")
        try:
            limit = max(1, min(int(request.query.get("limit", 100)), 1000))
        except ValueError:
            return json_error(400, "bad_limit", "limit 应为整数")
        rows = await ops.list_reports(kind=kind, limit=limit)
        return json_response({"reports": [_meta(r) for r in rows]})

    async def get_report(request: web.Request) -> web.StreamResponse:
        try:
            rid = int(request.match_info["id"])
        except ValueError:
            return json_error(400, "bad_id", "报告编号应为整数")
        found = await ops.get_report(rid)
        if found is None:
            return json_error(404, "not_found", f"报告 {rid} 不存在或已过保存期；可重新生成")
        meta, body = found
        fmt = request.query.get("format", "json")
        if fmt == "json":
            return json_response({**_meta(meta), "report": body})
        html, tables = _html_and_tables(meta.kind, body)
        if fmt == "html":
            return web.Response(text=html, content_type="text/html", charset="utf-8")
        if fmt == "csv":
            name = request.query.get("table", next(iter(tables)))
            if name not in tables:
                return json_error(404, "no_table", f"报告 {rid} 没有表 {name}；可选：{'、'.join(tables)}")
            return web.Response(
                body=tables[name].encode("utf-8-sig"),
                content_type="text/csv",
                charset="utf-8",
                headers={"Content-Disposition": f'attachment; filename="report-{rid}-{name}"'},
            )
        return json_error(400, "bad_format", f"格式 {fmt!r} 无效；可选 json、html、csv")

    async def terminals_health(_request: web.Request) -> web.Response:
        return json_response(live_health(inventory, links))

    async def post_health(request: web.Request) -> web.Response:
        month, day = request.query.get("month"), request.query.get("day")
        if (month is None) == (day is None):
            return json_error(400, "bad_period", "请给出 month=YYYY-MM 或 day=YYYY-MM-DD 其中之一")
        try:
            period = Period.parse_month(month) if month is not None else Period.parse_day(str(day))
        except ValueError as exc:
            return json_error(400, "bad_period", str(exc))
        generated = await ops.generate_health(period)
        return json_response(
            {
                "id": generated.report_id,
                "kind": str(generated.kind),
                "subject": generated.subject,
                "url": f"/api/reports/{generated.report_id}",
            },
            status=201,
        )

    app.router.add_get("/api/reports", list_reports)
    app.router.add_get("/api/reports/{id}", get_report)
    app.router.add_get("/api/health/terminals", terminals_health)
    app.router.add_post("/api/reports/health", post_health)
