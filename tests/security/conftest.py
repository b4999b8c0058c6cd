"""Fixtures for the security tests: a real SQLite database in tmp_path, a manual clock, and a small
aiohttp app carrying the security middlewares, the auth routes and dummy endpoints of the console."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.app.schema import feature_tables
from broadcast.clock import ManualClock
from broadcast.security import accounts
from broadcast.security.context import SECURITY, SecurityContext
from broadcast.security.install import install
from broadcast.security.passwords import TEST_PARAMS
from broadcast.security.roles import DEFAULT_MATRIX, Role, RoleMatrix
from broadcast.store.db import make_engine, prepare_schema

PASSWORD = "correct-horse-battery"

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'ebc.db'}")
    await prepare_schema(eng, feature_tables())  # the store's create_all must create the security tables too
    yield eng
    await eng.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 2, 8, 0, tzinfo=UTC))


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "route": request.match_info.route.resource.canonical})  # type: ignore[union-attr]


DUMMY_ROUTES: list[tuple[str, str]] = [
    ("GET", "/"),
    ("GET", "/login"),
    ("GET", "/healthz"),
    ("GET", "/audio/{name}"),
    ("GET", "/api/broadcasts"),
    ("GET", "/api/broadcasts/{id}"),
    ("DELETE", "/api/broadcasts/{id}"),  # deliberately absent from the matrix
    ("POST", "/api/broadcasts/{id}/stop"),
    ("GET", "/api/terminals"),
    ("POST", "/api/alerts"),
    ("POST", "/api/messages"),
    ("PUT", "/api/messages/{id}"),
    ("POST", "/api/messages/{id}/submit"),
    ("POST", "/api/messages/{id}/approve"),
    ("POST", "/api/messages/{id}/reject"),
    ("GET", "/api/config"),
    ("PUT", "/api/config"),
    ("PUT", "/api/config/{section}"),
]


def build_app(
    engine: AsyncEngine, clock: ManualClock, static_dir: Path | None = None, matrix: RoleMatrix = DEFAULT_MATRIX
) -> web.Application:
    app = web.Application()
    ctx = install(app, engine, clock, matrix=matrix, secure_cookies=False, hash_params=TEST_PARAMS)
    for method, path in DUMMY_ROUTES:
        app.router.add_route(method, path, _ok)
    if static_dir is not None:
        app.router.add_static("/static", static_dir)
    assert app[SECURITY] is ctx
    return app


@pytest.fixture
async def app_client(
    engine: AsyncEngine, clock: ManualClock, aiohttp_client: AiohttpClient, tmp_path: Path
) -> TestClient[Any, Any]:
    static = tmp_path / "static"
    static.mkdir()
    (static / "app.js").write_text("console.log(1)")
    return await aiohttp_client(build_app(engine, clock, static))


def ctx_of(client: TestClient[Any, Any]) -> SecurityContext:
    assert client.app is not None
    ctx: SecurityContext = client.app[SECURITY]
    return ctx


async def make_user(client: TestClient[Any, Any], username: str, *roles: Role) -> None:
    ctx = ctx_of(client)
    await accounts.create_account(ctx.engine, ctx.clock, ctx.passwords, username, roles, PASSWORD)


async def login(client: TestClient[Any, Any], username: str, password: str = PASSWORD) -> str:
    """Log in (the client keeps the cookie); returns the CSRF token."""
    resp = await client.post("/api/login", json={"username": username, "password": password})
    body = await resp.json()
    assert resp.status == 200, body
    token: str = body["csrf_token"]
    return token
