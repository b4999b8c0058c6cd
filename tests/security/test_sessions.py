"""Login, first-admin bootstrap, sessions, CSRF, lockout, API tokens and security headers over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from broadcast.clock import ManualClock
from broadcast.security import accounts, audit
from broadcast.security.install import ensure_first_admin
from broadcast.security.passwords import PasswordPolicyError, check_policy
from broadcast.security.roles import Role
from broadcast.security.sessions import COOKIE_NAME
from tests.security.conftest import PASSWORD, ctx_of, login, make_user


def _clock(client: TestClient[Any, Any]) -> ManualClock:
    clock = ctx_of(client).clock
    assert isinstance(clock, ManualClock)
    return clock


def _cookie(client: TestClient[Any, Any]) -> str:
    for c in client.session.cookie_jar:
        if c.key == COOKIE_NAME:
            return c.value
    raise AssertionError("no session cookie in the jar")


def test_password_policy() -> None:
    for username, pw, violation in [("bob", "short", "too_short"), ("longusername1", "LongUserName1", "equals_username"),
                                    ("bob", "x" * 300, "too_long")]:
        with pytest.raises(PasswordPolicyError) as info:
            check_policy(username, pw)
        assert info.value.violation.value == violation
    check_policy("bob", "twelve-chars")


async def test_first_admin_one_time_password_and_forced_change(app_client: TestClient[Any, Any]) -> None:
    ctx = ctx_of(app_client)
    one_time = await ensure_first_admin(ctx)
    assert one_time is not None and len(one_time) >= 12
    assert await ensure_first_admin(ctx) is None  # only at first start
    async with ctx.engine.connect() as conn:
        stored = (await conn.execute(select(accounts.accounts.c.password_hash))).scalar_one()
    assert stored.startswith("$argon2id$") and one_time not in stored

    resp = await app_client.post("/api/login", json={"username": "admin", "password": one_time})
    body = await resp.json()
    assert resp.status == 200 and body["must_change_password"] is True
    h = {"X-CSRF-Token": body["csrf_token"]}
    for method, path in [("GET", "/api/users"), ("GET", "/api/me"), ("GET", "/api/broadcasts"),
                         ("PUT", "/api/config")]:
        resp = await app_client.request(method, path, headers=h, json={})
        body = await resp.json()
        assert resp.status == 403 and body["error"] == "password_change_required", (method, path)
        assert "修改密码" in body["message"]

    resp = await app_client.post("/api/password", headers=h, json={"current_password": one_time, "new_password": "short"})
    assert resp.status == 400 and (await resp.json())["error"] == "password_too_short"
    resp = await app_client.post("/api/password", headers=h,
                                 json={"current_password": "wrong-password-x", "new_password": "new-admin-pass-42"})
    assert resp.status == 403
    resp = await app_client.post("/api/password", headers=h,
                                 json={"current_password": one_time, "new_password": "new-admin-pass-42"})
    assert resp.status == 200, await resp.text()
    resp = await app_client.get("/api/users")
    assert resp.status == 200
    assert [u["username"] for u in (await resp.json())["users"]] == ["admin"]

    resp = await app_client.post("/api/login", json={"username": "admin", "password": one_time})
    assert resp.status == 401  # the one-time password is spent
    await login(app_client, "admin", "new-admin-pass-42")


async def test_admin_creates_user_with_one_time_password(app_client: TestClient[Any, Any]) -> None:
    await make_user(app_client, "boss", Role.ADMIN)
    csrf = await login(app_client, "boss")
    resp = await app_client.post("/api/users", headers={"X-CSRF-Token": csrf},
                                 json={"username": "op1", "roles": ["operator"]})
    body = await resp.json()
    assert resp.status == 201, body
    one_time = body["one_time_password"]
    resp = await app_client.post("/api/users", headers={"X-CSRF-Token": csrf},
                                 json={"username": "op1", "roles": ["operator"]})
    assert resp.status == 409
    resp = await app_client.post("/api/users", headers={"X-CSRF-Token": csrf},
                                 json={"username": "op2", "roles": ["pilot"]})
    assert resp.status == 400 and "角色" in (await resp.json())["message"]
    resp = await app_client.post("/api/login", json={"username": "op1", "password": one_time})
    assert (await resp.json())["must_change_password"] is True


async def test_csrf_required_on_mutations(app_client: TestClient[Any, Any]) -> None:
    await make_user(app_client, "op", Role.OPERATOR)
    csrf = await login(app_client, "op")
    resp = await app_client.post("/api/messages", json={})
    assert resp.status == 403 and (await resp.json())["error"] == "csrf_failed"
    resp = await app_client.post("/api/messages", headers={"X-CSRF-Token": csrf + "x"}, json={})
    assert resp.status == 403 and (await resp.json())["error"] == "csrf_failed"
    resp = await app_client.post("/api/messages", headers={"X-CSRF-Token": csrf}, json={})
    assert resp.status == 200
    resp = await app_client.get("/api/broadcasts")  # reads need no CSRF token
    assert resp.status == 200


async def test_cookie_attributes(app_client: TestClient[Any, Any]) -> None:
    await make_user(app_client, "op", Role.OPERATOR)
    resp = await app_client.post("/api/login", json={"username": "op", "password": PASSWORD})
    raw = resp.headers.getall("Set-Cookie")
    cookie = next(c for c in raw if c.startswith(COOKIE_NAME + "="))
    low = cookie.lower()
    assert "httponly" in low and "samesite=strict" in low and "path=/" in low
    assert "secure" not in low  # this test app runs with secure_cookies=False (plain http)


async def test_cookie_replayed_after_logout_is_refused(app_client: TestClient[Any, Any]) -> None:
    await make_user(app_client, "op", Role.OPERATOR)
    csrf = await login(app_client, "op")
    stolen = _cookie(app_client)
    resp = await app_client.post("/api/logout", headers={"X-CSRF-Token": csrf})
    assert resp.status == 200
    app_client.session.cookie_jar.clear()
    resp = await app_client.get("/api/broadcasts", headers={"Cookie": f"{COOKIE_NAME}={stolen}"})
    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthenticated"


async def test_idle_timeout_and_absolute_lifetime(app_client: TestClient[Any, Any]) -> None:
    clock = _clock(app_client)
    await make_user(app_client, "op", Role.OPERATOR)
    await login(app_client, "op")
    clock.advance(29 * 60)
    assert (await app_client.get("/api/broadcasts")).status == 200
    clock.advance(31 * 60)  # idle longer than 30 min since the last request
    assert (await app_client.get("/api/broadcasts")).status == 401

    await login(app_client, "op")
    for _ in range(35):  # active every 20 min: alive up to 11 h 40 min
        clock.advance(20 * 60)
        assert (await app_client.get("/api/broadcasts")).status == 200
    clock.advance(20 * 60 + 1)  # past the 12 h absolute lifetime although never idle
    assert (await app_client.get("/api/broadcasts")).status == 401


async def test_lockout_per_username_then_release(app_client: TestClient[Any, Any]) -> None:
    clock = _clock(app_client)
    await make_user(app_client, "op", Role.OPERATOR)
    for _ in range(5):
        resp = await app_client.post("/api/login", json={"username": "op", "password": "wrong-password!"})
        assert resp.status == 401
    resp = await app_client.post("/api/login", json={"username": "op", "password": PASSWORD})
    body = await resp.json()
    assert resp.status == 429 and body["error"] == "locked" and "分钟" in body["message"]
    assert int(resp.headers["Retry-After"]) == 15 * 60
    clock.advance(14 * 60)
    assert (await app_client.post("/api/login", json={"username": "op", "password": PASSWORD})).status == 429
    clock.advance(61)
    await login(app_client, "op")


async def test_lockout_per_address_across_usernames(app_client: TestClient[Any, Any]) -> None:
    clock = _clock(app_client)
    await make_user(app_client, "op", Role.OPERATOR)
    for i in range(5):
        resp = await app_client.post("/api/login", json={"username": f"ghost{i}", "password": "wrong-password!"})
        assert resp.status == 401
    # The address is locked now, even for a different, correct account.
    assert (await app_client.post("/api/login", json={"username": "op", "password": PASSWORD})).status == 429
    clock.advance(15 * 60 + 1)
    await login(app_client, "op")


async def test_failures_spread_beyond_window_do_not_lock(app_client: TestClient[Any, Any]) -> None:
    clock = _clock(app_client)
    await make_user(app_client, "op", Role.OPERATOR)
    for _ in range(8):
        await app_client.post("/api/login", json={"username": "op", "password": "wrong-password!"})
        clock.advance(5 * 60)  # 3 failures per 15-min window at most
    await login(app_client, "op")


async def test_bearer_token_scopes(app_client: TestClient[Any, Any]) -> None:
    clock = _clock(app_client)
    await make_user(app_client, "boss", Role.ADMIN)
    csrf = await login(app_client, "boss")
    resp = await app_client.post("/api/tokens", headers={"X-CSRF-Token": csrf},
                                 json={"name": "气象局", "scopes": ["alerts:submit"], "valid_days": 30})
    body = await resp.json()
    assert resp.status == 201, body
    feed, feed_id = body["token"], body["info"]["id"]
    resp = await app_client.post("/api/tokens", headers={"X-CSRF-Token": csrf},
                                 json={"name": "reader", "scopes": ["read"]})
    reader = (await resp.json())["token"]
    resp = await app_client.post("/api/tokens", headers={"X-CSRF-Token": csrf},
                                 json={"name": "evil", "scopes": ["accounts:manage"]})
    assert resp.status == 400
    app_client.session.cookie_jar.clear()  # from here on only bearer tokens speak

    def auth(t: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {t}"}

    assert (await app_client.post("/api/alerts", headers=auth(feed), data=b"<alert/>")).status == 200  # no CSRF
    assert (await app_client.get("/api/broadcasts", headers=auth(feed))).status == 403
    assert (await app_client.post("/api/broadcasts/1/stop", headers=auth(feed))).status == 403
    assert (await app_client.get("/api/broadcasts", headers=auth(reader))).status == 200
    assert (await app_client.post("/api/alerts", headers=auth(reader))).status == 403
    assert (await app_client.get("/api/users", headers=auth(reader))).status == 403
    resp = await app_client.get("/api/broadcasts", headers=auth("ebt_not-a-real-token"))
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await app_client.get("/api/broadcasts", headers={"Authorization": "Basic eDp5"})).status == 401

    csrf = await login(app_client, "boss")
    resp = await app_client.post(f"/api/tokens/{feed_id}/revoke", headers={"X-CSRF-Token": csrf})
    assert resp.status == 200
    assert (await app_client.post("/api/alerts", headers=auth(feed))).status == 401
    clock.advance(365 * 86400)  # reader has no expiry; a fresh 1-day token expires
    assert (await app_client.get("/api/broadcasts", headers=auth(reader))).status == 200


async def test_bearer_token_expiry(app_client: TestClient[Any, Any]) -> None:
    clock = _clock(app_client)
    await make_user(app_client, "boss", Role.ADMIN)
    csrf = await login(app_client, "boss")
    resp = await app_client.post("/api/tokens", headers={"X-CSRF-Token": csrf},
                                 json={"name": "short", "scopes": ["read"], "valid_days": 1})
    secret = (await resp.json())["token"]
    app_client.session.cookie_jar.clear()
    h = {"Authorization": f"Bearer {secret}"}
    assert (await app_client.get("/api/terminals", headers=h)).status == 200
    clock.advance(86400)
    assert (await app_client.get("/api/terminals", headers=h)).status == 401


async def test_security_headers_everywhere(app_client: TestClient[Any, Any]) -> None:
    for path, status in [("/healthz", 200), ("/api/broadcasts", 401), ("/nope", 404), ("/static/app.js", 200)]:
        resp = await app_client.get(path)
        assert resp.status == status, path
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
    resp = await app_client.get("/api/broadcasts")
    assert resp.headers["Cache-Control"] == "no-store"


async def test_actions_land_in_the_audit_ledger(app_client: TestClient[Any, Any]) -> None:
    ctx = ctx_of(app_client)
    await make_user(app_client, "op", Role.OPERATOR)
    await app_client.post("/api/login", json={"username": "op", "password": "wrong-password!"})
    csrf = await login(app_client, "op")
    await app_client.post("/api/logout", headers={"X-CSRF-Token": csrf})
    entries = await audit.tail(ctx.engine, 10)
    assert [e.action for e in entries] == ["login_failed", "login", "logout"]
    assert all(e.actor == "op" and e.remote == "127.0.0.1" for e in entries)
    assert all("wrong-password" not in e.detail and PASSWORD not in e.detail for e in entries)
    assert (await audit.verify(ctx.engine)).ok
