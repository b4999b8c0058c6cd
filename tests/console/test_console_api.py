"""The console's own endpoints over real HTTP: shell and static files, area tree, preview rendering,
effect report, and the live event stream (coalescing, bounds, disconnects)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import aiohttp

from broadcast.events import DeliveryChanged, LinkChanged
from broadcast.model import DeliveryStatus, LinkState
from broadcast.security.roles import Role
from broadcast.web.console_routes import MAX_PENDING_PER_CLIENT, _Client
from tests.console.conftest import STREET, ConsoleCounty, login
from tests.helpers.poll import wait_until


class Sse:
    """Reads ``event:``/``data:`` blocks from an open text/event-stream response."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp

    async def next(self, within: float = 5.0) -> tuple[str, dict[str, Any]]:
        event, data = "message", ""
        async with asyncio.timeout(within):
            while True:
                raw = await self.resp.content.readline()
                assert raw, "stream ended"
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data += line[6:]
                elif line == "" and data:
                    return event, json.loads(data)


async def test_shell_static_and_areas(county: ConsoleCounty) -> None:
    async with aiohttp.ClientSession() as anon:
        async with anon.get(f"{county.url}/") as r:
            assert r.status == 200
            page = await r.text()
        assert "/static/app.js" in page and "应急广播平台" in page
        async with anon.get(f"{county.url}/static/app.js") as r:
            assert r.status == 200 and "javascript" in r.content_type
        async with anon.get(f"{county.url}/static/app.css") as r:
            assert r.status == 200 and r.content_type == "text/css"
        async with anon.get(f"{county.url}/api/areas") as r:
            assert r.status == 401  # data needs a login; the shell does not
    async with county.http.get(f"{county.url}/api/areas") as r:
        tree = (await r.json())["county"]
    inv = county.controller.inventory
    assert tree["name"] == inv.name and tree["terminals"] == len(inv.terminals)
    assert [s["code"] for s in tree["children"]] == [a.code for a in inv.children(inv.county.code)]
    assert sum(s["terminals"] for s in tree["children"]) == len(inv.terminals)
    street = next(s for s in tree["children"] if s["code"] == STREET)
    assert street["terminals"] == len(inv.resolve([STREET]))
    assert {v["code"] for v in street["children"]} == {a.code for a in inv.children(STREET)}
    async with county.http.get(f"{county.url}/api/event-types") as r:
        types = {e["code"]: e["name"] for e in (await r.json())["event_types"]}
    assert types["11B03"] == "暴雨"


