"""Read-side API: broadcasts with their delivery summary, terminals with link state, adapters, audio
files for terminals, and ``/healthz``.

Given the parts it reads at registration (``add_view_routes``). Never changes a broadcast, a delivery
or a terminal.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.audio.cache import AudioCache
from broadcast.dispatch.links import LinkTracker
from broadcast.jsonhttp import json_error, json_response
from broadcast.model import MsgType, Severity
from broadcast.store import broadcasts as store
from broadcast.store.inventory import list_terminals
from broadcast.store.stats import summarise
from broadcast.web.timestamps import beijing_iso
from terminals.inventory_model import Inventory


class AdapterDirectory(Protocol):
    """The adapter registry as these routes use it: what each adapter is doing."""

    def describe(self) -> list[dict[str, Any]]: ...


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
        "received_at": beijing_iso(row["received_at"]),
        "start_at": beijing_iso(row["start_at"]),
        "end_at": beijing_iso(row["end_at"]),
        "state_changed_at": beijing_iso(row["state_changed_at"]),
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


def add_view_routes(
    app: web.Application,
    *,
    engine: AsyncEngine,
    inventory: Inventory,
    links: LinkTracker,
    adapters: AdapterDirectory,
    audio: AudioCache,
) -> None:
    async def get_broadcast(request: web.Request) -> web.Response:
        try:
            bid = int(request.match_info["id"])
        except ValueError:
            return json_error(400, "bad_id", "播发编号应为整数")
        row = await store.get_broadcast(engine, bid)
        if row is None:
            return json_error(404, "not_found", f"播发 {bid} 不存在")
        out = _broadcast_json(row)
        rows = await store.delivery_rows(engine, bid)
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
                    "playing_at": beijing_iso(r["playing_at"]),
                    "played_at": beijing_iso(r["played_at"]),
                }
                for r in rows
            ]
        out["history"] = [
            {"state": h["state"], "at": beijing_iso(h["at"]), "actor": h["actor"], "detail": h["detail"]}
            for h in await store.broadcast_history(engine, bid)
        ]
        return json_response(out)

    async def list_broadcasts(request: web.Request) -> web.Response:
        rows = await store.list_broadcasts(engine, limit=min(int(request.query.get("limit", 50)), 500))
        return json_response({"broadcasts": [_broadcast_json(r) for r in rows]})

    async def get_terminals(request: web.Request) -> web.Response:
        area = request.query.get("area")
        codes = None
        if area:
            codes = [t.resource_code for t in inventory.resolve([area])]
        rows = await list_terminals(engine, codes)
        state_filter = request.query.get("state")
        out = []
        for r in rows:
            state = str(links.state(r["resource_code"]))
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
                    "last_seen": beijing_iso(links.last_seen(r["resource_code"]) or r["last_seen"]),
                }
            )
        return json_response({"count": len(out), "link_states": links.counts(), "terminals": out})

    async def get_adapters(_request: web.Request) -> web.Response:
        return json_response({"adapters": adapters.describe()})

    async def get_audio(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        digest, _, fmt = name.partition(".")
        path = audio.path_for(digest, fmt) if fmt in ("mp3", "wav") else None
        if path is None:
            return json_error(404, "not_found", "音频文件不存在")
        return web.FileResponse(path, headers={"Cache-Control": "public, max-age=31536000, immutable"})

    async def healthz(_request: web.Request) -> web.Response:
        return json_response({"ok": True, "links": links.counts(), "adapters": adapters.describe()})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/broadcasts", list_broadcasts)
    app.router.add_get("/api/broadcasts/{id}", get_broadcast)
    app.router.add_get("/api/terminals", get_terminals)
    app.router.add_get("/api/adapters", get_adapters)
    app.router.add_get("/audio/{name}", get_audio)
