"""Admin and auditor endpoints: disabling accounts, role changes, secure cookies, the audit API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import ManualClock
from broadcast.security.roles import Role
from broadcast.security.sessions import COOKIE_NAME
from tests.security.conftest import PASSWORD, AiohttpClient, build_app, login, make_user


async def test_disabled_account_loses_its_session(aiohttp_client: AiohttpClient, engine: AsyncEngine,
                                                  clock: ManualClock) -> None:
    admin = await aiohttp_client(build_app(engine, clock))
    op = await aiohttp_client(build_app(engine, clock))
    await make_user(admin, "boss", Role.ADMIN)
    await make_user(admin, "op", Role.OPERATOR)
    csrf = await login(admin, "boss")
    await login(op, "op")
    assert (await op.get("/api/broadcasts")).status == 200
    resp = await admin.post("/api/users/op/disable", headers={"X-CSRF-Token": csrf}, json={"disabled": True})
    assert resp.status == 200
    assert (await op.get("/api/broadcasts")).status == 401
    resp = await op.post("/api/login", json={"username": "op", "password": PASSWORD})
    assert resp.status == 403 and (await resp.json())["error"] == "account_disabled"
    resp = await admin.post("/api/users/boss/disable", headers={"X-CSRF-Token": csrf}, json={"disabled": True})
    assert resp.status == 409  # an admin cannot lock themselves out


async def test_role_change_takes_effect_at_once(app_client: TestClient[Any, Any], aiohttp_client: AiohttpClient,
                                                engine: AsyncEngine, clock: ManualClock) -> None:
    other = await aiohttp_client(build_app(engine, clock))
    await make_user(app_client, "boss", Role.ADMIN)
    await make_user(app_client, "op", Role.OPERATOR)
    csrf = await login(app_client, "boss")
    op_csrf = await login(other, "op")
    assert (await other.post("/api/messages/1/approve", headers={"X-CSRF-Token": op_csrf})).status == 403
    resp = await app_client.post("/api/users/op/roles", headers={"X-CSRF-Token": csrf},
                                 json={"roles": ["operator", "approver"]})
    assert resp.status == 200
    assert (await other.post("/api/messages/1/approve", headers={"X-CSRF-Token": op_csrf})).status == 200


async def test_reset_password_gives_one_time_password(app_client: TestClient[Any, Any]) -> None:
    await make_user(app_client, "boss", Role.ADMIN)
    await make_user(app_client, "op", Role.OPERATOR)
    csrf = await login(app_client, "boss")
    resp = await app_client.post("/api/users/op/reset-password", headers={"X-CSRF-Token": csrf})
    one_time = (await resp.json())["one_time_password"]
    assert (await app_client.post("/api/login", json={"username": "op", "password": PASSWORD})).status == 401
    resp = await app_client.post("/api/login", json={"username": "op", "password": one_time})
    assert (await resp.json())["must_change_password"] is True


async def test_secure_cookie_flag(aiohttp_client: AiohttpClient, engine: AsyncEngine, clock: ManualClock,
                                  tmp_path: Path) -> None:
    from aiohttp import web

    from broadcast.security.install import install
    from broadcast.security.passwords import TEST_PARAMS

    app = web.Application()
    install(app, engine, clock, secure_cookies=True, hash_params=TEST_PARAMS)
    client = await aiohttp_client(app)
    await make_user(client, "op", Role.OPERATOR)
    resp = await client.post("/api/login", json={"username": "op", "password": PASSWORD})
    cookie = next(c for c in resp.headers.getall("Set-Cookie") if c.startswith(COOKIE_NAME + "="))
    assert "secure" in cookie.lower().split("; ")
    assert "Strict-Transport-Security" in resp.headers


async def test_auditor_reads_and_verifies_the_ledger(app_client: TestClient[Any, Any]) -> None:
    await make_user(app_client, "aud", Role.AUDITOR)
    await app_client.post("/api/login", json={"username": "aud", "password": "not-the-password"})
    await login(app_client, "aud")
    resp = await app_client.get("/api/audit?limit=10")
    entries = (await resp.json())["entries"]
    assert [e["action"] for e in entries] == ["login_failed", "login"]
    resp = await app_client.get("/api/audit/verify")
    body = await resp.json()
    assert body["ok"] is True and body["rows_checked"] == 2


async def test_audit_request_helper_records_the_principal(aiohttp_client: AiohttpClient, engine: AsyncEngine,
                                                         clock: ManualClock) -> None:
    from aiohttp import web

    from broadcast.security import audit
    from broadcast.security.context import audit_request
    from broadcast.security.roles import DEFAULT_MATRIX, Permission, Rule

    async def stop(request: web.Request) -> web.Response:
        await audit_request(request, audit.AuditAction.BROADCAST_STOPPED, target=request.match_info["id"],
                            detail={"reason": "drill over"})
        return web.json_response({"ok": True})

    # Without a rule the new route is refused before its handler runs, and nothing is recorded.
    plain = build_app(engine, clock)
    plain.router.add_post("/api/broadcasts/{id}/halt", stop)
    client = await aiohttp_client(plain)
    await make_user(client, "op", Role.OPERATOR)
    csrf = await login(client, "op")
    resp = await client.post("/api/broadcasts/9/halt", headers={"X-CSRF-Token": csrf})
    assert resp.status == 403 and (await resp.json())["error"] == "not_in_matrix"
    assert [e.action for e in await audit.tail(engine)] == ["login"]

    # The lead adds one row; placeholder names need not agree with the route's.
    matrix = DEFAULT_MATRIX.with_rules(Rule("POST", "/api/broadcasts/{bid}/halt", Permission.BROADCAST_STOP))
    ruled = build_app(engine, clock, matrix=matrix)
    ruled.router.add_post("/api/broadcasts/{id}/halt", stop)
    client = await aiohttp_client(ruled)
    csrf = await login(client, "op")
    assert (await client.post("/api/broadcasts/9/halt", headers={"X-CSRF-Token": csrf})).status == 200
    last = (await audit.tail(engine, 1))[0]
    assert (last.action, last.actor, last.remote, last.target) == ("broadcast_stopped", "op", "127.0.0.1", "9")
    assert (await audit.verify(engine)).ok
