"""A fleet of simulated IP loudspeaker terminals in one asyncio loop, sharing one HTTP session.

Owns starting/stopping many ``SimTerminal``s against one controller and waiting until they have
registered. Run standalone with
``python -m sim.fleet --controller 127.0.0.1:9300 --inventory config/anning``; it stops by itself on
SIGINT/SIGTERM. Never imports the controller core (only the inventory loader for the CLI).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from adapters.ip_speaker.codec import HeaderVariant
from broadcast.model import TerminalRef
from sim.ip_terminal import SimTerminal

log = logging.getLogger(__name__)


class Fleet:
    def __init__(
        self,
        terminals: Sequence[TerminalRef],
        host: str,
        port: int,
        *,
        time_scale: float = 1.0,
        heartbeat_interval_s: float = 30.0,
        header_variant: HeaderVariant = HeaderVariant.STANDARD,
    ) -> None:
        self._refs = tuple(t for t in terminals if t.adapter == "ip_speaker")
        self.host = host
        self.port = port
        self.time_scale = time_scale
        self.heartbeat_interval_s = heartbeat_interval_s
        self._variant = header_variant
        self._http: aiohttp.ClientSession | None = None
        self._terminals: dict[str, SimTerminal] = {}
        self._registration = asyncio.Event()

    async def start(self) -> None:
        # One connection per terminal may fetch audio at once: no artificial pool limit.
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        for ref in self._refs:
            self._terminals[ref.resource_code] = SimTerminal(
                ref,
                self.host,
                self.port,
                http=self._http,
                time_scale=self.time_scale,
                heartbeat_interval_s=self.heartbeat_interval_s,
                header_variant=self._variant,
                on_registered=lambda _t: self._registration.set(),
            )
        await asyncio.gather(*(t.start() for t in self._terminals.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(t.stop() for t in self._terminals.values()))
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def terminals(self) -> tuple[SimTerminal, ...]:
        return tuple(self._terminals.values())

    def terminal(self, code: str) -> SimTerminal:
        try:
            return self._terminals[code]
        except KeyError:
            raise KeyError(f"no simulated terminal with resource code {code}") from None

    def connected(self) -> int:
        return sum(1 for t in self._terminals.values() if t.registered)

    async def wait_connected(self, n: int, timeout: float = 10.0) -> int:  # noqa: ASYNC109
        """Wait until ``n`` terminals are registered or ``timeout`` passes; returns how many are."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.connected() < n:
                    self._registration.clear()
                    await self._registration.wait()
        return self.connected()


async def _run(
    terminals: Sequence[TerminalRef], host: str, port: int, time_scale: float, beat: float
) -> None:
    fleet = Fleet(terminals, host, port, time_scale=time_scale, heartbeat_interval_s=beat)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await fleet.start()
    try:
        n = await fleet.wait_connected(len(fleet.terminals), timeout=30.0)
        print(f"{n}/{len(fleet.terminals)} simulated terminals registered with {host}:{port}", flush=True)
        await stop.wait()
    finally:
        await fleet.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.fleet", description=__doc__)
    parser.add_argument("--controller", default="127.0.0.1:9300", help="host:port of the ip_speaker adapter")
    parser.add_argument("--inventory", type=Path, required=True, help="county directory (county.toml + csv)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="playback time factor, e.g. 0.01")
    parser.add_argument("--heartbeat-interval", type=float, default=30.0)
    args = parser.parse_args(argv)
    host, _, port_text = args.controller.rpartition(":")
    if not host or not port_text.isdigit():
        parser.error(f"--controller 需要 host:port 形式，例如 127.0.0.1:9300（当前为 {args.controller!r}）")
    from terminals.inventory import load_inventory

    inventory = load_inventory(args.inventory)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(inventory.terminals, host, int(port_text), args.time_scale, args.heartbeat_interval))
    return 0


if __name__ == "__main__":
    sys.exit(main())
