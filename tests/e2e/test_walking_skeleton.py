"""One warning from CAP to the 586 simulated loudspeakers of Anning and back."""

from __future__ import annotations

import uuid
from pathlib import Path

from broadcast.model import DeliveryStatus
from tests.e2e.capdoc import make_cap
from tests.e2e.conftest import County
from tests.helpers.poll import wait_until

README_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cap-rainstorm-red-anning.xml"


def _ident() -> str:
    return f"53018141600000_{uuid.uuid4().hex[:14]}"


def _finished(b: dict) -> bool:
    return b["state"] in ("completed", "failed", "cancelled", "expired")


async def test_whole_county_all_played(county: County) -> None:
    status, body = await county.post_cap(make_cap(_ident(), "530181000000"))
    assert status == 202, body
    assert body["targets"] == 586
    assert len(body["ebm_id"]) == 35
    assert body["ebm_id"].startswith(county.controller.inventory.platform_code)
    b = await wait_until(lambda: county.broadcast(body["broadcast_id"]), _finished, within=60)
    assert b["state"] == "completed", b
    assert b["counts"]["played"] == 586
    assert b["coverage"] == {"played": 586, "targeted": 586, "rate": 1.0}
    tta = b["time_to_air"]
    assert tta["count"] == 586
    assert 0 <= tta["first_ms"] <= tta["p50_ms"] <= tta["p95_ms"] <= tta["max_ms"]
    assert b["audio"]["url"].endswith(".mp3")
    # Ground truth on the simulated side: every terminal played the EBM exactly once.
    for code in (t.resource_code for t in county.controller.inventory.terminals):
        plays = [p for p in county.fleet.terminal(code).played if p.ebm_id == body["ebm_id"]]
        assert len(plays) == 1, code
    states = [h["state"] for h in b["history"]]
    assert states == ["received", "rendering", "broadcasting", "completed"]


async def test_one_street_only(county: County) -> None:
    street = "530181003000"  # 八街街道
    expected = {t.resource_code for t in county.controller.inventory.resolve([street])}
    assert 0 < len(expected) < 586
    status, body = await county.post_cap(make_cap(_ident(), street))
    assert status == 202, body
    b = await wait_until(
        lambda: county.broadcast(body["broadcast_id"], deliveries=True), _finished, within=60
    )
    assert b["state"] == "completed"
    assert {d["terminal"] for d in b["deliveries"]} == expected
    assert all(d["status"] == "played" for d in b["deliveries"])
    for t in county.controller.inventory.terminals:
        played = any(p.ebm_id == body["ebm_id"] for p in county.fleet.terminal(t.resource_code).played)
        assert played == (t.resource_code in expected), t.resource_code


async def test_offline_terminals_lower_coverage(county: County) -> None:
    terms = county.controller.inventory.resolve(["530181001000"])
    off = [t.resource_code for t in terms[:5]]
    for code in off:
        await county.fleet.terminal(code).go_offline()
    await wait_until(
        lambda: _states(county, off), lambda s: all(v == "offline" for v in s.values()), within=10
    )
    status, body = await county.post_cap(make_cap(_ident(), "530181000000"))
    assert status == 202
    b = await wait_until(
        lambda: county.broadcast(body["broadcast_id"], deliveries=True), _finished, within=60
    )
    assert b["state"] == "completed"
    by_code = {d["terminal"]: d for d in b["deliveries"]}
    for code in off:
        assert by_code[code]["status"] in (DeliveryStatus.OFFLINE, DeliveryStatus.FAILED)
        assert by_code[code]["reason"] == "not_connected"
    assert b["coverage"]["played"] == 586 - 5
    assert b["coverage"]["rate"] < 1.0
    assert b["counts"]["offline"] == 5


async def test_offline_terminal_catches_up_when_it_reconnects(county: County) -> None:
    code = county.controller.inventory.resolve(["530181002000"])[0].resource_code
    sim = county.fleet.terminal(code)
    await sim.go_offline()
    await wait_until(lambda: _states(county, [code]), lambda s: s[code] == "offline", within=10)
    status, body = await county.post_cap(make_cap(_ident(), "530181002000"))
    assert status == 202
    await wait_until(
        lambda: county.broadcast(body["broadcast_id"], deliveries=True),
        lambda b: any(d["terminal"] == code and d["status"] == "offline" for d in b["deliveries"]),
    )
    await sim.come_online()
    b = await wait_until(
        lambda: county.broadcast(body["broadcast_id"], deliveries=True),
        lambda b: b["coverage"]["rate"] == 1.0,
        within=30,
    )
    assert b["counts"]["played"] == b["targeted"]
    assert len([p for p in sim.played if p.ebm_id == body["ebm_id"]]) == 1


async def test_same_cap_twice_is_one_broadcast(county: County) -> None:
    doc = make_cap(_ident(), "530181004000")
    s1, b1 = await county.post_cap(doc)
    s2, b2 = await county.post_cap(doc)
    assert (s1, s2) == (202, 200)
    assert b2["duplicate"] is True and b2["broadcast_id"] == b1["broadcast_id"]
    b = await wait_until(lambda: county.broadcast(b1["broadcast_id"]), _finished, within=60)
    assert b["counts"]["played"] == b["targeted"]
    for t in county.controller.inventory.resolve(["530181004000"]):
        plays = [p for p in county.fleet.terminal(t.resource_code).played if p.ebm_id == b1["ebm_id"]]
        assert len(plays) == 1


async def _states(county: County, codes: list[str]) -> dict[str, str]:
    async with county.http.get(f"{county.url}/api/terminals") as resp:
        data = await resp.json()
    return {t["resource_code"]: t["link_state"] for t in data["terminals"] if t["resource_code"] in codes}


async def test_readme_example_goes_out(county: County) -> None:
    """The README's curl posts this file: it must be accepted and reach the whole county."""
    doc = README_EXAMPLE.read_bytes()
    status, body = await county.post_cap(doc)
    assert status == 202, body
    b = await wait_until(lambda: county.broadcast(body["broadcast_id"]), _finished, within=90)
    assert b["state"] == "completed"
    assert b["coverage"]["rate"] == 1.0
    assert b["colour"] == "红色"
