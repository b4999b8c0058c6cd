"""One county-wide warning over every transmission path at once: IP terminals direct and behind
relaying front-ends, an FM transmitter and a cable head-end. Every device acknowledges."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.contract.county import CABLE_CODE, FM_CODE, mixed_county
from tests.e2e.capdoc import make_cap
from tests.e2e.conftest import TOKENS
from tests.helpers.poll import wait_until


async def test_county_wide_broadcast_over_every_path(tmp_path: Path) -> None:
    async with mixed_county(tmp_path, tokens=TOKENS) as county:
        n = county.expected()
        async with county.http.post(
            f"{county.url}/api/alerts",
            data=make_cap(f"53018141600000_{uuid.uuid4().hex[:14]}", "530181000000"),
            headers={"Content-Type": "application/xml"},
        ) as resp:
            body = await resp.json()
            assert resp.status == 202, body
        assert body["targets"] == n

        async def get() -> dict:
            async with county.http.get(
                f"{county.url}/api/broadcasts/{body['broadcast_id']}?deliveries=1"
            ) as r:
                return await r.json()

        acked = ("acknowledged", "playing", "played")
        b = await wait_until(get, lambda b: all(d["status"] in acked for d in b["deliveries"]), within=60)
        by_code = {d["terminal"]: d["status"] for d in b["deliveries"]}
        assert len(by_code) == n
        assert by_code[FM_CODE] in ("acknowledged", "playing") and by_code[CABLE_CODE] in (
            "acknowledged",
            "playing",
        )
        ebm = body["ebm_id"]
        assert county.fm.state.pty == 31 and ebm in county.cable.on_air
        # each relaying front-end got ONE start for all its terminals; each of them played it once
        for code, sim in county.front_ends.items():
            starts = [x for x in sim.relayed if x[0] == 0x01 and x[1] == ebm]
            behind = {t.resource_code for t in county.controller.inventory.terminals_behind(code)}
            assert len(starts) == 1 and set(starts[0][2]) == behind
        b = await wait_until(
            get,
            lambda b: all(
                d["status"] == "played" for d in b["deliveries"] if d["terminal"] not in (FM_CODE, CABLE_CODE)
            ),
            within=60,
        )
        for t in county.relayed.values():
            assert sum(1 for p in t.played if p.ebm_id == ebm and p.completed) == 1
