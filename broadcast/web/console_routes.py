"""The operator web console: its static files and the small JSON endpoints only the console needs.

    GET  /                          the console shell (index.html; holds no data, the API does)
    GET  /static/*                  app.js, app.css
    GET  /api/areas                 the county → street → village tree with terminal counts
    GET  /api/event-types           event codes and Chinese names (config/event-types.tsv)
    GET  /api/events                Server-Sent Events: delivery status and terminal link changes
    POST /api/preview               {title, text} → rendered programme audio URL
    GET  /api/reports/broadcast/{id} the effect report (效果评估) of one broadcast, as HTML

Owns the live-event fan-out (``EventHub``: coalesced, bounded per client) and these routes. The hub
never subscribes itself: whoever builds the app subscribes ``on_delivery``/``on_link`` to the event
bus. Must never change a broadcast, a delivery or a terminal; never hold business rules (the API and
the desk do). Role checks are the security matrix's (``broadcast.app.web.MATRIX``, which includes
``CONSOLE_RULES``); the GETs fall under ``GET /api/*``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.audio.engines import AllEnginesFailed
from broadcast.audio.ffmpeg import FfmpegError
from broadcast.audio.render import AudioRenderer
from broadcast.audio.templates import load_event_names
from broadcast.events import DeliveryChanged, LinkChanged
from broadcast.jsonhttp import json_error, json_response
from broadcast.reports.effect import BroadcastNotFoundError, effect_report
from broadcast.reports.render import effect_html
from broadcast.security.roles import Permission, Rule
from terminals.inventory_model import Area, Inventory

log = logging.getLogger(__name__)

CONSOLE_DIR = Path(__file__).parent / "console"

# Matrix rules the console adds (the GETs are covered by DEFAULT_MATRIX's GET /api/*); broadcast.app.web
# puts them into its MATRIX.
CONSOLE_RULES: tuple[Rule, ...] = (Rule("POST", "/api/preview", Permission.MESSAGES_COMPOSE),)

# One message per client at most this often; a burst (586 acks in 100 ms) becomes one message.
COALESCE_S = 0.2
# A comment line this often lets a dead connection surface and keeps proxies from timing out.
KEEPALIVE_S = 15.0
# Changes held for one client before it is told to re-read instead ("resync"): bounds memory.
MAX_PENDING_PER_CLIENT = 5000
MAX_CLIENTS = 200
MAX_TITLE = 200
MAX_TEXT = 4000

# The report page carries its own <style>; it runs no script at all.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


class ConsoleErrorKind(StrEnum):
    BAD_ID = "bad_id"
    NOT_FOUND = "not_found"
    BAD_REQUEST = "bad_request"
    TTS_FAILED = "tts_failed"
    TOO_MANY_CLIENTS = "too_many_clients"


# --- live events ------------------------------------------------------------------------------------


@dataclass(eq=False)  # identity: a client is a set member
class _Client:
    """One SSE subscriber: the latest state per key since its last message (so repeats coalesce)."""

    deliveries: dict[int, dict[str, str]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    pending: int = 0
    overflow: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def take(self) -> dict[str, Any]:
        if self.overflow:
            out: dict[str, Any] = {"resync": True, "deliveries": {}, "links": {}}
        else:
            out = {
                "resync": False,
                "deliveries": {str(b): d for b, d in self.deliveries.items()},
                "links": self.links,
            }
        self.deliveries, self.links, self.pending, self.overflow = {}, {}, 0, False
        self.wake.clear()
        return out

    def _count(self) -> None:
        self.pending += 1
        if self.pending > MAX_PENDING_PER_CLIENT and not self.overflow:
            # Too far behind: drop the detail; the client re-reads the API when told "resync".
            self.overflow = True
            self.deliveries, self.links = {}, {}
        self.wake.set()

    def delivery(self, broadcast_id: int, terminal_code: str, status: str) -> None:
        if not self.overflow:
            self.deliveries.setdefault(broadcast_id, {})[terminal_code] = status
        self._count()

    def link(self, terminal_code: str, state: str) -> None:
        if not self.overflow:
            self.links[terminal_code] = state
        self._count()


class EventHub:
    """Fans delivery and link changes out to SSE clients. Listener callbacks are synchronous and cheap:
    they only note the latest state per key and wake the client's writer."""

    def __init__(self, *, coalesce_s: float = COALESCE_S, keepalive_s: float = KEEPALIVE_S) -> None:
        self.coalesce_s = coalesce_s
        self.keepalive_s = keepalive_s
        self._clients: set[_Client] = set()
        self._closing = asyncio.Event()
        self.messages_sent = 0

    @property
    def clients(self) -> int:
        return len(self._clients)

    def on_delivery(self, event: DeliveryChanged) -> None:
        for c in self._clients:
            c.delivery(event.broadcast_id, event.terminal_code, str(event.status))

    def on_link(self, event: LinkChanged) -> None:
        for c in self._clients:
            c.link(event.terminal_code, str(event.state))

    async def close(self, _app: web.Application | None = None) -> None:
        """Ends every stream (on server shutdown), so handlers return promptly."""
        self._closing.set()
        for c in self._clients:
            c.wake.set()

    async def stream(self, request: web.Request) -> web.StreamResponse:
        if len(self._clients) >= MAX_CLIENTS:
            return json_error(
                503, ConsoleErrorKind.TOO_MANY_CLIENTS, "实时连接数已达上限，请关闭其他控制台页面后刷新"
            )
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
                "X-Content-Type-Options": "nosniff",
            }
        )
        await resp.prepare(request)
        client = _Client()
        self._clients.add(client)
        loop = asyncio.get_running_loop()
        try:
            await resp.write(b"retry: 2000\nevent: hello\ndata: {}\n\n")
            last_sent = loop.time()
            while not self._closing.is_set():
                try:
                    await asyncio.wait_for(client.wake.wait(), timeout=self.keepalive_s)
                except TimeoutError:
                    await resp.write(b": keepalive\n\n")
                    continue
                if self._closing.is_set():
                    break
                # Pace: at most one message per coalesce window; a burst keeps accumulating meanwhile.
                await asyncio.sleep(max(0.0, last_sent + self.coalesce_s - loop.time()))
                payload = json.dumps(client.take(), ensure_ascii=False, separators=(",", ":"))
                await resp.write(f"event: update\ndata: {payload}\n\n".encode())
                last_sent = loop.time()
                self.messages_sent += 1
        except ConnectionError:
            log.debug("SSE client %s went away", request.remote)
        finally:
            self._clients.discard(client)
        return resp


