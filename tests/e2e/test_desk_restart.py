"""A controller restart in the middle of an intake scenario: a held warning keeps waiting with its
deadline, a Cancel that arrived before its Alert still cancels it, and nothing plays twice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broadcast.security.roles import Role
from tests.e2e.capdoc import make_cap, reference
from tests.e2e.conftest import login, running_county
from tests.helpers.poll import wait_until

STREET = "530181003000"
YELLOW = "安宁市气象台发布暴雨黄色预警[Ⅲ级/较重]"
RED = "安宁市气象台发布暴雨红色预警[Ⅰ级/特别严重]"


def ident() -> str:
    return f"53018141600000_{uuid.uuid4().hex[:14]}"


async def test_held_and_parked_survive_restart(tmp_path: Path) -> None:
    alert_id, t0 = ident(), datetime.now(UTC) - timedelta(seconds=30)
    async with running_county(tmp_path, area=STREET) as c:
        status, held = await c.post_cap(make_cap(ident(), STREET, headline=YELLOW))
        assert status == 202 and held["decision"] == "hold"
        status, parked = await c.post_cap(
            make_cap(
                ident(), STREET, msg_type="Cancel", references=reference(alert_id, t0), sent=t0 + timedelta(1)
            )
        )
        assert status == 202 and parked["decision"] == "park_until_original"
        async with c.http.get(f"{c.url}/api/pending") as resp:
            before = (await resp.json())["pending"]
    # The same database, a new process.
    async with running_county(tmp_path, area=STREET) as c:
        async with c.http.get(f"{c.url}/api/pending") as resp:
            after = (await resp.json())["pending"]
        assert after == before  # still waiting, same deadline
        status, late = await c.post_cap(make_cap(alert_id, STREET, headline=RED, sent=t0))
        assert status == 409 and late["reason"] == "cancelled_before_arrival", late
        b = await c.broadcast(held["broadcast_id"])
        assert b["state"] == "pending_approval" and b["counts"]["played"] == 0
        assert all(not t.played for t in c.fleet.terminals)
        # The held one is released by an operator; it plays once on every terminal.
        operator = await login(c, "zhaolei", {Role.OPERATOR})
        async with operator.post(f"{c.url}/api/broadcasts/{held['broadcast_id']}/release") as resp:
            assert resp.status == 200, await resp.text()
        await operator.close()
        b = await wait_until(
            lambda: c.broadcast(held["broadcast_id"]), lambda b: b["state"] == "completed", within=60
        )
        assert b["coverage"]["rate"] == 1.0
        assert all(len(t.played) == 1 for t in c.fleet.terminals)
