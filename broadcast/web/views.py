"""Read-side API: broadcasts with receipts summary, terminals with link state, adapters, audio files,
and a minimal Chinese status page. Never mutates anything but through the controller's parts.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from broadcast.clock import BEIJING
from broadcast.jsonhttp import json_response
from broadcast.model import MsgType, Severity
from broadcast.store import broadcasts as store
from broadcast.store.inventory import list_terminals
from broadcast.store.stats import summarise

if TYPE_CHECKING:
    from broadcast.app.controller import Controller


def _iso(ts: datetime | None) -> str | None:
    return ts.astimezone(BEIJING).isoformat() if ts is not None else None


def _broadcast_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "ebm_id": row["ebm_id"],
        "state": row["state"],
        "title": row["title"],
        "msg_type": MsgType(row["msg_type"]).name.lower(),
        "event_type": row["event_type"],
        "severity": row["severity"],
        "colour": Severity(row["severity"]).colour_zh,
        "sender": row["sender_name"],
        "area_codes": row["area_codes"].split(",") if row["area_codes"] else [],
        "received_at": _iso(row["received_at"]),
        "start_at": _iso(row["start_at"]),
        "end_at": _iso(row["end_at"]),
        "state_changed_at": _iso(row["state_changed_at"]),
        "audio": (
            {
                "url": f"/audio/{row['audio_digest']}.{row['audio_format']}",
                "duration_s": row["audio_duration_s"],
                "engine": row["audio_engine"],
            }
            if row["audio_digest"]
            else None
        ),
    }


def add_routes(app: web.Application, key: web.AppKey[Controller]) -> None:
    def ctl(request: web.Request) -> Controller:
        return request.app[key]

    async def get_broadcast(request: web.Request) -> web.Response:
        try:
            bid = int(request.match_info["id"])
        except ValueError:
            return json_response({"error": "bad_id", "message": "播发编号应为整数"}, status=400)
        c = ctl(request)
        row = await store.get_broadcast(c.engine, bid)
        if row is None:
            return json_response({"error": "not_found", "message": f"播发 {bid} 不存在"}, status=404)
        out = _broadcast_json(row)
        rows = await store.delivery_rows(c.engine, bid)
        out.update(summarise(row["received_at"], rows))
        if request.query.get("deliveries") == "1":
            out["deliveries"] = [
                {
                    "terminal": r["terminal_code"],
                    "area_code": r["area_code"],
                    "status": r["status"],
                    "reason": r["reason"],
                    "detail": r["detail"],
                    "attempts": r["attempts"],
                    "playing_at": _iso(r["playing_at"]),
                    "played_at": _iso(r["played_at"]),
                }
                for r in rows
            ]
        out["history"] = [
            {"state": h["state"], "at": _iso(h["at"]), "actor": h["actor"], "detail": h["detail"]}
            for h in await store.broadcast_history(c.engine, bid)
        ]
        return json_response(out)

    async def list_broadcasts(request: web.Request) -> web.Response:
        rows = await store.list_broadcasts(
            ctl(request).engine, limit=min(int(request.query.get("limit", 50)), 500)
        )
        return json_response({"broadcasts": [_broadcast_json(r) for r in rows]})

    async def get_terminals(request: web.Request) -> web.Response:
        c = ctl(request)
        area = request.query.get("area")
        codes = None
        if area:
            codes = [t.resource_code for t in c.inventory.resolve([area])]
        rows = await list_terminals(c.engine, codes)
        state_filter = request.query.get("state")
        out = []
        for r in rows:
            state = str(c.links.state(r["resource_code"]))
            if state_filter and state != state_filter:
                continue
            out.append(
                {
                    "resource_code": r["resource_code"],
                    "name": r["name"],
                    "kind": r["kind"],
                    "area_code": r["area_code"],
                    "physical_address": r["physical_address"],
                    "adapter": r["adapter"],
                    "latitude": r["latitude"],
                    "longitude": r["longitude"],
                    "link_state": state,
                    "last_seen": _iso(c.links.last_seen(r["resource_code"]) or r["last_seen"]),
                }
            )
        return json_response({"count": len(out), "link_states": c.links.counts(), "terminals": out})

    async def get_adapters(request: web.Request) -> web.Response:
        return json_response({"adapters": ctl(request).registry.describe()})

    async def get_audio(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        digest, _, fmt = name.partition(".")
        path = ctl(request).audio_cache.path_for(digest, fmt) if fmt in ("mp3", "wav") else None
        if path is None:
            return json_response({"error": "not_found", "message": "音频文件不存在"}, status=404)
        return web.FileResponse(path, headers={"Cache-Control": "public, max-age=31536000, immutable"})

    async def healthz(request: web.Request) -> web.Response:
        c = ctl(request)
        return json_response({"ok": True, "links": c.links.counts(), "adapters": c.registry.describe()})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/broadcasts", list_broadcasts)
    app.router.add_get("/api/broadcasts/{id}", get_broadcast)
    app.router.add_get("/api/terminals", get_terminals)
    app.router.add_get("/api/adapters", get_adapters)
    app.router.add_get("/audio/{name}", get_audio)
