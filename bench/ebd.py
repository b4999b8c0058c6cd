"""Benchmark of the upper-platform interface (平台间接口): package throughput, and EBM → first terminal playing.

1. Packages per second, in this process: build + SM2 sign + tar pack of an EBM, and unpack + parse + SM2
   verify of the same packages (tongsuopy).
2. End to end: the controller runs in this process with the interconnect attached (SQLite file, real
   sockets); the simulated Anning county (586 terminals) runs in a separate process (`python -m sim.fleet`,
   as bench/alert_to_air.py does); the simulated province (in this process) POSTs a signed EBM for the
   whole county over HTTP. Measured from just before the POST to the first terminal playing, so HTTP,
   unpacking, signature verification, conversion and the county pipeline are all inside. In the same run
   the equivalent CAP (same title, text, severity and area) is posted to /api/alerts and the same interval
   is measured. The audio of both is rendered by a warm-up run of each path before measuring.

    .venv/bin/python bench/ebd.py [--runs 5] [--packages 300] [--time-scale 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import all_online, fleet_process, wait_for  # noqa: E402
from broadcast.app.controller import Controller  # noqa: E402
from broadcast.app.interconnect import attach_interconnect  # noqa: E402
from broadcast.clock import SystemClock  # noqa: E402
from broadcast.interconnect.ebd.ids import EbdIdAllocator  # noqa: E402
from broadcast.interconnect.ebd.keys import read_public_key, write_key_pair  # noqa: E402
from broadcast.interconnect.ebd.model import ResultCode  # noqa: E402
from broadcast.interconnect.ebd.package import unpack_ebdt  # noqa: E402
from broadcast.interconnect.ebd.signing import Verifier, VerifyResult, generate_private_key, public_key_to_pem  # noqa: E402
from broadcast.interconnect.routes import Interconnect  # noqa: E402
from broadcast.interconnect.upper import local_for_upper  # noqa: E402
from broadcast.interconnect.upper_boundary import PacketMaker  # noqa: E402
from broadcast.settings import load_settings  # noqa: E402
from broadcast.store.broadcasts import delivery_rows, get_broadcast  # noqa: E402
from broadcast.store.tables import broadcasts  # noqa: E402
from sim.upper_platform import PROVINCE, PROVINCE_CERT_SN, ProvincePlatform  # noqa: E402

COUNTY_CERT_SN = "000000000101"
TOKEN = "ebt_bench-source-token-0001"  # an API token of the CAP source (POST /api/alerts needs one)
AREA = "530181000000"
TITLE = "安宁市气象台发布暴雨红色预警"
TEXT = (
    "安宁市气象台发布暴雨红色预警信号：过去3小时全市降雨量已达100毫米以上，且降雨将持续。请立即停止户外活动。"
)


# ---- 1. packages per second ---------------------------------------------------------------------


def package_rates(n: int) -> tuple[float, float]:
    """(built+signed+packed per second, unpacked+parsed+verified per second) over `n` EBM packages."""
    clock = SystemClock()
    province = ProvincePlatform(
        "45301810000000103010101", generate_private_key().public_key(), COUNTY_CERT_SN
    )
    maker = PacketMaker(PROVINCE, province.signer, EbdIdAllocator(PROVINCE, clock), clock)
    verifier = Verifier({PROVINCE_CERT_SN: province.key.public_key()})
    ebms = [province.make_ebm(title=TITLE, text=TEXT) for _ in range(n)]
    t = time.perf_counter()
    tars = [maker.make(ebm, "45301810000000103010101").tar for ebm in ebms]
    built = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for tar in tars:
        pkg = unpack_ebdt(tar)
        assert verifier.verify(pkg.ebdb, pkg.signature_xml, ebd_id=pkg.ebd.ebd_id) is VerifyResult.OK
    checked = n / (time.perf_counter() - t)
    return built, checked


# ---- 2. EBM / CAP → first terminal playing ------------------------------------------------------


def cap(identifier: str) -> bytes:
    now = datetime.now(UTC)
    t = now.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    exp = (now + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>{identifier}</identifier>
<sender>Anning_Meteorological_Observatory</sender><sent>{t}</sent><status>Actual</status>
<msgType>Alert</msgType><scope>Public</scope><info><language>zh-CN</language><category>Met</category>
<event>暴雨</event><urgency>Unknown</urgency><severity>Extreme</severity><certainty>Unknown</certainty>
<expires>{exp}</expires><senderName>安宁市气象台</senderName><headline>{TITLE}</headline>
<description>{TEXT}</description><area><areaDesc>安宁市</areaDesc><geocode>
<valueName>CPEAS Geographic Code</valueName><value>{AREA}</value></geocode></area></info></alert>""".encode()


async def _intervals(ctl: Controller, bid: int, t0: datetime) -> dict[str, float]:
    async def completed() -> bool:
        row = await get_broadcast(ctl.engine, bid)
        return row is not None and row["state"] == "completed"

    await wait_for(completed, 120)
    row = await get_broadcast(ctl.engine, bid)
    assert row is not None
    rows = await delivery_rows(ctl.engine, bid)
    playing = sorted(r["playing_at"] for r in rows if r["playing_at"] is not None)
    assert len(playing) == len(rows) == len(ctl.inventory.terminals), (len(playing), len(rows))
    return {
        "sent_to_first_playing_ms": (playing[0] - t0).total_seconds() * 1000,
        "received_to_first_playing_ms": (playing[0] - row["received_at"]).total_seconds() * 1000,
        "sent_to_all_playing_ms": (playing[-1] - t0).total_seconds() * 1000,
        "sent_to_stored_ms": (row["received_at"] - t0).total_seconds() * 1000,
    }


