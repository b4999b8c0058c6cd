"""A controller restarted in the middle of a broadcast: nothing lost, nothing played twice."""

from __future__ import annotations

import uuid
from pathlib import Path

import aiohttp

from broadcast.app.controller import Controller
from sim.fleet import Fleet
from tests.e2e.capdoc import make_cap
from tests.e2e.conftest import AUTH, settings_for
from tests.helpers.poll import wait_until

STREET = "530181003000"  # 八街街道


async def _get(http: aiohttp.ClientSession, url: str) -> dict:
    async with http.get(url) as resp:
        assert resp.status == 200
        data: dict = await resp.json()
        return data


async def test_restart_mid_broadcast_completes_once(tmp_path: Path) -> None:
    first = await Controller.create(settings_for(tmp_path))
    await first.start()
    adapter = first.registry.get("ip_speaker")
    assert adapter is not None
    port = int(adapter.status()["port"])
    terminals = first.inventory.resolve([STREET])
    fleet = Fleet(terminals, "127.0.0.1", port, time_scale=0.1, heartbeat_interval_s=5.0)
    await fleet.start()
    await fleet.wait_connected(len(terminals), timeout=20.0)
    http = aiohttp.ClientSession(headers=AUTH)
    second: Controller | None = None
    try:
        doc = make_cap(
            f"53018141600000_{uuid.uuid4().hex[:12]}",
            STREET,
            headline="安宁市气象台发布暴雨橙色预警[Ⅱ级/严重]",
        )
        url = f"http://127.0.0.1:{first.web_port}"
        async with http.post(f"{url}/api/alerts", data=doc) as resp:
            assert resp.status == 202
            body = await resp.json()
        bid, ebm = body["broadcast_id"], body["ebm_id"]
        # Every terminal is playing (acknowledged and started) when the controller goes down.
        await wait_until(
            lambda: _get(http, f"{url}/api/broadcasts/{bid}"),
            lambda b: b["counts"]["playing"] == len(terminals),
            within=30,
        )
        await first.close()

        second = await Controller.create(settings_for(tmp_path, port=port))
        await second.start()
        url2 = f"http://127.0.0.1:{second.web_port}"
        b = await wait_until(
            lambda: _get(http, f"{url2}/api/broadcasts/{bid}"),
            lambda b: b["state"] in ("completed", "failed", "expired"),
            within=60,
        )
        assert b["state"] == "completed", b
        assert b["coverage"]["rate"] == 1.0
        for t in terminals:
            sim = fleet.terminal(t.resource_code)
            assert len([p for p in sim.played if p.ebm_id == ebm]) == 1
            assert sim.duplicates_ignored == 0, "a delivery acknowledged before the restart was sent again"
    finally:
        await http.close()
        await fleet.stop()
        if second is not None:
            await second.close()
