"""Fixtures for the operator console: a real controller (whose web app includes the console and its
live-event hub), simulated terminals of one street, and accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from broadcast.app.controller import Controller
from broadcast.security import accounts
from broadcast.security.passwords import Passwords
from broadcast.security.roles import Role
from broadcast.web.console_routes import HUB, EventHub
from sim.fleet import Fleet
from tests.e2e.conftest import AUTH, settings_for
from tests.helpers.poll import until

# 青龙街道: the smallest street (39 terminals) keeps the browser tests fast.
STREET = "530181008000"
PASSWORD = "correct-horse-battery-9"


@dataclass
class ConsoleCounty:
    controller: Controller
    fleet: Fleet
    http: aiohttp.ClientSession  # bearer-token client (machine source), for setup only
    url: str
    hub: EventHub
    terminals: int

    async def broadcast_json(self, bid: int) -> dict[str, Any]:
        async with self.http.get(f"{self.url}/api/broadcasts/{bid}") as resp:
            assert resp.status == 200
            data: dict[str, Any] = await resp.json()
            return data

    async def account(self, username: str, *roles: Role, password: str | None = PASSWORD) -> str | None:
        """Create an account; returns the one-time password when ``password`` is None."""
        _acct, one_time = await accounts.create_account(
            self.controller.engine, self.controller.clock, Passwords(None), username, roles, password
        )
        return one_time


def online(controller: Controller) -> int:
    """Terminals connected now (online or broadcasting)."""
    counts = controller.links.counts()
    return counts["online"] + counts["broadcasting"]


@asynccontextmanager
async def console_county(
    tmp_path: Path, *, area: str | None = STREET, time_scale: float = 0.002
) -> AsyncIterator[ConsoleCounty]:
    controller = await Controller.create(settings_for(tmp_path))
    await controller.start()
    adapter = controller.registry.get("ip_speaker")
    assert adapter is not None, controller.registry.describe()
    terminals = controller.inventory.resolve([area]) if area else controller.inventory.terminals
    fleet = Fleet(
        terminals, "127.0.0.1", int(adapter.status()["port"]), time_scale=time_scale, heartbeat_interval_s=5.0
    )
    await fleet.start()
    n = len(terminals)
    await fleet.wait_connected(n, timeout=20.0)
    http = aiohttp.ClientSession(headers=AUTH)
    await until(lambda: online(controller) == n, within_s=20.0)
    try:
        url = f"http://127.0.0.1:{controller.web_port}"
        yield ConsoleCounty(controller, fleet, http, url, controller.app[HUB], n)
    finally:
        await http.close()
        await fleet.stop()
        await controller.close()


@pytest.fixture
async def county(tmp_path: Path) -> AsyncIterator[ConsoleCounty]:
    async with console_county(tmp_path) as c:
        yield c


@pytest.fixture
async def whole_county(tmp_path: Path) -> AsyncIterator[ConsoleCounty]:
    """All 586 simulated terminals of Anning."""
    async with console_county(tmp_path, area=None) as c:
        yield c


async def login(url: str, username: str, password: str = PASSWORD) -> tuple[aiohttp.ClientSession, str]:
    """A cookie session like the browser's; returns (session, csrf token)."""
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.post(f"{url}/api/login", json={"username": username, "password": password}) as r:
        body: dict[str, Any] = await r.json()
        assert r.status == 200, body
    return session, str(body["csrf_token"])