async def test_preview_renders_and_serves_audio(county: ConsoleCounty) -> None:
    await county.account("zhang.san", Role.OPERATOR)
    await county.account("li.si", Role.APPROVER)
    op, csrf = await login(county.url, "zhang.san")
    ap, ap_csrf = await login(county.url, "li.si")
    try:
        body = {"title": "安宁市发布暴雨橙色预警", "text": "请注意防范山洪。"}
        async with op.post(f"{county.url}/api/preview", json=body) as r:
            assert r.status == 403 and (await r.json())["error"] == "csrf_failed"
        async with ap.post(f"{county.url}/api/preview", json=body, headers={"X-CSRF-Token": ap_csrf}) as r:
            assert r.status == 403  # an approver does not compose
        async with op.post(f"{county.url}/api/preview", json={"title": "", "text": " "},
                           headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 400 and "为空" in (await r.json())["message"]
        async with op.post(f"{county.url}/api/preview", json=body, headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200, await r.text()
            out = await r.json()
        assert out["url"] == f"/audio/{out['digest']}.mp3" and out["duration_s"] > 1
        async with op.get(f"{county.url}{out['url']}") as r:
            assert r.status == 200
            audio = await r.read()
        assert len(audio) > 1000
    finally:
        await op.close()
        await ap.close()


async def test_effect_report_html(county: ConsoleCounty) -> None:
    doc = {
        "msg_type": "actual", "event_type": "11B03", "severity": "orange", "title": "报告测试预警",
        "text": "报告测试正文。", "areas": [STREET], "sender": "bureau", "client_id": "report-1",
    }
    async with county.http.post(f"{county.url}/api/messages", json=doc) as r:
        bid = (await r.json())["broadcast_id"]
    async with county.http.get(f"{county.url}/api/reports/broadcast/{bid}") as r:
        assert r.status == 200 and r.content_type == "text/html"
        assert "script-src" not in r.headers["Content-Security-Policy"]
        page = await r.text()
    assert "报告测试预警" in page and "覆盖率" in page
    async with county.http.get(f"{county.url}/api/reports/broadcast/999999") as r:
        assert r.status == 404 and "不存在" in (await r.json())["message"]


async def test_events_coalesce_a_burst_and_pace(county: ConsoleCounty) -> None:
    async with county.http.get(f"{county.url}/api/events") as resp:
        assert resp.content_type == "text/event-stream"
        sse = Sse(resp)
        assert (await sse.next())[0] == "hello"
        hub = county.hub
        before = hub.messages_sent
        codes = [f"T{i:04d}" for i in range(586)]
        for code in codes:  # one burst: sent, then acknowledged, for every terminal
            hub.on_delivery(DeliveryChanged(7, "", code, DeliveryStatus.SENT))
        for code in codes:
            hub.on_delivery(DeliveryChanged(7, "", code, DeliveryStatus.ACKNOWLEDGED))
        hub.on_link(LinkChanged("T0001", LinkState.BROADCASTING, None, datetime.now(UTC)))
        loop = asyncio.get_running_loop()
        event, first = await sse.next()
        t1 = loop.time()
        assert event == "update" and not first["resync"]
        assert first["deliveries"]["7"] == dict.fromkeys(codes, "acknowledged")  # latest state only
        assert first["links"] == {"T0001": "broadcasting"}
        hub.on_delivery(DeliveryChanged(7, "", "T0002", DeliveryStatus.PLAYED))
        _, second = await sse.next()
        assert loop.time() - t1 >= hub.coalesce_s * 0.9  # paced: never more than one message per window
        assert second["deliveries"] == {"7": {"T0002": "played"}} and second["links"] == {}
        assert hub.messages_sent - before == 2


async def test_real_broadcast_events_reach_the_stream(county: ConsoleCounty) -> None:
    await county.account("li.si", Role.APPROVER)
    ap, csrf = await login(county.url, "li.si")
    try:
        async with ap.get(f"{county.url}/api/events") as resp:
            sse = Sse(resp)
            assert (await sse.next())[0] == "hello"
            doc = {
                "msg_type": "actual", "event_type": "11B03", "severity": "orange", "title": "实时测试",
                "text": "实时测试正文。", "areas": [STREET], "sender": "bureau", "client_id": "live-1",
            }
            async with county.http.post(f"{county.url}/api/messages", json=doc) as r:
                bid = (await r.json())["broadcast_id"]
            async with ap.post(f"{county.url}/api/broadcasts/{bid}/approve", headers={"X-CSRF-Token": csrf}) as r:
                assert r.status == 200, await r.text()
            seen: dict[str, str] = {}
            messages = 0
            async with asyncio.timeout(20):
                while sum(1 for s in seen.values() if s == "played") < county.terminals:
                    _, msg = await sse.next(within=20)
                    messages += 1
                    seen.update(msg["deliveries"].get(str(bid), {}))
            assert set(seen) == {t.resource_code for t in county.controller.inventory.resolve([STREET])}
            # Each terminal goes through ≥4 states; coalescing sends far fewer messages than changes.
            assert messages < county.terminals
    finally:
        await ap.close()


async def test_disconnect_frees_the_client(county: ConsoleCounty) -> None:
    resp = await county.http.get(f"{county.url}/api/events")
    sse = Sse(resp)
    assert (await sse.next())[0] == "hello"
    assert county.hub.clients == 1
    resp.close()

    async def clients() -> int:
        county.hub.on_link(LinkChanged("T0001", LinkState.ONLINE, None, datetime.now(UTC)))  # the next write finds the connection gone
        return county.hub.clients

    await wait_until(clients, lambda n: n == 0, within=5)


def test_client_queue_is_bounded() -> None:
    c = _Client()
    for i in range(MAX_PENDING_PER_CLIENT + 10):
        c.delivery(1, f"T{i}", "sent")
    assert c.overflow and c.deliveries == {}
    out = c.take()
    assert out == {"resync": True, "deliveries": {}, "links": {}}
    c.link("T1", "online")
    assert c.take() == {"resync": False, "deliveries": {}, "links": {"T1": "online"}}
