"""End-to-end fixtures: a real controller (SQLite file, real sockets on ephemeral ports, real audio)
with the simulated Anning county attached over the real IP-loudspeaker protocol."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
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
from broadcast.settings import load_settings
from sim.fleet import Fleet
from tests.helpers.poll import wait_until


@dataclass
class County:
    controller: Controller
    fleet: Fleet
    http: aiohttp.ClientSession
    url: str

    async def post_cap(self, body: bytes) -> tuple[int, dict[str, Any]]:
        async with self.http.post(
            f"{self.url}/api/alerts", data=body, headers={"Content-Type": "application/xml"}
        ) as resp:
            return resp.status, await resp.json()

    async def broadcast(self, bid: int, deliveries: bool = False) -> dict[str, Any]:
        q = "?deliveries=1" if deliveries else ""
        async with self.http.get(f"{self.url}/api/broadcasts/{bid}{q}") as resp:
            assert resp.status == 200
            data: dict[str, Any] = await resp.json()
            return data


TOKEN = "ebt_test-source-token-0001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TOKENS = [{"name": "test-source", "token": TOKEN, "scopes": ["alerts:submit", "messages:submit", "read"]}]


def database_url(tmp_path: Path) -> str:
    """SQLite in the test's directory, or the PostgreSQL server named by EBC_TEST_POSTGRES (a base URL
    like postgresql+asyncpg://user:pass@127.0.0.1:5432/) with a fresh database per test directory."""
    base = os.environ.get("EBC_TEST_POSTGRES")
    if not base:
        return f"sqlite+aiosqlite:///{tmp_path / 'ebc.sqlite3'}"
    name = "ebc_" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:12]
    marker = tmp_path / ".pg-created"
    if not marker.exists():
        import asyncpg  # type: ignore[import-untyped]  # only needed for this mode

        async def create() -> None:
            conn = await asyncpg.connect(base.replace("postgresql+asyncpg", "postgresql") + "postgres")
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        # Called from inside a running loop: create the database from a helper thread's own loop.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, create()).result()
        marker.write_text(name)
    return base + name


def settings_for(tmp_path: Path, extra: dict[str, Any] | None = None, **adapter: Any) -> Any:
    overrides: dict[str, Any] = {
        "intake": {"tokens": TOKENS},
        "server": {"port": 0},
        "database": {"url": database_url(tmp_path)},
        # Tests never reach for the internet: the offline engine only (edge-tts is tested against a
        # local stand-in of its service in tests/audio).
        "audio": {"cache_dir": str(tmp_path / "audio"), "engines": ["offline"]},
        "dispatch": {"retry_initial_s": 0.05, "retry_max_s": 0.2},
        "drills": [],  # no scheduled drill in the middle of a test
        "adapters": {"ip_speaker": {"port": 0, "ack_timeout_s": 1.0, **adapter}},
    }
    for section, values in (extra or {}).items():
        if isinstance(values, dict):
            overrides[section] = {**overrides.get(section, {}), **values}
        else:
            overrides[section] = values  # e.g. [[feeds]], [[programmes]]
    return load_settings(None, overrides, base_dir=tmp_path)


@asynccontextmanager
async def running_county(
    tmp_path: Path,
    *,
    area: str | None = None,
    time_scale: float = 0.002,
    extra: dict[str, Any] | None = None,
) -> AsyncIterator[County]:
    """The controller with simulated terminals attached: the whole county, or one area's terminals."""
    controller = await Controller.create(settings_for(tmp_path, extra))
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
    await wait_until(lambda: _online(controller), lambda k: k == n)
    try:
        yield County(controller, fleet, http, f"http://127.0.0.1:{controller.web_port}")
    finally:
        await http.close()
        await fleet.stop()
        await controller.close()


@pytest.fixture
async def county(tmp_path: Path) -> AsyncIterator[County]:
    async with running_county(tmp_path) as c:
        yield c


async def _online(controller: Controller) -> int:
    counts = controller.links.counts()
    return counts["online"] + counts["broadcasting"]


async def login(c: County, username: str, roles: set[Role]) -> aiohttp.ClientSession:
    """An operator account and a logged-in browser-like session (cookie + CSRF header)."""
    password = f"{username}-Passw0rd-2026"
    await accounts.create_account(
        c.controller.engine, c.controller.clock, Passwords(None), username, roles, password
    )
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.post(f"{c.url}/api/login", json={"username": username, "password": password}) as resp:
        me = await resp.json()
        assert resp.status == 200, me
    session.headers["X-CSRF-Token"] = me["csrf_token"]
    return session
