"""Benchmark: one county-wide warning over every transmission path at once — IP terminals direct,
terminals behind relaying front-ends, an FM transmitter, a cable head-end — time from alert received
until every device acknowledged. Beside it, the IP-only figure from the same run and the transport
baseline (the same start instructions sent straight through the ip_speaker adapter, nothing else in
the way; cf. bench/alert_to_air.py's baseline_run). Everything runs in this process.

    .venv/bin/python bench/dispatch.py [--runs 3]

Then, on a fresh county, 10 overlapping broadcasts of mixed priority (daily programmes, drills,
blue/yellow/orange/red county CAP, upper-platform red and blue; tests/contract/overlap.py) over
overlapping areas: time from the first submission until every IP/front-end delivery settled and FM/cable
carry the top item, then the final state of every device checked against its simulator's ground truth.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.alert_to_air import cap  # noqa: E402
from broadcast.app.controller import Controller  # noqa: E402
from broadcast.model import DeliveryOrder, MsgType, Priority, Severity  # noqa: E402
from broadcast.store.broadcasts import delivery_rows, get_broadcast  # noqa: E402
from tests.contract.county import mixed_county  # noqa: E402
from tests.contract.overlap import POLICY, final_state, scenario, submit, wait_settled  # noqa: E402

TOKEN = "ebt_bench-source-token-0002"
CODE_COLUMN = "terminal_code"


def _acked(row: dict[str, Any]) -> Any:
    """When the device acknowledged (a fast report may have moved it on before the ack was stored)."""
    return row["acknowledged_at"] or row["playing_at"] or row["played_at"]


async def county_run(ctl: Controller, http: object, url: str) -> dict[str, float]:
    import aiohttp

    assert isinstance(http, aiohttp.ClientSession)
    async with http.post(f"{url}/api/alerts", data=cap(f"bench_{uuid.uuid4().hex}")) as resp:
        body = await resp.json()
        assert resp.status == 202, body
    bid = body["broadcast_id"]
    adapter_of = {t.resource_code: t.adapter for t in ctl.inventory.terminals}
    deadline = time.monotonic() + 20
    while True:
        rows = await delivery_rows(ctl.engine, bid)
        if rows and all(_acked(r) for r in rows):
            break
        assert time.monotonic() < deadline, [(r[CODE_COLUMN], r["status"]) for r in rows if not _acked(r)][:5]
        await asyncio.sleep(0.02)
    row = await get_broadcast(ctl.engine, bid)
    assert row is not None
    t0 = row["received_at"]
    ack = {r[CODE_COLUMN]: (_acked(r) - t0).total_seconds() * 1000 for r in rows}
    by_path: dict[str, float] = {}
    for code, ms in ack.items():
        path = adapter_of.get(code, "?")
        by_path[path] = max(by_path.get(path, 0.0), ms)
    return {"all_ack_ms": max(ack.values()), **{f"{k}_ms": v for k, v in by_path.items()}}


async def ip_baseline(ctl: Controller, audio_url: str) -> float:
    adapter = ctl.registry.get("ip_speaker")
    assert adapter is not None
    now = datetime.now(UTC)
    order = DeliveryOrder(
        ebm_id=f"{ctl.inventory.platform_code}{now:%Y%m%d}{uuid.uuid4().int % 10000:04d}",
        msg_type=MsgType.ACTUAL,
        severity=Severity.RED,
        event_type="11B03",
        priority=Priority.EMERGENCY,
        start_at=now,
        end_at=now + timedelta(minutes=10),
        title="基线",
        audio_url=audio_url,
        audio=None,
    )
    codes = [t.resource_code for t in ctl.inventory.terminals if t.adapter == "ip_speaker"]
    t0 = time.perf_counter()
    results = await asyncio.gather(*(adapter.deliver(order, c) for c in codes))
    assert all(r.outcome == "accepted" for r in results)
    return (time.perf_counter() - t0) * 1000


async def main(runs: int) -> None:
    """A fresh county per run: FM/cable keep a broadcast on air until its end time, and the dispatcher
    holds the next one for that device meanwhile (preemption is separate work)."""
    tmp = Path(tempfile.mkdtemp(prefix="ebc-bench-dispatch-"))
    tokens = [{"name": "bench", "token": TOKEN, "scopes": ["alerts:submit", "read"]}]
    rows: list[dict[str, float]] = []
    base: list[float] = []
    devices = relays = 0
    for i in range(runs):
        async with mixed_county(
            tmp / f"run{i}", tokens=tokens, time_scale=0.01, ack_timeout_s=10.0
        ) as county:
            ctl = county.controller
            devices, relays = county.expected(), len(county.front_ends)
            rendered = await ctl.renderer.render("基线", "基线测试音频。", repeats=1)
            audio_url = f"{county.url}/audio/{rendered.ref.digest}.mp3"
            rows.append(await county_run(ctl, county.http, county.url))
            base.append(await ip_baseline(ctl, audio_url))
    paths = sorted({k for r in rows for k in r})
    print(f"{devices} devices, {relays} relaying front-ends, {runs} runs (cold, one county each), medians:")
    for key in paths:
        label = f"alert received → all acknowledged [{key[:-3]}]"
        print(f"  {label:52} {statistics.median(r[key] for r in rows):9.1f} ms")
    print(f"  {'ip_speaker transport baseline (same runs)':52} {statistics.median(base):9.1f} ms")
    if not await overlapping(tmp, tokens):
        raise SystemExit("overlapping broadcasts: some devices ended in a wrong state (listed above)")


async def overlapping(tmp: Path, tokens: list[dict[str, Any]]) -> bool:
    """The 10-broadcast mixed-priority run; prints its figures, returns whether every device is right."""
    async with mixed_county(
        tmp / "overlap", tokens=tokens, time_scale=0.01, ack_timeout_s=10.0, extra=POLICY
    ) as c:
        items = scenario("530181000000", "530181001000", "530181001201", "530181002000")
        t0 = time.perf_counter()
        aired = await submit(c, items)
        submitted = time.perf_counter()
        await wait_settled(c, aired, within_s=120)
        settled = time.perf_counter()
        checked, problems = await final_state(c, aired)
    print(f"10 overlapping mixed-priority broadcasts, {checked} devices targeted:")
    print(f"  {'all 10 submitted':52} {(submitted - t0) * 1000:9.1f} ms")
    print(f"  {'first submission → every device in its final state':52} {(settled - t0) * 1000:9.1f} ms")
    print(f"  {'devices in a wrong final state':52} {len(problems):9d}")
    for p in problems[:10]:
        print(f"    {p}")
    return not problems


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    asyncio.run(main(ap.parse_args().runs))
