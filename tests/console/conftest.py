"""Fixtures for the operator console: a real controller with the console routes added before the server
starts (``Controller.start(extra_setup=...)``), simulated terminals of one street, and accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import broadcast.app.web as app_module
from broadcast.app.controller import Controller
from broadcast.security import accounts
from broadcast.security.passwords import Passwords
from broadcast.security.roles import Role
from broadcast.web.console_routes import CONSOLE_RULES, HUB, EventHub, add_console_routes
from sim.fleet import Fleet
from tests.e2e.conftest import AUTH, _online, settings_for, wait_until

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


@asynccontextmanager
async def console_county(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, area: str | None = STREET, time_scale: float = 0.002
) -> AsyncIterator[ConsoleCounty]:
    # make_app reads MATRIX at call time: add the console's rules as the lead will in app.py.
    if app_module.MATRIX.permission_for("POST", "/api/preview") is None:
        monkeypatch.setattr(app_module, "MATRIX", app_module.MATRIX.with_rules(*CONSOLE_RULES))
    hubs: list[EventHub] = []

    async def setup(controller: Controller, app: web.Application) -> None:
        # make_app installs the console; older trees needed it added here.
        hubs.append(app[HUB] if HUB in app else add_console_routes(app, app_module.CONTROLLER))

    controller = await Controller.create(settings_for(tmp_path))
    await controller.start(extra_setup=setup)
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
    await wait_until(lambda: _online(controller), lambda k: k == n)
    try:
        yield ConsoleCounty(controller, fleet, http, f"http://127.0.0.1:{controller.web_port}", hubs[0], n)
    finally:
        await http.close()
        await fleet.stop()
        await controller.close()


@pytest.fixture
async def county(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ConsoleCounty]:
    async with console_county(tmp_path, monkeypatch) as c:
        yield c


@pytest.fixture
async def whole_county(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ConsoleCounty]:
    """All 586 simulated terminals of Anning."""
    async with console_county(tmp_path, monkeypatch, area=None) as c:
        yield c


async def login(url: str, username: str, password: str = PASSWORD) -> tuple[aiohttp.ClientSession, str]:
    """A cookie session like the browser's; returns (session, csrf token)."""
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.post(f"{url}/api/login", json={"username": username, "password": password}) as r:
        body: dict[str, Any] = await r.json()
        assert r.status == 200, body
    return session, str(body["csrf_token"])
