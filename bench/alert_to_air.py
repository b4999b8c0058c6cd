"""Benchmark: CAP alert received → terminals acknowledged / playing / played, for the whole county.

The controller runs in this process (SQLite file, real sockets); the simulated Anning county (586
terminals) runs in a separate process (`python -m sim.fleet`) and speaks the real IP-loudspeaker
protocol over loopback. The audio is rendered once before measuring (the goal is stated "with the
audio already cached"). In the same run, the transport baseline: the same 586 start instructions
sent straight through the adapter over the same connections (encode, write, wait for each reply)
with nothing else in the way — no HTTP, CAP parsing, database, dispatcher.

    .venv/bin/python bench/alert_to_air.py [--runs 5] [--time-scale 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import all_online, fleet_process, wait_for  # noqa: E402
from broadcast.app.controller import Controller  # noqa: E402
from broadcast.model import DeliveryOrder, MsgType, Priority, Severity  # noqa: E402
from broadcast.settings import load_settings  # noqa: E402
from broadcast.store.broadcasts import delivery_rows, get_broadcast  # noqa: E402

TOKEN = "ebt_bench-source-token-0001"
TITLE = "安宁市气象台发布暴雨红色预警[Ⅰ级/特别严重]"
TEXT = (
    "安宁市气象台发布暴雨红色预警信号：过去3小时全市降雨量已达100毫米以上，且降雨将持续。请立即停止户外活动。"
)


def cap(identifier: str) -> bytes:
    now = datetime.now(UTC)
    t = now.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    exp = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>{identifier}</identifier>
<sender>Anning_Meteorological_Observatory</sender><sent>{t}</sent><status>Actual</status>
<msgType>Alert</msgType><scope>Public</scope><info><language>zh-CN</language><category>Met</category>
<event>暴雨</event><urgency>Unknown</urgency><severity>Extreme</severity><certainty>Unknown</certainty>
<expires>{exp}</expires><senderName>安宁市气象台</senderName><headline>{TITLE}</headline>
<description>{TEXT}</description><area><areaDesc>安宁市</areaDesc><geocode>
<valueName>CPEAS Geographic Code</valueName><value>530181000000</value></geocode></area></info></alert>""".encode()


async def pipeline_run(ctl: Controller, http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with http.post(f"{url}/api/alerts", data=cap(f"bench_{uuid.uuid4().hex}")) as resp:
        body = await resp.json()
        assert resp.status == 202, body
    bid = body["broadcast_id"]

    async def done() -> bool:
        row = await get_broadcast(ctl.engine, bid)
        return row is not None and row["state"] == "completed"

    await wait_for(done, 120)
    row = await get_broadcast(ctl.engine, bid)
    assert row is not None
    rows = await delivery_rows(ctl.engine, bid)
    t0 = row["received_at"]
    ack = sorted((r["acknowledged_at"] - t0).total_seconds() * 1000 for r in rows if r["acknowledged_at"])
    playing = sorted((r["playing_at"] - t0).total_seconds() * 1000 for r in rows if r["playing_at"])
    played = sorted((r["played_at"] - t0).total_seconds() * 1000 for r in rows if r["played_at"])
    assert len(ack) == len(played) == 586, (len(ack), len(played))
    return {
        "first_ack_ms": ack[0],
        "all_ack_ms": ack[-1],
        "first_playing_ms": playing[0],
        "all_playing_ms": playing[-1],
        "all_played_ms": played[-1],
    }


async def baseline_run(ctl: Controller, audio_url: str) -> dict[str, float]:
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
        title=TITLE,
        audio_url=audio_url,
        audio=None,
    )
    t0 = time.perf_counter()
    times: list[float] = []

    async def one(code: str) -> None:
        res = await adapter.deliver(order, code)
        assert res.outcome == "accepted", res
        times.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(one(t.resource_code) for t in ctl.inventory.terminals))
    times.sort()
    return {"first_ack_ms": times[0], "all_ack_ms": times[-1]}


async def main(runs: int, time_scale: float) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ebc-bench-"))
    settings = load_settings(
        None,
        {
            "server": {"port": 0},
            "intake": {"tokens": [{"name": "bench", "token": TOKEN, "scopes": ["alerts:submit", "read"]}]},
            "database": {"url": f"sqlite+aiosqlite:///{tmp / 'bench.sqlite3'}"},
            "audio": {"cache_dir": str(tmp / "audio"), "engines": ["offline"]},
            "adapters": {"ip_speaker": {"port": 0, "ack_timeout_s": 10.0}},
        },
        base_dir=tmp,
    )
    ctl = await Controller.create(settings)
    await ctl.start()
    adapter = ctl.registry.get("ip_speaker")
    assert adapter is not None
    port = int(adapter.status()["port"])
    processes = AsyncExitStack()  # the simulated county, stopped in the finally below
    await processes.enter_async_context(fleet_process(settings.inventory_path, port, time_scale))
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        n = len(ctl.inventory.terminals)
        await all_online(ctl)
        url = f"http://127.0.0.1:{ctl.web_port}"
        t = time.perf_counter()
        rendered = await ctl.renderer.render(TITLE, TEXT, repeats=3)
        print(
            f"audio rendered once before measuring: {rendered.ref.duration_s:.1f} s programme "
            f"in {time.perf_counter() - t:.2f} s ({rendered.ref.engine})"
        )
        audio_url = f"{url}/audio/{rendered.ref.digest}.mp3"
        await pipeline_run(ctl, http, url)  # warm-up: connections, code paths, SQLite pages
        pipe: list[dict[str, float]] = []
        base: list[dict[str, float]] = []
        for _ in range(runs):
            base.append(await baseline_run(ctl, audio_url))
            await asyncio.sleep(rendered.ref.duration_s * time_scale + 1.0)  # let that playback finish
            pipe.append(await pipeline_run(ctl, http, url))

        def med(rows: list[dict[str, float]], key: str) -> float:
            return statistics.median(r[key] for r in rows)

        print(f"\n{n} terminals, {runs} runs each, medians (time-scale {time_scale} for playback):")
        print(f"{'':40} {'pipeline':>10} {'baseline':>10} {'ratio':>7}")
        for label, key in (
            ("alert received → first acknowledged", "first_ack_ms"),
            ("alert received → all acknowledged", "all_ack_ms"),
        ):
            p, b = med(pipe, key), med(base, key)
            print(f"{label:40} {p:9.1f}ms {b:9.1f}ms {p / b:6.2f}x")
        for label, key in (
            ("alert received → first playing", "first_playing_ms"),
            ("alert received → all playing", "all_playing_ms"),
            ("alert received → all played (scaled)", "all_played_ms"),
        ):
            print(f"{label:40} {med(pipe, key):9.1f}ms")
        print("\ngoals: first ≤ 300 ms, all 586 acknowledged ≤ 1000 ms")
    finally:
        await http.close()
        await processes.aclose()
        await ctl.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--time-scale", type=float, default=0.01)
    a = ap.parse_args()
    asyncio.run(main(a.runs, a.time_scale))
