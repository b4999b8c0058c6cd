"""A meteorological feed polled by the running controller: its warnings go through the same intake and
policy, the feed's health shows at GET /api/sources, and a document listed twice is broadcast once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from broadcast.clock import SystemClock
from sim.cap_feed import SENDER, CapFeedServer, Colour, publication
from tests.e2e.conftest import running_county
from tests.helpers.poll import wait_until

STREET = "530181003000"


async def test_feed_warning_broadcast_once_and_health_shown(tmp_path: Path) -> None:
    sent = datetime.now(UTC) - timedelta(minutes=1)
    red = publication(sent, colour=Colour.RED, areas=(("八街街道", STREET),))
    async with CapFeedServer(SystemClock(), [red]) as feed:
        feed.serve_duplicate(True)  # the same item listed twice in the index
        extra = {
            "feeds": [{"name": "anning-met", "url": feed.index_url, "format": "atom", "interval_s": 0.2}],
            "policy": {"trusted_cap_senders": [SENDER]},
        }
        async with running_county(tmp_path, area=STREET, extra=extra) as c:

            async def listed() -> list[dict]:
                async with c.http.get(f"{c.url}/api/broadcasts") as resp:
                    data: list[dict] = (await resp.json())["broadcasts"]
                    return data

            rows = await wait_until(listed, lambda r: len(r) >= 1, within=30)
            b = await wait_until(
                lambda: c.broadcast(rows[0]["id"]), lambda b: b["state"] == "completed", within=60
            )
            assert b["coverage"]["rate"] == 1.0 and b["colour"] == "红色"
            async with c.http.get(f"{c.url}/api/sources") as resp:
                (health,) = (await resp.json())["feeds"]
            assert health["name"] == "anning-met" and health["status"] == "ok", health
            assert health["items_submitted"] == 1 and health["last_success"] is not None
            assert len(await listed()) == 1  # the item listed twice was submitted once
