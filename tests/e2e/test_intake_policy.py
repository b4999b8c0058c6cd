"""Intake policy end to end: Update/Cancel chains, Cancel before Alert, hold-off, two-person rule,
expiry, geometry targeting — through the real API, desk, pipeline and simulated terminals."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from broadcast.security.roles import Role
from tests.e2e.capdoc import make_cap, reference
from tests.e2e.conftest import County, login, running_county
from tests.helpers.poll import wait_until

STREET = "530181003000"  # 八街街道
RED = "安宁市气象台发布暴雨红色预警[Ⅰ级/特别严重]"
ORANGE = "安宁市气象台更新暴雨橙色预警[Ⅱ级/严重]"
YELLOW = "安宁市气象台发布暴雨黄色预警[Ⅲ级/较重]"


def ident() -> str:
    return f"53018141600000_{uuid.uuid4().hex[:14]}"


def done(b: dict[str, Any]) -> bool:
    return b["state"] in ("completed", "failed", "cancelled", "expired", "rejected")


async def get(c: County, path: str) -> dict[str, Any]:
    async with c.http.get(f"{c.url}{path}") as resp:
        data: dict[str, Any] = await resp.json()
        return data


async def test_update_during_playback_then_cancel(tmp_path: Path) -> None:
    async with running_county(tmp_path, area=STREET, time_scale=0.05) as c:
        t0 = datetime.now(UTC) - timedelta(seconds=5)
        a_id = ident()
        status, alert = await c.post_cap(make_cap(a_id, STREET, headline=RED, sent=t0))
        assert status == 202 and alert["decision"] == "auto", alert
        n = alert["targets"]
        await wait_until(lambda: c.broadcast(alert["broadcast_id"]), lambda b: b["counts"]["playing"] == n)
        # The Update arrives while every loudspeaker is playing the Alert: the Alert stops, the Update plays.
        u_id, u_sent = ident(), t0 + timedelta(seconds=1)
        status, upd = await c.post_cap(
            make_cap(
                u_id, STREET, msg_type="Update", references=reference(a_id, t0), headline=ORANGE, sent=u_sent
            )
        )
        assert status == 202 and upd["decision"] == "supersede", upd
        old = await wait_until(lambda: c.broadcast(alert["broadcast_id"]), done)
        assert old["state"] == "cancelled"
        assert old["counts"]["cancelled"] == n
        new = await wait_until(lambda: c.broadcast(upd["broadcast_id"]), done, within=60)
        assert new["state"] == "completed" and new["coverage"]["rate"] == 1.0
        for t in c.controller.inventory.resolve([STREET]):
            sim = c.fleet.terminal(t.resource_code)
            assert [p.completed for p in sim.played if p.ebm_id == alert["ebm_id"]] == [False]
            assert [p.completed for p in sim.played if p.ebm_id == upd["ebm_id"]] == [True]
        # 解除: the Cancel references the Update and is confirmed.
        status, cancel = await c.post_cap(
            make_cap(
                ident(),
                STREET,
                msg_type="Cancel",
                references=reference(u_id, u_sent),
                sent=u_sent + timedelta(1),
            )
        )
        assert status == 202 and cancel["decision"] == "cancel_original", cancel
        record = await get(c, f"/api/broadcasts/{upd['broadcast_id']}/decisions")
        assert [d["action"] for d in record["decisions"]][:1] == ["supersede"]


async def test_cancel_before_alert_never_plays(county: County) -> None:
    a_id, t0 = ident(), datetime.now(UTC) - timedelta(seconds=10)
    status, cancel = await county.post_cap(
        make_cap(
            ident(), STREET, msg_type="Cancel", references=reference(a_id, t0), sent=t0 + timedelta(seconds=5)
        )
    )
    assert status == 202 and cancel["decision"] == "park_until_original", cancel
    status, late = await county.post_cap(make_cap(a_id, STREET, headline=RED, sent=t0))
    assert status == 409, late
    assert late["reason"] == "cancelled_before_arrival"
    listed = await get(county, "/api/broadcasts")
    assert listed["broadcasts"] == []
    assert all(
        not s.played
        for s in (county.fleet.terminal(t.resource_code) for t in county.controller.inventory.terminals)
    )


async def test_hold_off_released_by_time_and_stopped_by_operator(tmp_path: Path) -> None:
    fast_hold = {"policy": {"hold_off": {"yellow": {"window_s": 1.5, "on_timeout": "release"}}}}
    async with running_county(tmp_path, area=STREET, extra=fast_hold) as c:
        status, held = await c.post_cap(make_cap(ident(), STREET, headline=YELLOW))
        assert status == 202 and held["decision"] == "hold", held
        pending = await get(c, "/api/pending")
        assert [p["broadcast_id"] for p in pending["pending"]] == [held["broadcast_id"]]
        assert pending["pending"][0]["kind"] == "hold_off"
        # Nobody stops it: it goes on air by itself when the window is over.
        b = await wait_until(lambda: c.broadcast(held["broadcast_id"]), done, within=30)
        assert b["state"] == "completed" and b["coverage"]["rate"] == 1.0
        # The next one is stopped by the operator inside the window: nothing plays.
        status, held2 = await c.post_cap(make_cap(ident(), STREET, headline=YELLOW))
        assert held2["decision"] == "hold"
        async with c.http.post(f"{c.url}/api/broadcasts/{held2['broadcast_id']}/stop") as resp:
            assert resp.status == 403  # a source token may not stop broadcasts: an operator must
        operator = await login(c, "wangfang", {Role.OPERATOR})
        async with operator.post(f"{c.url}/api/broadcasts/{held2['broadcast_id']}/stop") as resp:
            assert resp.status == 200, await resp.text()
        b2 = await wait_until(lambda: c.broadcast(held2["broadcast_id"]), done)
        assert b2["state"] == "cancelled" and b2["counts"]["played"] == 0
        await operator.close()
        assert all(p.ebm_id != b2["ebm_id"] for t in c.fleet.terminals for p in t.played)


async def test_two_person_rule(tmp_path: Path) -> None:
    async with running_county(tmp_path, area=STREET) as c:
        zhang = await login(c, "zhangwei", {Role.OPERATOR, Role.APPROVER})
        li = await login(c, "lina", {Role.APPROVER})
        msg = {
            "msg_type": "actual",
            "client_id": uuid.uuid4().hex,
            "sender": "安宁市应急管理局",
            "event_type": "11D01",
            "severity": "orange",
            "title": "八街街道滑坡预警",
            "text": "八街街道部分村组发生滑坡险情，请沿线居民立即撤离至安全地带。",
            "areas": [STREET],
        }
        async with zhang.post(f"{c.url}/api/messages", json=msg) as resp:
            body = await resp.json()
            assert resp.status == 202 and body["decision"] == "needs_approval", body
        bid = body["broadcast_id"]
        async with zhang.post(f"{c.url}/api/broadcasts/{bid}/approve") as resp:
            refusal = await resp.json()
            assert resp.status == 403, refusal
            assert "本人" in refusal["message"]
        assert (await c.broadcast(bid))["state"] == "pending_approval"
        async with li.post(f"{c.url}/api/broadcasts/{bid}/approve") as resp:
            assert resp.status == 200, await resp.text()
        b = await wait_until(lambda: c.broadcast(bid), done, within=60)
        assert b["state"] == "completed" and b["coverage"]["rate"] == 1.0
        record = await get(c, f"/api/broadcasts/{bid}/decisions")
        assert [(d["action"], d["actor"]) for d in record["decisions"]] == [
            ("needs_approval", "zhangwei"),
            ("needs_approval", "zhangwei"),
            ("auto", "lina"),
        ]
        await zhang.close()
        await li.close()


async def test_expiry_before_and_during_playback(tmp_path: Path) -> None:
    async with running_county(tmp_path, area=STREET, time_scale=0.1) as c:
        past = datetime.now(UTC) - timedelta(hours=4)
        status, body = await c.post_cap(make_cap(ident(), STREET, headline=RED, sent=past))
        assert status == 422 and body["error"] == "expired", body
        # Valid for 3 more seconds, but the programme plays ~8 s: it is taken off the air at expiry.
        sent = datetime.now(UTC) - timedelta(seconds=57)
        status, body = await c.post_cap(
            make_cap(ident(), STREET, headline=RED, sent=sent, expires_in=timedelta(seconds=60))
        )
        assert status == 202, body
        b = await wait_until(lambda: c.broadcast(body["broadcast_id"]), done, within=30)
        assert b["counts"]["played"] == 0
        assert b["failure_reasons"] == {"expired": b["targeted"]}
        for t in c.controller.inventory.resolve([STREET]):
            plays = [p for p in c.fleet.terminal(t.resource_code).played if p.ebm_id == body["ebm_id"]]
            assert all(not p.completed for p in plays)


async def test_polygon_targets_the_terminals_inside(county: County) -> None:
    inside = county.controller.inventory.resolve([STREET])
    lats = [t.latitude for t in inside]
    lons = [t.longitude for t in inside]
    pad = 0.002
    ring = [
        (min(lats) - pad, min(lons) - pad),
        (min(lats) - pad, max(lons) + pad),
        (max(lats) + pad, max(lons) + pad),
        (max(lats) + pad, min(lons) - pad),
    ]
    ring.append(ring[0])
    expected = {
        t.resource_code
        for t in county.controller.inventory.terminals
        if min(lats) - pad <= t.latitude <= max(lats) + pad
        and min(lons) - pad <= t.longitude <= max(lons) + pad
    }
    polygon = " ".join(f"{lat},{lon}" for lat, lon in ring)
    area = f"<area><areaDesc>八街街道一带</areaDesc><polygon>{polygon}</polygon></area>"
    status, body = await county.post_cap(make_cap(ident(), area_xml=area, headline=RED))
    assert status == 202, body
    b = await wait_until(lambda: county.broadcast(body["broadcast_id"], deliveries=True), done, within=60)
    assert {d["terminal"] for d in b["deliveries"]} == expected
