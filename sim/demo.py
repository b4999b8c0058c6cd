"""Demo runner: the controller with the simulated Anning county attached, in one process.

`make run` starts this. It is the only non-test code that joins the controller and ``sim``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from broadcast.app.controller import Controller
from broadcast.cli import wait_for_signal
from broadcast.settings import load_settings
from sim.fleet import Fleet

# The demo's meteorological source token (Authorization: Bearer …). Demo only: a real deployment
# configures its own under [intake] tokens, preferably as token_sha256.
DEMO_TOKEN = "ebt_demo-anning-meteo-2026"
DEMO_TOKENS = [
    {"name": "demo-meteo", "token": DEMO_TOKEN, "scopes": ["alerts:submit", "messages:submit", "read"]}
]


async def run(config: Path | None, port: int | None, time_scale: float | None, online_tts: bool) -> None:
    overrides: dict[str, dict[str, object]] = {"intake": {"tokens": DEMO_TOKENS}}
    if not online_tts:
        # The demo speaks with the offline engine unless asked: it must work with no network at all.
        overrides["audio"] = {"engines": ["offline"]}
    if port is not None:
        overrides["server"] = {"port": port}
    settings = load_settings(config, overrides)
    controller = await Controller.create(settings)
    await controller.start()
    adapter = controller.registry.get("ip_speaker")
    if adapter is None:
        raise SystemExit("the ip_speaker adapter is not running; see the log above")
    fleet = Fleet(
        controller.inventory.terminals,
        settings.adapters["ip_speaker"].get("host", "127.0.0.1"),
        int(adapter.status()["port"]),
        time_scale=time_scale if time_scale is not None else float(settings.sim.get("time_scale", 1.0)),
        heartbeat_interval_s=float(settings.sim.get("heartbeat_interval_s", 30.0)),
    )
    await fleet.start()
    connected = await fleet.wait_connected(len(controller.inventory.terminals), timeout=30.0)
    url = f"http://{settings.host}:{controller.web_port}"
    print(
        f"\n{controller.inventory.name}应急广播平台 is running with the simulated county "
        f"({connected}/{len(controller.inventory.terminals)} terminals connected).\n"
        f"  status page : {url}/\n"
        f"  post a CAP  : curl -s -H 'Authorization: Bearer {DEMO_TOKEN}' "
        f"--data-binary @examples/cap-rainstorm-red-anning.xml {url}/api/alerts\n"
        f"  its result  : curl -s -H 'Authorization: Bearer {DEMO_TOKEN}' {url}/api/broadcasts/1\n"
        + (
            f"  first admin : user admin, one-time password {controller.first_admin_password} "
            "(shown once; change it at first login)\n"
            if controller.first_admin_password
            else ""
        )
        + "Ctrl-C stops everything.\n",
        flush=True,
    )
    try:
        await wait_for_signal()
    finally:
        await fleet.stop()
        await controller.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.demo", description=__doc__)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--port", type=int)
    parser.add_argument("--time-scale", type=float, help="1.0 plays audio for its real duration")
    parser.add_argument(
        "--online-tts", action="store_true", help="try edge-tts (online) before the offline engine"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(args.config, args.port, args.time_scale, args.online_tts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