async def ebm_run(ctl: Controller, province: ProvincePlatform) -> dict[str, float]:
    t0 = datetime.now(UTC)
    ebm, ex = await province.send_ebm(area_codes=(AREA,), title=TITLE, text=TEXT, severity=1)
    assert ex.result_code is ResultCode.OK, ex
    local = await local_for_upper(ctl.engine, ebm.ebm_id)
    assert local is not None
    async with ctl.engine.connect() as conn:
        bid = (await conn.execute(select(broadcasts.c.id).where(broadcasts.c.ebm_id == local))).scalar_one()
    return await _intervals(ctl, int(bid), t0)


async def cap_run(ctl: Controller, http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    t0 = datetime.now(UTC)
    async with http.post(f"{url}/api/alerts", data=cap(f"bench_{uuid.uuid4().hex}")) as resp:
        body = await resp.json()
        assert resp.status == 202, body
    return await _intervals(ctl, int(body["broadcast_id"]), t0)


async def end_to_end(runs: int, time_scale: float) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    tmp = Path(tempfile.mkdtemp(prefix="ebc-bench-ebd-"))
    settings = load_settings(
        None,
        {
            "server": {"port": 0},
            "database": {"url": f"sqlite+aiosqlite:///{tmp / 'bench.sqlite3'}"},
            "audio": {"cache_dir": str(tmp / "audio"), "engines": ["offline"]},
            "adapters": {"ip_speaker": {"port": 0, "ack_timeout_s": 10.0}},
            "intake": {"tokens": [{"name": "bench", "token": TOKEN, "scopes": ["alerts:submit", "read"]}]},
        },
        base_dir=tmp,
    )
    keys = write_key_pair(tmp / "keys", "county")
    ctl = await Controller.create(settings)
    province = ProvincePlatform(
        ctl.inventory.platform_code, read_public_key(str(keys.public_pem), tmp), COUNTY_CERT_SN
    )
    await province.start()
    (tmp / "keys" / "province.pub.pem").write_text(public_key_to_pem(province.key.public_key()))
    section = {
        "private_key": str(keys.private_pem),
        "cert_sn": COUNTY_CERT_SN,
        "trusted": {PROVINCE_CERT_SN: "keys/province.pub.pem"},
        "peers": [{"ebrid": PROVINCE, "url": province.url, "name": "云南省应急广播平台"}],
    }
    attached: list[Interconnect | None] = []

    async def extra_setup(c: Controller, app: web.Application) -> None:
        attached.append(attach_interconnect(c.county, app, section, base_dir=c.settings.base_dir, session=c.http))

    await ctl.start(extra_setup=extra_setup)
    assert attached and attached[0] is not None
    url = f"http://127.0.0.1:{ctl.web_port}"
    province.county_url = f"{url}/ebd"
    adapter = ctl.registry.get("ip_speaker")
    assert adapter is not None
    processes = AsyncExitStack()  # the simulated county, stopped in the finally below
    await processes.enter_async_context(
        fleet_process(settings.inventory_path, int(adapter.status()["port"]), time_scale)
    )
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        await all_online(ctl)
        await ebm_run(ctl, province)  # warm-up: renders the audio, opens connections, warms SQLite pages
        await cap_run(ctl, http, url)
        ebm_rows: list[dict[str, float]] = []
        cap_rows: list[dict[str, float]] = []
        for _ in range(runs):
            ebm_rows.append(await ebm_run(ctl, province))
            cap_rows.append(await cap_run(ctl, http, url))
        if province.violations:
            print("province saw protocol violations:", *province.violations[:5], sep="\n  ")
        return ebm_rows, cap_rows
    finally:
        await http.close()
        await processes.aclose()
        await ctl.close()
        await province.close()


def main(runs: int, packages: int, time_scale: float) -> None:
    logging.basicConfig(level=logging.ERROR)  # the fleet's shutdown would log 586 link losses
    rates = [package_rates(packages) for _ in range(runs)]
    print(f"packages ({packages} EBMs per run, {runs} runs, medians):")
    print(f"  build + sign + pack      {statistics.median(r[0] for r in rates):8.0f} /s")
    print(f"  unpack + parse + verify  {statistics.median(r[1] for r in rates):8.0f} /s")
    ebm_rows, cap_rows = asyncio.run(end_to_end(runs, time_scale))

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(f"\nwhole county (586 terminals), {runs} runs each, medians:")
    print(f"{'':44} {'EBM (EBD)':>10} {'CAP':>10}")
    for label, key in (
        ("sent over HTTP → stored (transfer, verify…)", "sent_to_stored_ms"),
        ("sent over HTTP → first terminal playing", "sent_to_first_playing_ms"),
        ("stored as received → first terminal playing", "received_to_first_playing_ms"),
        ("sent over HTTP → all terminals playing", "sent_to_all_playing_ms"),
    ):
        print(f"{label:44} {med(ebm_rows, key):8.1f}ms {med(cap_rows, key):8.1f}ms")
    ebm_first = med(ebm_rows, "sent_to_first_playing_ms")
    verdict = "met" if ebm_first <= 500 else "NOT met"
    print(f"\ngoal: EBM received → first terminal playing ≤ 500 ms including verification: {verdict}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--packages", type=int, default=300)
    ap.add_argument("--time-scale", type=float, default=0.01)
    a = ap.parse_args()
    if a.runs < 5:
        ap.error("--runs 至少为 5（取中位数）")
    main(a.runs, a.packages, a.time_scale)
