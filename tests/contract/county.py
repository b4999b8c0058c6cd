"""A county wired over every transmission path at once, for the end-to-end test and bench/dispatch.py:
IP terminals straight to the county, terminals behind relaying village front-ends, one FM transmitter
and one cable head-end, each path with its simulator. Built from a copy of the Anning inventory in which
a few front-ends get ``relay = true`` (their terminals ``adapter = front_end``) and two street-level
rows name the FM transmitter and the cable head-end."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from adapters.cable_tv.adapter import CableTvAdapter
from adapters.fm.adapter import FmAdapter
from adapters.front_end.adapter import FrontEndAdapter
from adapters.registry import AdapterFactory, discover
from broadcast.app.controller import Controller
from broadcast.settings import load_settings
from sim.cable_inserter import CableInserterSim
from sim.fleet import Fleet
from sim.fm_encoder import FmEncoderSim
from sim.front_end import FrontEndSim
from sim.ip_terminal import SimTerminal
from sim.serial_pty import TcpHost
from terminals.inventory import default_inventory_path

RELAY_FRONT_ENDS = ("65301810012010399010101", "65301810012020399010101", "65301810020010399010101")
FM_CODE = "55301810010000314010498"
CABLE_CODE = "55301810010000314010499"


def mixed_inventory(directory: Path, relay: tuple[str, ...] = RELAY_FRONT_ENDS) -> Path:
    """Copy the default county into ``directory`` with relaying front-ends, an FM and a cable row."""
    directory.mkdir(parents=True, exist_ok=True)
    src = default_inventory_path()
    toml = (src / "county.toml").read_text(encoding="utf-8")
    for code in relay:
        toml, n = re.subn(rf'(resource_code = "{code}"\n)', r"\1relay = true\n", toml)
        assert n == 1, code
    (directory / "county.toml").write_text(toml, encoding="utf-8")
    lines = []
    for line in (src / "terminals.csv").read_text(encoding="utf-8").splitlines():
        cells = line.split(",")
        if len(cells) == 9 and cells[8] in relay:
            cells[7] = "front_end"
            line = ",".join(cells)
        lines.append(line)
    lines.append(f"{FM_CODE},530181001000,安宁调频应急广播发射机,street,FA0000000098,24.919,102.478,fm,")
    lines.append(
        f"{CABLE_CODE},530181001000,安宁有线电视应急广播前端,street,FA0000000099,24.919,102.478,cable_tv,"
    )
    (directory / "terminals.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


@dataclass
class MixedCounty:
    controller: Controller
    fleet: Fleet
    front_ends: dict[str, FrontEndSim]
    relayed: dict[str, SimTerminal]
    fm: FmEncoderSim
    cable: CableInserterSim
    http: aiohttp.ClientSession
    url: str
    hosts: list[TcpHost] = field(default_factory=list)

    def expected(self) -> int:
        return len(self.controller.inventory.terminals)


def factories() -> dict[str, AdapterFactory]:
    """Installed adapters plus those whose entry points may not be installed yet."""
    return {**discover(), "front_end": FrontEndAdapter, "fm": FmAdapter, "cable_tv": CableTvAdapter}


@asynccontextmanager
async def mixed_county(
    tmp_path: Path,
    *,
    tokens: list[dict[str, Any]],
    time_scale: float = 0.002,
    ack_timeout_s: float = 2.0,
    extra: dict[str, Any] | None = None,
) -> AsyncIterator[MixedCounty]:
    """``extra``: more settings sections (e.g. ``{"policy": {...}}``), added to the ones built here."""
    inventory = mixed_inventory(tmp_path / "county")
    fm, cable = FmEncoderSim(), CableInserterSim()
    fm_host, cable_host = TcpHost(fm), TcpHost(cable)
    fm_url, cable_url = await fm_host.start(), await cable_host.start()
    settings = load_settings(
        None,
        {
            "intake": {"tokens": tokens},
            "server": {"port": 0},
            "inventory": {"path": str(inventory)},
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'ebc.sqlite3'}"},
            "audio": {"cache_dir": str(tmp_path / "audio"), "engines": ["offline"]},  # no internet in tests
            "dispatch": {"retry_initial_s": 0.05, "retry_max_s": 0.2},
            "adapters": {
                "ip_speaker": {"port": 0, "ack_timeout_s": ack_timeout_s},
                "front_end": {"port": 0, "ack_timeout_s": ack_timeout_s * 2},
                "fm": {
                    "url": fm_url,
                    "resource_code": FM_CODE,
                    "ack_timeout_s": 0.5,
                    "normal": {"ps": "ANNINGFM", "pty": 10, "rt": "Anning FM", "tp": True},
                },
                "cable_tv": {"url": cable_url, "resource_code": CABLE_CODE, "ack_timeout_s": 0.5},
            },
            **(extra or {}),
        },
        base_dir=tmp_path,
    )
    controller = await Controller.create(settings, adapter_factories=factories())
    await controller.start()
    ip, fe_adapter = controller.registry.get("ip_speaker"), controller.registry.get("front_end")
    assert ip is not None and fe_adapter is not None, controller.registry.describe()
    inv = controller.inventory
    fleet = Fleet(
        inv.terminals, "127.0.0.1", int(ip.status()["port"]), time_scale=time_scale, heartbeat_interval_s=5.0
    )
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {tokens[0]['token']}"})
    audio_http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    front_ends: dict[str, FrontEndSim] = {}
    relayed: dict[str, SimTerminal] = {}
    for fe in inv.front_ends:
        if not fe.relay:
            continue
        behind = inv.terminals_behind(fe.resource_code)
        sim = FrontEndSim(
            fe.resource_code,
            behind,
            "127.0.0.1",
            int(fe_adapter.status()["port"]),
            relay_timeout_s=ack_timeout_s,
            heartbeat_interval_s=5.0,
        )
        await sim.start()
        front_ends[fe.resource_code] = sim
        for ref in behind:
            relayed[ref.resource_code] = SimTerminal(
                ref, "127.0.0.1", sim.port, http=audio_http, time_scale=time_scale, heartbeat_interval_s=5.0
            )
    await fleet.start()
    for t in relayed.values():
        await t.start()
    county = MixedCounty(
        controller,
        fleet,
        front_ends,
        relayed,
        fm,
        cable,
        http,
        f"http://127.0.0.1:{controller.web_port}",
        [fm_host, cable_host],
    )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            counts = controller.links.counts()
            if counts["online"] + counts["broadcasting"] == county.expected():
                break
            assert loop.time() < deadline, counts
            await asyncio.sleep(0.05)
        yield county
    finally:
        await http.close()
        for t in relayed.values():
            await t.stop()
        await fleet.stop()
        for sim in front_ends.values():
            await sim.stop()
        await controller.close()
        await audio_http.close()
        for host in county.hosts:
            await host.close()
        shutil.rmtree(tmp_path / "county", ignore_errors=True)