# --- areas ------------------------------------------------------------------------------------------


def area_tree(inventory: Inventory) -> dict[str, Any]:
    """The county → street → village tree; each node carries its terminal count."""
    counts: Counter[str] = Counter()
    for t in inventory.terminals:
        area = inventory.area(t.area_code)
        if area is None:
            continue
        for a in inventory.path(area.code):
            counts[a.code] += 1

    def node(a: Area) -> dict[str, Any]:
        return {
            "code": a.code,
            "name": a.name,
            "level": str(a.level),
            "terminals": counts[a.code],
            "children": [node(c) for c in inventory.children(a.code)],
        }

    return node(inventory.county)


# --- routes -----------------------------------------------------------------------------------------

HUB: web.AppKey[EventHub] = web.AppKey("console_event_hub", EventHub)


def _str_field(data: dict[str, Any], name: str, limit: int) -> str:
    v = data.get(name, "")
    if not isinstance(v, str):
        raise ValueError(f"{name} 应为字符串")
    if len(v) > limit:
        raise ValueError(f"{name} 超过 {limit} 字，请精简后再试听")
    return v.strip()


def add_console_routes(
    app: web.Application, *, engine: AsyncEngine, inventory: Inventory, renderer: AudioRenderer
) -> EventHub:
    """Register the console before the app starts. Returns its event hub (also ``app[HUB]``), for the
    caller to subscribe to ``DeliveryChanged`` (``on_delivery``) and ``LinkChanged`` (``on_link``)."""
    hub = EventHub()
    app[HUB] = hub
    app.on_shutdown.append(hub.close)
    tree = area_tree(inventory)
    event_types = [{"code": c, "name": n} for c, n in sorted(load_event_names().items())]

    async def index(_request: web.Request) -> web.StreamResponse:
        return web.FileResponse(CONSOLE_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def areas(_request: web.Request) -> web.Response:
        return json_response({"county": tree})

    async def get_event_types(_request: web.Request) -> web.Response:
        return json_response({"event_types": event_types})

    async def preview(request: web.Request) -> web.Response:
        try:
            data = await request.json()
            if not isinstance(data, dict):
                raise ValueError("请求体必须是 JSON 对象")
            title, text = _str_field(data, "title", MAX_TITLE), _str_field(data, "text", MAX_TEXT)
            if not title and not text:
                raise ValueError("标题和正文都为空，请先填写再试听")
        except ValueError as exc:
            return json_error(400, ConsoleErrorKind.BAD_REQUEST, str(exc))
        try:
            rendered = await renderer.render(title, text)
        except ValueError as exc:
            return json_error(400, ConsoleErrorKind.BAD_REQUEST, f"无法生成试听：{exc}")
        except (AllEnginesFailed, FfmpegError) as exc:
            log.warning("preview rendering failed: %s", exc)
            return json_error(
                503, ConsoleErrorKind.TTS_FAILED, "语音合成失败，请稍后重试；若持续失败请联系运维检查语音引擎"
            )
        ref = rendered.ref
        return json_response(
            {
                "url": f"/audio/{ref.digest}.{ref.format}",
                "digest": ref.digest,
                "duration_s": ref.duration_s,
                "engine": ref.engine,
            }
        )

    async def report(request: web.Request) -> web.Response:
        try:
            bid = int(request.match_info["id"])
        except ValueError:
            return json_error(400, ConsoleErrorKind.BAD_ID, "播发编号应为整数")
        try:
            rep = await effect_report(engine, bid, inventory)
        except BroadcastNotFoundError:
            return json_error(
                404, ConsoleErrorKind.NOT_FOUND, f"播发 {bid} 不存在，请在“播发记录”中选择有效的编号"
            )
        resp = web.Response(text=effect_html(rep), content_type="text/html")
        resp.headers["Content-Security-Policy"] = REPORT_CSP
        return resp

    app.router.add_get("/", index)
    app.router.add_static("/static", CONSOLE_DIR, append_version=False)
    app.router.add_get("/api/areas", areas)
    app.router.add_get("/api/event-types", get_event_types)
    app.router.add_get("/api/events", hub.stream)
    app.router.add_post("/api/preview", preview)
    app.router.add_get("/api/reports/broadcast/{id}", report)
    return hub
